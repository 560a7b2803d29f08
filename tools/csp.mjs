// The pages' Content-Security-Policy, in one place. Every page in www/ carries it as a <meta> tag
// (GitHub Pages cannot send headers), tools/server.mjs sends it as a header too (a header also
// covers the module worker), and the browser tests check both pages and the header against it.
//
// CLI: node tools/csp.mjs [www]  exits 1, naming the page, when a page's <meta> differs from CSP
// (./build.sh runs it before anything is served or deployed).
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  "connect-src 'self'",
  "img-src 'self' blob: data:",
  "style-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'none'",
].join("; ");

/** The content of each CSP <meta> tag in an HTML text, in order. */
export function metaPolicies(html) {
  const tags = html.match(/<meta\s[^>]*http-equiv="Content-Security-Policy"[^>]*>/gi) ?? [];
  return tags.map((tag) => tag.match(/\scontent="([^"]*)"/i)?.[1] ?? "");
}

/** One line per .html page in `dir` that does not carry exactly one <meta> with CSP. */
export function pageProblems(dir) {
  const pages = readdirSync(dir).filter((f) => f.endsWith(".html")).sort();
  if (!pages.length) return [`${dir}: no .html pages`];
  return pages.flatMap((page) => {
    const found = metaPolicies(readFileSync(path.join(dir, page), "utf8"));
    if (found.length === 1 && found[0] === CSP) return [];
    return [`${path.join(dir, page)}: its CSP <meta> ${found.length === 1 ? `is "${found[0]}"` : `appears ${found.length} times`}, not tools/csp.mjs's "${CSP}"`];
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const problems = pageProblems(process.argv[2] ?? "www");
  for (const p of problems) console.error(p);
  process.exit(problems.length ? 1 : 0);
}
