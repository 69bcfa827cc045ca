/**
 * The spool, from Node: each process appends its events to its own JSON Lines file in a
 * shared folder, with the Python spool's sealed-file rules (collectors/spool.py): the file is
 * written as `<host>.<pid>.<token>.<n>.jsonl.part` and renamed to `….jsonl` once complete (by
 * size, by age, on `close()` and at process exit). `audit ingest DIR` reads `*.jsonl` only,
 * so it never sees half a file, and a sealed file never changes.
 *
 * While a file is open its writer holds an exclusive `flock` on it, as the Python writer does:
 * a `.part` file nobody holds was left by a dead writer, and `audit ingest DIR` (or any Python
 * spool starting in the folder) seals it up to its last complete line. Node has no `flock`, so
 * the lock is taken by util-linux's `flock(1)` on the file descriptor this process shares
 * with it: the lock belongs to the open file, so it stays held after `flock` exits, until this
 * process closes the file or dies. Without `flock(1)` (not Linux), a file is written under a
 * name nobody reads (`….jsonl.tmp`) and renamed when sealed: nothing half-written is ever
 * read, but a killed process's last file is not recovered.
 *
 * What it can lose: events still in the buffer when the process is killed (at most
 * `flushIntervalMs` worth) and events it could not write (disk full), counted in `stats()`.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { hostname } from "node:os";
import * as path from "node:path";
import type { TransitionEvent } from "./event.js";
import type { Sink } from "./sink.js";
import type { Health } from "./stats.js";

export interface SpoolOptions {
  /** A file is sealed once it reaches this size (default 16 MiB). */
  maxBytes?: number;
  /** … or once it is this old, so that a quiet service's events become visible (default 60 s). */
  maxAgeMs?: number;
  /** Events are written once this much is buffered (default 64 KiB), or every `flushIntervalMs`. */
  bufferBytes?: number;
  flushIntervalMs?: number;
  /** Make each sealed file durable before renaming it (slower; protects against power loss). */
  fsync?: boolean;
  name?: string;
}

const PART = ".part";
const UNLOCKED = ".tmp";

function host(): string {
  return hostname().replace(/[^A-Za-z0-9_-]/g, "_") || "host";
}

/** Lock the open file `fd` for as long as it stays open here; null when `flock(1)` is missing. */
function lock(fd: number): boolean | null {
  const run = spawnSync("flock", ["--exclusive", "--nonblock", "3"], {
    stdio: ["ignore", "ignore", "ignore", fd],
  });
  if (run.error) return null;
  return run.status === 0;
}

function sameFile(file: string, fd: number): boolean {
  try {
    const st = fs.statSync(file);
    const own = fs.fstatSync(fd);
    return st.ino === own.ino && st.dev === own.dev;
  } catch {
    return false;
  }
}

export class SpoolSink implements Sink {
  readonly name: string;
  readonly directory: string;
  /** Files this process sealed, oldest first. */
  readonly sealed: string[] = [];
  private readonly maxBytes: number;
  private readonly maxAgeMs: number;
  private readonly bufferBytes: number;
  private readonly fsync: boolean;
  private readonly token = randomBytes(4).toString("hex");
  private health: Health | null = null;
  private seq = 0;
  private fd: number | null = null;
  private file: string | null = null;
  private suffix = PART;
  private size = 0;
  private fileEvents = 0;
  private openedAt = 0;
  private buffer: string[] = [];
  private bufferedBytes = 0;
  private closed = false;
  private readonly ticker: ReturnType<typeof setInterval>;
  private readonly onExit = (): void => this.closeSync();

  constructor(directory: string, options: SpoolOptions = {}) {
    this.directory = directory;
    fs.mkdirSync(directory, { recursive: true });
    this.name = options.name ?? "spool";
    this.maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
    this.maxAgeMs = options.maxAgeMs ?? 60_000;
    this.bufferBytes = options.bufferBytes ?? 64 * 1024;
    this.fsync = options.fsync ?? false;
    this.ticker = setInterval(() => this.tick(), options.flushIntervalMs ?? 1000);
    this.ticker.unref();
    process.on("exit", this.onExit);
  }

  attach(health: Health): void {
    this.health = health;
  }

  write(_events: readonly TransitionEvent[], lines: readonly string[]): void {
    if (this.closed) {
      this.health?.dropped(this.name, "closed", lines.length);
      return;
    }
    for (const line of lines) {
      this.buffer.push(line);
      this.bufferedBytes += Buffer.byteLength(line) + 1;
    }
    if (this.bufferedBytes >= this.bufferBytes || this.size + this.bufferedBytes >= this.maxBytes) {
      this.writeBuffer();
      if (this.size >= this.maxBytes) this.seal();
    }
  }

  /** Write what is buffered to the current file (still unsealed: `rotate` makes it visible). */
  async flush(): Promise<void> {
    this.writeBuffer();
  }

  /** Write what is buffered and seal the current file; returns its path (null: no file). */
  rotate(): string | null {
    this.writeBuffer();
    return this.seal();
  }

  async close(): Promise<void> {
    this.closeSync();
  }

  /** What the timer does: write the buffer, and seal the file once it is due by size or age. */
  tick(): void {
    if (this.closed) return;
    this.writeBuffer();
    if (this.fd !== null && (this.size >= this.maxBytes || Date.now() - this.openedAt >= this.maxAgeMs)) {
      this.seal();
    }
  }

  private closeSync(): void {
    if (this.closed) return;
    this.writeBuffer();
    this.seal();
    this.closed = true;
    clearInterval(this.ticker);
    process.off("exit", this.onExit);
  }

  private open(): void {
    for (;;) {
      this.seq += 1;
      const base = `${host()}.${process.pid}.${this.token}.${String(this.seq).padStart(6, "0")}.jsonl`;
      const file = path.join(this.directory, base + PART);
      const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_APPEND, 0o644);
      const locked = lock(fd);
      if (locked === null) {
        // No flock(1): write under a name no reader or sealer looks at (see the module's doc).
        const unlocked = path.join(this.directory, base + UNLOCKED);
        fs.renameSync(file, unlocked);
        this.use(fd, unlocked, UNLOCKED);
        return;
      }
      // A sealer may have taken the new, empty file between the open and the lock: start another.
      if (locked && sameFile(file, fd)) {
        this.use(fd, file, PART);
        return;
      }
      fs.closeSync(fd);
    }
  }

  private use(fd: number, file: string, suffix: string): void {
    this.fd = fd;
    this.file = file;
    this.suffix = suffix;
    this.size = 0;
    this.fileEvents = 0;
    this.openedAt = Date.now();
  }

  private writeBuffer(): void {
    if (!this.buffer.length) return;
    const n = this.buffer.length;
    const data = Buffer.from(`${this.buffer.join("\n")}\n`);
    this.buffer = [];
    this.bufferedBytes = 0;
    try {
      if (this.fd === null) this.open();
      let done = 0;
      while (done < data.length) done += fs.writeSync(this.fd as number, data, done);
    } catch (err) {
      this.recoverFromFailedWrite();
      this.health?.dropped(this.name, err, n);
      return;
    }
    this.size += data.length;
    this.fileEvents += n;
    this.health?.sent(this.name, n);
  }

  /** Cut a half-written batch off the file, so that no line is ever cut in two. */
  private recoverFromFailedWrite(): void {
    if (this.fd === null) return;
    try {
      fs.ftruncateSync(this.fd, this.size);
    } catch {
      this.seal();
    }
  }

  private seal(): string | null {
    if (this.fd === null || this.file === null) return null;
    const { fd, file, fileEvents } = this;
    this.fd = null;
    this.file = null;
    try {
      if (fileEvents === 0) {
        fs.unlinkSync(file);
        return null;
      }
      if (this.fsync) fs.fsyncSync(fd);
      const final = file.slice(0, -this.suffix.length);
      // Renamed while the lock is still held: no sealer can take the file in between.
      fs.renameSync(file, final);
      this.sealed.push(final);
      return final;
    } catch (err) {
      this.health?.dropped(this.name, err, 0);
      return null;
    } finally {
      try {
        fs.closeSync(fd);
      } catch {
        // already closed: nothing more to release
      }
    }
  }
}
