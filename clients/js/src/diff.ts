/**
 * From a document change to field changes, by the rules of docs/diff.md (the same rules as
 * the Python instrumentation, checked on both sides by tests/fixtures/diff_cases.json).
 *
 * Values are compared as the JSON they serialise to: a key holding `undefined` or a
 * function is absent, `toJSON()` is honoured (a Date is its ISO text), numbers compare by
 * value and booleans are not numbers. Two values that are the same object are equal
 * without a look inside, which makes an immutable update (`{...node, data}`, the React way)
 * cost only the parts it replaced.
 */

export type ChangeKind = "changed" | "added" | "removed";

/** One field change. `old` is absent for `added`, `new` for `removed`. */
export interface Change {
  field: string;
  change: ChangeKind;
  old?: unknown;
  new?: unknown;
}

/** Ordered `pattern -> key` pairs (an object keeps its insertion order for non-numeric keys). */
export type ListKeys = Record<string, string | null> | ReadonlyArray<readonly [string, string | null]>;

export interface DiffOptions {
  /** Which arrays are diffed by which element key (docs/diff.md "Keyed arrays"); default `{"*": "id"}`. */
  listKeys?: ListKeys;
  /** Path patterns never diffed (docs/diff.md "Patterns"). */
  exclude?: readonly string[];
  /** The stamp key, excluded at the top level; default `_meta`. */
  metaKey?: string;
}

export const ROOT = "$";

/** Deeper documents are refused (as the ingest refuses deeper values); this also stops a cycle. */
const MAX_DEPTH = 64;

const hasOwn = Object.prototype.hasOwnProperty;

/** A pattern: `*` matches any run of characters, everything else only itself. */
function patternSource(pattern: string): string {
  return pattern
    .split("*")
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
    .join("[\\s\\S]*");
}

function compile(pattern: string): RegExp {
  return new RegExp(`^${patternSource(pattern)}$`);
}

/** A key as written inside brackets: `\` and `]` escaped. */
function bracket(key: string): string {
  return `[${key.replace(/[\\\]]/g, "\\$&")}]`;
}

/** JSON drops these from objects (and writes null for them in arrays). */
function isAbsent(value: unknown): boolean {
  const t = typeof value;
  return t === "undefined" || t === "function" || t === "symbol";
}

function isContainer(value: unknown): value is object {
  return typeof value === "object" && value !== null;
}

function hasToJSON(value: object): boolean {
  return typeof (value as { toJSON?: unknown }).toJSON === "function";
}

/** Two non-identical scalars, equal as JSON (non-finite numbers are null there). */
function sameScalar(a: unknown, b: unknown): boolean {
  if (typeof a === "number" && !Number.isFinite(a)) a = null;
  if (typeof b === "number" && !Number.isFinite(b)) b = null;
  return a === b;
}

/** A path for an error message: its start is enough to find the place. */
function shown(path: string): string {
  return path === "" ? ROOT : path.length > 60 ? `${path.slice(0, 60)}…` : path;
}

function childOf(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

/** Compiled diff rules; build once, use for every write. */
export class DiffRules {
  private readonly listKeys: ReadonlyArray<readonly [RegExp | null, string | null]>;
  private readonly excluded: RegExp | null;
  /** The stamp key these rules leave out of the top level. */
  readonly metaKey: string;

  constructor(options: DiffOptions = {}) {
    const pairs = options.listKeys === undefined
      ? [["*", "id"] as const]
      : Array.isArray(options.listKeys)
        ? (options.listKeys as ReadonlyArray<readonly [string, string | null]>)
        : Object.entries(options.listKeys as Record<string, string | null>);
    // `*` alone matches every path: no regular expression to run for it.
    this.listKeys = pairs.map(([p, k]) => [p === "*" ? null : compile(p), k] as const);
    const exclude = options.exclude ?? [];
    this.excluded = exclude.length
      ? new RegExp(`^(?:${exclude.map(patternSource).join("|")})$`)
      : null;
    this.metaKey = options.metaKey ?? "_meta";
  }

  /** The changes that turn `before` into `after`; throws on a document nested too deep. */
  diff(before: unknown, after: unknown): Change[] {
    const out: Change[] = [];
    this.walk(before, after, "", out, 0);
    return out;
  }

  /**
   * The key an array at `path` is diffed by, or null: by position (the first matching pattern
   * wins). Patterns name a list at the root `$`, as docs/diff.md names the root.
   */
  private listKey(path: string): string | null {
    const named = path === "" ? ROOT : path;
    for (const [re, key] of this.listKeys) {
      if (re === null || re.test(named)) return key;
    }
    return null;
  }

  /** Elements by key text when every element carries a unique string or integer key. */
  private keyed(list: readonly unknown[], key: string): Map<string, unknown> | null {
    const byKey = new Map<string, unknown>();
    for (const element of list) {
      if (!isContainer(element) || Array.isArray(element) || !hasOwn.call(element, key)) return null;
      const k = (element as Record<string, unknown>)[key];
      let text: string;
      if (typeof k === "string") text = k;
      else if (typeof k === "number" && Number.isInteger(k)) text = String(k);
      else return null;
      if (byKey.has(text)) return null;
      byKey.set(text, element);
    }
    return byKey;
  }

  private isExcluded(path: string): boolean {
    return this.excluded !== null && this.excluded.test(path);
  }

  private walk(a: unknown, b: unknown, path: string, out: Change[], depth: number): void {
    if (a === b) return;
    if (depth > MAX_DEPTH) throw new RangeError(`document nested deeper than ${MAX_DEPTH} levels at ${shown(path)}`);
    if (isContainer(a) && hasToJSON(a)) a = (a as { toJSON(): unknown }).toJSON();
    if (isContainer(b) && hasToJSON(b)) b = (b as { toJSON(): unknown }).toJSON();
    if (isContainer(a) && isContainer(b)) {
      const listA = Array.isArray(a);
      if (listA === Array.isArray(b)) {
        if (listA) this.lists(a as unknown[], b as unknown[], path, out, depth);
        else this.objects(a as Record<string, unknown>, b as Record<string, unknown>, path, out, depth);
        return;
      }
    } else if (!isContainer(a) && !isContainer(b) && sameScalar(a, b)) {
      return;
    }
    out.push({ field: path || ROOT, change: "changed", old: this.carry(a, path), new: this.carry(b, path) });
  }

  private objects(
    a: Record<string, unknown>, b: Record<string, unknown>, path: string, out: Change[], depth: number,
  ): void {
    const top = path === "";
    const keysB = Object.keys(b);
    let shared = 0; // keys of b that a has too: when that is all of them, b added none
    for (const key of Object.keys(a)) {
      const va = a[key];
      let vb: unknown;
      if (hasOwn.call(b, key)) {
        shared += 1;
        vb = b[key];
      }
      if (va === vb || (top && key === this.metaKey)) continue;
      const goneA = isAbsent(va);
      const goneB = isAbsent(vb);
      if (goneA && goneB) continue;
      const child = childOf(path, key);
      if (this.isExcluded(child)) continue;
      if (goneA) out.push({ field: child, change: "added", new: this.carry(vb, child) });
      else if (goneB) out.push({ field: child, change: "removed", old: this.carry(va, child) });
      else this.walk(va, vb, child, out, depth + 1);
    }
    if (shared === keysB.length) return;
    for (const key of keysB) {
      const vb = b[key];
      if (hasOwn.call(a, key) || isAbsent(vb) || (top && key === this.metaKey)) continue;
      const child = childOf(path, key);
      if (!this.isExcluded(child)) out.push({ field: child, change: "added", new: this.carry(vb, child) });
    }
  }

  private lists(a: unknown[], b: unknown[], path: string, out: Change[], depth: number): void {
    const key = this.listKey(path);
    if (key !== null) {
      const byKeyA = this.keyed(a, key);
      const byKeyB = byKeyA && this.keyed(b, key);
      if (byKeyA && byKeyB) {
        for (const [k, ea] of byKeyA) {
          const child = path + bracket(k);
          if (this.isExcluded(child)) continue;
          if (!byKeyB.has(k)) out.push({ field: child, change: "removed", old: this.carry(ea, child) });
          else this.walk(ea, byKeyB.get(k), child, out, depth + 1);
        }
        for (const [k, eb] of byKeyB) {
          if (byKeyA.has(k)) continue;
          const child = path + bracket(k);
          if (!this.isExcluded(child)) out.push({ field: child, change: "added", new: this.carry(eb, child) });
        }
        return;
      }
    }
    const common = Math.min(a.length, b.length);
    for (let i = 0; i < a.length || i < b.length; i++) {
      // JSON writes null for what it cannot hold inside an array.
      const va = i < a.length ? (isAbsent(a[i]) ? null : a[i]) : undefined;
      const vb = i < b.length ? (isAbsent(b[i]) ? null : b[i]) : undefined;
      if (i < common && va === vb) continue;
      const child = childOf(path, String(i));
      if (this.isExcluded(child)) continue;
      if (i >= b.length) out.push({ field: child, change: "removed", old: this.carry(va, child) });
      else if (i >= a.length) out.push({ field: child, change: "added", new: this.carry(vb, child) });
      else this.walk(va, vb, child, out, depth + 1);
    }
  }

  /**
   * A value an event carries, without its excluded parts (docs/diff.md "Patterns"); inside
   * it, an array's elements are addressed by key when the keyed rule accepts the array alone.
   * Without exclusions the value is carried as it is: the event's JSON text is its copy.
   */
  private carry(value: unknown, path: string): unknown {
    if (!isContainer(value) || hasToJSON(value)) return value;
    if (this.excluded === null && (path !== "" || Array.isArray(value))) return value;
    return this.strip(value, path, 0);
  }

  private strip(value: unknown, path: string, depth: number): unknown {
    if (!isContainer(value) || hasToJSON(value)) return value;
    if (depth > MAX_DEPTH) throw new RangeError(`value nested deeper than ${MAX_DEPTH} levels at ${shown(path)}`);
    if (Array.isArray(value)) {
      const key = this.listKey(path);
      const byKey = key === null ? null : this.keyed(value, key);
      const kept: unknown[] = [];
      if (byKey) {
        for (const [k, element] of byKey) {
          const child = path + bracket(k);
          if (!this.isExcluded(child)) kept.push(this.strip(element, child, depth + 1));
        }
      } else {
        value.forEach((element, i) => {
          const child = childOf(path, String(i));
          if (!this.isExcluded(child)) kept.push(this.strip(element, child, depth + 1));
        });
      }
      return kept;
    }
    const kept: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      if (path === "" && key === this.metaKey) continue;
      const child = childOf(path, key);
      if (!this.isExcluded(child)) kept[key] = this.strip((value as Record<string, unknown>)[key], child, depth + 1);
    }
    return kept;
  }
}

/** `diff(before, after, options)`: docs/diff.md in one call (compile `DiffRules` once for many). */
export function diff(before: unknown, after: unknown, options?: DiffOptions): Change[] {
  return new DiffRules(options).diff(before, after);
}
