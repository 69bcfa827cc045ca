// bench: what recording costs a browser app. Prints, from one run on this machine:
//   - the added cost of Auditor.record() per write of a 50-leaf node in Chromium, in µs
//     (goal ≤ 20 µs), for an immutable update, a deep copy and an unchanged copy;
//   - the bundle size of the package, minified and min+gzip (goal ≤ 8 kB; the OpenTelemetry
//     SDK is the application's own and not in it).
// Run: npm run build && npm run bench (needs Chromium, see test/browser.mjs).
import { build } from "esbuild";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { ensureChromium, launch } from "../test/browser.mjs";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const alias = { "conflict-audit": here("../dist/index.js") };

async function bundle(entry, options = {}) {
  const out = await build({
    entryPoints: [entry], bundle: true, minify: true, write: false, format: "esm",
    platform: "browser", alias, logLevel: "error", ...options,
  });
  return out.outputFiles[0].contents;
}

const min = await bundle(here("../dist/index.js"));
const gz = gzipSync(min, { level: 9 });
console.log(`bundle (dist/index.js, everything the browser entry exports): ${min.length} B minified, ` +
  `${gz.length} B min+gzip (goal ≤ 8192 B: ${gz.length <= 8192 ? "met" : "NOT met"})`);

const chromium = ensureChromium();
if (chromium.skip) {
  console.log(`record() in Chromium: not measured (${chromium.skip})`);
  process.exit(0);
}
const script = await bundle(here("./page.mjs"));
let received = 0;
const server = createServer((req, res) => {
  if (req.method === "POST") {
    req.on("data", () => {});
    req.on("end", () => { received += 1; res.writeHead(200).end('{"received":0}'); });
  } else if (req.url === "/page.js") {
    res.writeHead(200, { "content-type": "text/javascript" }).end(script);
  } else {
    res.writeHead(200, { "content-type": "text/html" }).end('<script type="module" src="/page.js"></script>');
  }
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${server.address().port}`;
const browser = await launch(chromium.path);
try {
  const page = await browser.newPage();
  await page.goto(origin);
  await page.waitForFunction(() => typeof window.runBench === "function");
  const r = await page.evaluate((endpoint) => window.runBench(endpoint), origin);
  const fmt = (us) => us.toFixed(2);
  console.log(`record() in Chromium, a ${r.leaves}-leaf node, one field changed, real HTTP sink:`);
  console.log(`  immutable update ({...node, data: {...}}): ${fmt(r.immutable_us)} µs added per write ` +
    `(goal ≤ 20 µs: ${r.immutable_us <= 20 ? "met" : "NOT met"})`);
  console.log(`  deep copy (every container new):          ${fmt(r.deep_copy_us)} µs added per write`);
  console.log(`  unchanged deep copy (walk, no event):      ${fmt(r.unchanged_copy_us)} µs per write`);
  console.log(`  events sent ${r.stats.sent}, dropped ${r.stats.dropped}, in ${received} requests`);
  console.log("(one run on a shared 2-core machine: compare figures of the same run)");
} finally {
  await browser.close();
  server.close();
}
