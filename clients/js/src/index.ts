export { Auditor } from "./auditor.js";
export type { AuditorOptions, WriteMeta, WriteRecord, WriterScope } from "./auditor.js";
export { diff, DiffRules, ROOT } from "./diff.js";
export type { Change, ChangeKind, DiffOptions, ListKeys } from "./diff.js";
export { TRANSITION } from "./event.js";
export type { TransitionEvent } from "./event.js";
export { HttpSink } from "./http.js";
export type { HttpSinkOptions } from "./http.js";
export { AuditedNodes } from "./nodes.js";
export type {
  AuditedNodesOptions, AuditedSetNodes, NodeLike, NodesUpdate, NodeWriteOptions, NodeWriterOptions, SetNodes,
} from "./nodes.js";
export { OtelLogSink } from "./otel.js";
export type { OtelLogger, OtelLogSinkOptions } from "./otel.js";
export type { Sink } from "./sink.js";
export type { SinkStats, Stats } from "./stats.js";
