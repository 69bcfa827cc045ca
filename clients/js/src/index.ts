export { diff, DiffRules, ROOT } from "./diff.js";
export type { Change, ChangeKind, DiffOptions, ListKeys } from "./diff.js";
