// Time to "ready" and to the first result, as a person meets them (issue 21): a fresh browser
// context (empty cache) opens the page, waits for data-engine="ready", then chooses one sample
// photo and waits for the first result (data-seq). Debian Chromium via playwright-core, against
// tools/server.mjs on loopback. Prints each run and the medians.
//
//   node bench/ready.mjs [--runs N] [--root DIR] [--cores N]    (after ./build.sh; DIR default www)
// --cores N makes the page see navigator.hardwareConcurrency = N (WebKit reports 4 on a 2-core machine).
import { chromium } from "playwright-core";
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "../tools/server.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const RUNS = Number(arg("--runs", 5));
const CORES = arg("--cores", null);
const WWW = path.resolve(arg("--root", path.join(ROOT, "www")));
const SAMPLES = path.resolve(process.env.SKINSCAN_SAMPLES ?? path.join(ROOT, "../shared/data/samples"));
const photo = path.join(SAMPLES, readdirSync(SAMPLES).filter((f) => /\.jpe?g$/i.test(f)).sort()[0]);

const server = await startServer({ root: WWW });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic"],
});
const cores = await (await browser.newPage()).evaluate(() => navigator.hardwareConcurrency);
console.log(`ready bench: Chromium ${browser.version()} · hardwareConcurrency ${CORES ? `${CORES} (made up; really ${cores})` : cores} · ${WWW} · ${path.basename(photo)}`);

const ready = [];
const first = [];
for (let i = 0; i < RUNS; i++) {
  const context = await browser.newContext();
  const page = await context.newPage();
  if (CORES) await page.addInitScript((n) => Object.defineProperty(Navigator.prototype, "hardwareConcurrency", { get: () => n }), Number(CORES));
  const t0 = Date.now();
  await page.goto(`${server.origin}/`);
  await page.locator('[data-testid="app"][data-engine="ready"]').waitFor({ state: "attached", timeout: 120_000 });
  const t1 = Date.now();
  await page.locator('input[type="file"]').first().setInputFiles(photo);
  await page.locator('[data-testid="app"][data-seq]:not([data-busy])').waitFor({ state: "attached", timeout: 120_000 });
  const t2 = Date.now();
  ready.push(t1 - t0);
  first.push(t2 - t1);
  console.log(`run ${i + 1}: ready ${t1 - t0} ms, first result ${t2 - t1} ms after ready (${t2 - t0} ms from opening)`);
  await context.close();
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`median of ${RUNS}: ready ${median(ready)} ms, first result ${median(first)} ms after ready`);
await browser.close();
await server.close();
