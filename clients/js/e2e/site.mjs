// The test's web server on 127.0.0.1: the React Flow page (built with esbuild), and the three
// sources its writers read — an SSE stream of engine updates, a manifest to poll, and an
// embedding endpoint whose answer the test holds back to open the race window.
import { build } from "esbuild";
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));

export async function bundle() {
  const result = await build({
    entryPoints: [here("./app.jsx")],
    bundle: true, minify: true, write: false, format: "esm", jsx: "automatic",
    alias: { "conflict-audit": here("../dist/index.js") },
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "error",
  });
  return result.outputFiles[0].text;
}

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>workflow</title>
<link rel="stylesheet" href="/style.css"><style>#root{width:1200px;height:700px}</style></head>
<body><div id="root"></div><script type="module" src="/app.js"></script></body></html>`;

function deferred() {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
}

/** Start the site; `config` is what the page's /config answers (the collector and its token). */
export async function startSite({ config, workspace, manifest }) {
  const script = await bundle();
  const css = readFileSync(here("../node_modules/@xyflow/react/dist/style.css"));
  const streams = new Set();
  const listening = deferred(); // a page opened the engine stream
  let embedAsked = deferred();
  let embedAnswer = deferred();
  const server = createServer((req, res) => {
    const send = (type, body) => {
      res.writeHead(200, { "content-type": type, "cache-control": "no-store" });
      res.end(body);
    };
    switch (`${req.method} ${req.url}`) {
      case "GET /": return send("text/html", PAGE);
      case "GET /app.js": return send("text/javascript", script);
      case "GET /style.css": return send("text/css", css);
      case "GET /config": return send("application/json", JSON.stringify(config));
      case "GET /workspace": return send("application/json", JSON.stringify(workspace));
      case "GET /manifest": return send("application/json", JSON.stringify(manifest));
      case "GET /engine":
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" });
        res.write(": open\n\n");
        streams.add(res);
        listening.resolve();
        req.on("close", () => streams.delete(res));
        return undefined;
      case "POST /embed":
        embedAsked.resolve();
        return void embedAnswer.promise.then((answer) => send("application/json", JSON.stringify(answer)));
      default:
        res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    /** Resolves once a page listens to the engine stream. */
    listening: () => listening.promise,
    /** Push one engine update to every open page. */
    engine(update) {
      for (const res of streams) res.write(`data: ${JSON.stringify(update)}\n\n`);
      return streams.size;
    },
    /** Resolves when a page asked for an embedding; `answerEmbed` lets the answer go. */
    embedAsked: () => embedAsked.promise,
    answerEmbed(answer) {
      embedAnswer.resolve(answer);
      embedAsked = deferred();
      embedAnswer = deferred();
    },
    close() {
      for (const res of streams) res.end();
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections(); // a browser's idle keep-alive connections would hold it open
      return closed;
    },
  };
}
