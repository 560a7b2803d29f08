// A tiny static file server for www/, bound to loopback only: the development server of
// `./build.sh serve`, and the server of the browser tests (tests/e2e/run.mjs imports startServer
// and reads its request log directly, so counting requests never itself makes a request) and of
// the benchmark (bench/run.mjs, which mounts its own folders and adds COOP/COEP headers).
// It sends the page's Content-Security-Policy (tools/csp.mjs) as a header too: GitHub Pages can
// only carry the <meta> copy, but a header also covers the module worker, so the tests prove the
// worker runs under it.
import { createServer } from "node:http";
import { createReadStream, promises as fs } from "node:fs";
import { gzipSync } from "node:zlib";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CSP } from "./csp.mjs";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".wasm": "application/wasm",
  ".onnx": "application/octet-stream",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/plain; charset=utf-8",
};

/**
 * Serve `root` on 127.0.0.1:`port` (0 = any free port).
 * `mounts` maps URL prefixes ("/bench/") to other folders; `headers` are added to every response
 * (the benchmark's own server sends COOP/COEP there; the page's server adds none).
 * `gzip`: send gzip -9 bodies to clients that accept them, as a static host does (the benchmark's
 * phone profile, issue 15, counts the bytes as sent; the tests and `serve` send files as they are).
 * Resolves to { origin, port, log, close() }; `log` is the list of { method, url, status, t, bytes }
 * served so far (`bytes`: the body as sent).
 */
export function startServer({ root, port = 0, quiet = true, mounts = {}, headers: extraHeaders = {}, gzip = false } = {}) {
  const gzipped = new Map(); // file -> {etag, body}
  const roots = [
    ...Object.entries(mounts).map(([prefix, dir]) => [prefix, path.resolve(dir)]),
    ["/", path.resolve(root)],
  ];
  const log = [];
  const server = createServer(async (req, res) => {
    const entry = { method: req.method, url: req.url, status: 0, t: Date.now() };
    log.push(entry);
    const done = (status, headers = {}, body) => {
      entry.status = status;
      if (!quiet) console.log(`${status} ${req.method} ${req.url}`);
      res.writeHead(status, headers);
      res.end(body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return done(405, { Allow: "GET, HEAD" });
    let rel;
    try {
      rel = decodeURIComponent(new URL(req.url, "http://x").pathname);
    } catch {
      return done(400);
    }
    if (rel.endsWith("/")) rel += "index.html";
    const [prefix, base] = roots.find(([p]) => rel.startsWith(p));
    const file = path.join(base, rel.slice(prefix.length - 1));
    if (file !== base && !file.startsWith(base + path.sep)) return done(403);
    let st;
    try {
      st = await fs.stat(file);
    } catch {
      return done(404, { "Content-Type": "text/plain" }, "not found\n");
    }
    if (st.isDirectory()) return done(301, { Location: req.url.replace(/\/?(\?|$)/, "/$1") });
    const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    const headers = {
      "Content-Type": TYPES[path.extname(file).toLowerCase()] || "application/octet-stream",
      "Content-Security-Policy": CSP,
      "X-Content-Type-Options": "nosniff",
      // Revalidate every time (cheap 304s): a rebuilt wasm or model is never served stale.
      "Cache-Control": "no-cache",
      ETag: etag,
      ...extraHeaders,
    };
    if (req.headers["if-none-match"] === etag) return done(304, headers);
    if (gzip && /\bgzip\b/.test(req.headers["accept-encoding"] ?? "") && !/^image\/(png|jpeg)/.test(headers["Content-Type"])) {
      let z = gzipped.get(file);
      if (z?.etag !== etag) gzipped.set(file, (z = { etag, body: gzipSync(await fs.readFile(file), { level: 9 }) }));
      headers["Content-Encoding"] = "gzip";
      headers.Vary = "Accept-Encoding";
      headers["Content-Length"] = z.body.length;
      entry.bytes = req.method === "HEAD" ? 0 : z.body.length;
      return done(200, headers, req.method === "HEAD" ? undefined : z.body);
    }
    headers["Content-Length"] = st.size;
    entry.bytes = req.method === "HEAD" ? 0 : st.size;
    entry.status = 200;
    if (!quiet) console.log(`200 ${req.method} ${req.url}`);
    res.writeHead(200, headers);
    if (req.method === "HEAD") return res.end();
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      const { port: actual } = server.address();
      resolve({
        origin: `http://127.0.0.1:${actual}`,
        port: actual,
        log,
        close: () =>
          new Promise((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}

// CLI: node tools/server.mjs [--root www] [--port 8000] [--verbose]
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name, dflt) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : dflt;
  };
  const root = opt("--root", "www");
  const port = Number(opt("--port", "8000"));
  const s = await startServer({ root, port, quiet: !args.includes("--verbose") });
  console.log(`Serving ${path.resolve(root)} at ${s.origin}/  (loopback only; Ctrl-C to stop)`);
}
