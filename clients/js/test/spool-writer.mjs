// A Node process writing to a spool, for the spool tests: writes N events, flushes them to
// its open file, says "written" and waits (to be killed, or told to close on stdin).
import { Auditor, SpoolSink } from "../dist/node.js";

const [dir, n] = process.argv.slice(2);
const spool = new SpoolSink(dir);
const audit = new Auditor({ sinks: [spool], writer: "instantiation" });
for (let i = 1; i <= Number(n); i++) audit.record({ entity: `block-${i}`, before: { v: 0 }, after: { v: i } });
await audit.flush();
process.stdout.write("written\n");
process.stdin.on("data", () => process.exit(0)); // exiting seals the file
