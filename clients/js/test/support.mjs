// What the tests share: the Python CLI (`audit`) of this repository, run as a user would,
// and `audit serve` started on a free port of 127.0.0.1.
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
export const auditBin = process.env.AUDIT_BIN ?? join(repoRoot, ".venv", "bin", "audit");
export const python = join(repoRoot, ".venv", "bin", "python");

const exec = promisify(execFile);

export function scratch(name) {
  return mkdtempSync(join(tmpdir(), `conflict-audit-js-${name}-`));
}

/** Run `audit ARGS…`; resolves to {code, stdout, stderr} whatever the exit status. */
export async function audit(args, options = {}) {
  try {
    const { stdout, stderr } = await exec(auditBin, args, { cwd: repoRoot, maxBuffer: 64 << 20, ...options });
    return { code: 0, stdout, stderr };
  } catch (err) {
    if (typeof err.code !== "number") throw err;
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** `audit ingest PATH --json` then `audit check --format json` on a fresh store. */
export async function ingestAndCheck(path, db = join(scratch("store"), "audit.duckdb")) {
  const ingested = await audit(["ingest", path, "--db", db, "--json"]);
  if (ingested.code !== 0) throw new Error(`audit ingest failed: ${ingested.stderr}`);
  const checked = await audit(["check", "--db", db, "--format", "json"]);
  if (checked.code === 2) throw new Error(`audit check failed: ${checked.stderr}`);
  return { counts: JSON.parse(ingested.stdout), findings: JSON.parse(checked.stdout), db };
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * `audit serve` on a free port with a token file; resolves once /healthz answers 200.
 * `stop()` sends SIGTERM (the collector seals its spool file and exits 0).
 */
export async function startServe({ spool, corsOrigins = [] }) {
  const dir = scratch("serve");
  const token = "t-" + Math.random().toString(16).slice(2);
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, token);
  const port = await freePort();
  const args = ["serve", "--spool", spool, "--host", "127.0.0.1", "--port", String(port), "--token-file", tokenFile];
  for (const origin of corsOrigins) args.push("--cors-origin", origin);
  const child = spawn(auditBin, args, { cwd: repoRoot, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  const endpoint = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r("running"), 50))]);
    if (code !== "running") throw new Error(`audit serve exited (${code}): ${stderr}`);
    try {
      if ((await fetch(`${endpoint}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (i > 400) throw new Error(`audit serve did not answer /healthz: ${stderr}`);
  }
  return {
    endpoint, token,
    async stop() {
      child.kill("SIGTERM");
      const code = await exited;
      if (code !== 0) throw new Error(`audit serve exited with ${code}: ${stderr}`);
    },
  };
}
