/**
 * Recording writes to a list of nodes held in UI state (React Flow's `setNodes`, a zustand
 * store): each node is an entity of its own (its `id`), diffed against what the writer read.
 *
 * Versions live in each node's stamp (`_meta`, as the Python side stamps documents:
 * `{last_updated_by, last_updated_at, version, write_id}`), so they travel with the node:
 * a node object the writer read carries the version it read. A write records
 * `base_version` = the version of the node the writer read and `version` = the current
 * node's version + 1, and stamps the node it writes.
 *
 * A writer that read before an `await` and writes afterwards passes what it read
 * (`{ read: node }`). Its events then say what it believed: `old` is what it read. Where the
 * node changed meanwhile in a field the writer did not mean to change and its write puts
 * the read value back (the `[...staleList, item]` bug), the overwrite is recorded too, with
 * the value the writer read as `old` and `new`: a change it never saw, undone — which the
 * detectors report as a lost update (and a chain break).
 */
import type { Auditor } from "./auditor.js";
import { type Change, type DiffOptions, DiffRules, ROOT } from "./diff.js";
import { newId, nowIso } from "./event.js";

export interface NodeLike {
  id: string | number;
}

export type NodesUpdate<N> = N[] | ((previous: N[]) => N[]);

/** A setter like React's: takes the new nodes, or a function of the previous ones. */
export type SetNodes<N> = (update: NodesUpdate<N>) => void;

export interface NodeWriterOptions<N> {
  writer: string;
  actor?: string;
  /**
   * The current nodes, for a setter that takes values only (a zustand store's action); with
   * it, functions are applied here. Without it the setter is given a function (React's).
   */
  getNodes?: () => N[];
}

export interface NodeWriteOptions<N> {
  /** What the writer read, when it read before now (before an `await`): a node or nodes. */
  read?: N | readonly N[];
  sourceTs?: string | number | Date;
  actor?: string;
  attrs?: Record<string, unknown>;
}

/** A wrapped setter: like the original, plus what the writer read. */
export type AuditedSetNodes<N> = (update: NodesUpdate<N>, options?: NodeWriteOptions<N>) => void;

export interface AuditedNodesOptions extends DiffOptions {
  /** `entity_type` of the events (e.g. `block`). */
  entityType?: string;
}

type Stamp = { version?: unknown };

function byId<N extends NodeLike>(nodes: readonly N[]): Map<string, N> {
  const map = new Map<string, N>();
  for (const n of nodes) map.set(String(n.id), n);
  return map;
}

/** `a` is `b`, or lies above or below it (`data` and `data.content`, `l` and `l[x].v`). */
function related(a: string, b: string): boolean {
  if (a === b || a === ROOT || b === ROOT) return true;
  const [short, long] = a.length < b.length ? [a, b] : [b, a];
  const next = long[short.length];
  return long.startsWith(short) && (next === "." || next === "[");
}

export class AuditedNodes {
  private readonly rules: DiffRules;
  private readonly metaKey: string;
  private readonly entityType?: string;

  constructor(private readonly audit: Auditor, options: AuditedNodesOptions = {}) {
    const own = options.listKeys !== undefined || options.exclude !== undefined || options.metaKey !== undefined;
    // The stamp goes where the diff leaves it out: the Auditor's key unless given one here.
    this.rules = own ? new DiffRules({ ...options, metaKey: options.metaKey ?? audit.rules.metaKey }) : audit.rules;
    this.metaKey = this.rules.metaKey;
    this.entityType = options.entityType;
  }

  /** `setNodes` for one writer: every update through it is recorded, node by node. */
  setter<N extends NodeLike>(setNodes: SetNodes<N>, options: NodeWriterOptions<N>): AuditedSetNodes<N> {
    const { getNodes } = options;
    return (update, write = {}) => {
      const compute = (previous: N[]): N[] => (typeof update === "function" ? update(previous) : update);
      if (getNodes) {
        const previous = getNodes();
        setNodes(this.apply(previous, compute(previous), options, write));
        return;
      }
      // React may call an updater twice with the same state (StrictMode): record once.
      let seen: N[] | undefined;
      let result: N[] = [];
      setNodes((previous) => {
        if (previous !== seen) {
          result = this.apply(previous, compute(previous), options, write);
          seen = previous;
        }
        return result;
      });
    };
  }

  /**
   * Record that `writer` replaced `previous` by `next`; returns `next` with the written
   * nodes stamped. Never throws: on failure `next` is returned as it is (counted).
   */
  apply<N extends NodeLike>(
    previous: readonly N[], next: N[], who: { writer: string; actor?: string }, write: NodeWriteOptions<N> = {},
  ): N[] {
    try {
      return this.record(previous, next, who, write);
    } catch (err) {
      this.audit.failed(err);
      return next;
    }
  }

  private record<N extends NodeLike>(
    previous: readonly N[], next: N[], who: { writer: string; actor?: string }, write: NodeWriteOptions<N>,
  ): N[] {
    const current = byId(previous);
    const read = write.read === undefined ? null : byId(Array.isArray(write.read) ? write.read : [write.read as N]);
    const writeId = newId();
    const ts = nowIso();
    let out: N[] | null = null;
    const written = new Set<string>();
    next.forEach((node, i) => {
      const id = String(node.id);
      written.add(id);
      const now = current.get(id);
      if (now === node) return;
      const version = this.recordNode(id, now, read?.get(id) ?? now, node, who, write, writeId);
      if (version === null) return;
      out ??= next.slice();
      out[i] = this.stamped(node, who.writer, ts, version, writeId);
    });
    for (const [id, gone] of current) {
      if (!written.has(id)) this.recordNode(id, gone, read?.get(id) ?? gone, undefined, who, write, writeId);
    }
    return out ?? next;
  }

  /** Record one node's write; returns the version it produced, or null if nothing changed. */
  private recordNode<N extends NodeLike>(
    id: string, now: N | undefined, seen: N | undefined, node: N | undefined,
    who: { writer: string; actor?: string }, write: NodeWriteOptions<N>, writeId: string,
  ): number | null {
    const changes = this.rules.diff(seen ?? {}, node ?? {});
    if (seen !== now) changes.push(...this.unseen(this.rules.diff(now ?? {}, node ?? {}), changes));
    if (!changes.length) return null;
    const baseVersion = this.versionOf(seen);
    const version = (this.versionOf(now) ?? baseVersion ?? 0) + 1;
    this.audit.recordChanges(changes, {
      entity: id, entityType: this.entityType, writer: who.writer, actor: write.actor ?? who.actor,
      baseVersion, version, sourceTs: write.sourceTs, writeId, attrs: write.attrs,
    });
    return version;
  }

  /**
   * Changes the write made to the current node in fields it did not mean to change: it put
   * back the value it read over one it never saw. Recorded with the read value as `old`.
   */
  private unseen(actual: readonly Change[], meant: readonly Change[]): Change[] {
    const out: Change[] = [];
    for (const c of actual) {
      if (meant.some((m) => related(m.field, c.field))) continue;
      out.push(c.change === "removed" ? c : { field: c.field, change: "changed", old: c.new, new: c.new });
    }
    return out;
  }

  private versionOf(node: NodeLike | undefined): number | undefined {
    const stamp = node === undefined ? undefined : (node as unknown as Record<string, Stamp | undefined>)[this.metaKey];
    const v = stamp?.version;
    return typeof v === "number" && Number.isInteger(v) ? v : undefined;
  }

  private stamped<N extends NodeLike>(node: N, writer: string, at: string, version: number, writeId: string): N {
    const meta = (node as unknown as Record<string, object | undefined>)[this.metaKey];
    return {
      ...node,
      [this.metaKey]: { ...meta, last_updated_by: writer, last_updated_at: at, version, write_id: writeId },
    };
  }
}
