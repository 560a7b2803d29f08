// The browser tests' tiny harness (run.mjs, history.mjs, parallel.mjs): each check runs, prints ok
// or FAIL with its time and note, and finish() exits non-zero if any failed; cli() is the
// reference every page result is compared with.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const failures = [];

export async function check(name, fn) {
  const t0 = Date.now();
  try {
    const note = await fn();
    console.log(`ok    ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)${note ? ` — ${note}` : ""}`);
  } catch (err) {
    failures.push(name);
    console.log(`FAIL  ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n      ${String(err?.stack ?? err).split("\n").slice(0, 6).join("\n      ")}`);
  }
}

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}

/** Ends the run: `label` names the checks in the summary ("browser", "history"...). */
export function finish(label) {
  if (failures.length) {
    console.log(`\n${failures.length} ${label} check(s) failed: ${failures.join("; ")}`);
    process.exit(1);
  }
  console.log(`\nall ${label} checks passed`);
}

/**
 * The native CLI's answer, the reference the page must agree with: `skinscan classify --json FILE`
 * with `meta` (skinscan.js's Metadata keys) as flags. SKINSCAN_BIN names the binary; else `cargo run`.
 */
export function cli(file, meta = {}) {
  const args = ["classify", "--json", file];
  if (meta.age !== undefined) args.push("--age", String(meta.age));
  if (meta.sex) args.push("--sex", meta.sex);
  if (meta.site) args.push("--site", meta.site);
  if (meta.photoType) args.push("--photo-type", meta.photoType);
  for (const q of ["itch", "grew", "hurt", "changed", "bleed", "elevation"]) if (meta[q]) args.push(`--${q}`, meta[q]);
  if (meta.diameterMm !== undefined) args.push("--diameter", String(meta.diameterMm));
  const [cmd, pre] = process.env.SKINSCAN_BIN
    ? [process.env.SKINSCAN_BIN, []]
    : ["cargo", ["run", "--quiet", "--bin", "skinscan", "--"]];
  const r = spawnSync(cmd, [...pre, ...args], { cwd: ROOT, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`skinscan ${args.join(" ")} failed (${r.status}): ${r.stderr || r.error}`);
  return JSON.parse(r.stdout);
}
