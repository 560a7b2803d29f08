// Browser test for issue 15's parallel quarter turns, in headless Debian Chromium via playwright-core
// against tools/server.mjs. Run by `./build.sh test` (after www/pkg, the models and the debug CLI are
// built); by hand: SKINSCAN_BIN=$CARGO_TARGET_DIR/debug/skinscan node tests/e2e/parallel.mjs
//
// It shows, on every sample photo, with and without metadata:
//  1. skinscan.js with its quarter turns spread over 2 and over 4 model instances (helper workers,
//     each with its own wasm Classifier) returns exactly the object the one-instance run returns:
//     every key and every number bit for bit, the timings aside;
//  2. the helpers were ready and did run turns (so 1. compared a parallel run, not a fallback);
//  3. that result agrees with `skinscan classify --json` (tier, photo check; probability within 1e-4);
// and reports each helper instance's wasm memory; and that loading reports its progress in bytes.
import { chromium } from "playwright-core";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "../../tools/server.mjs";
import { WASM_BUILDS, defaultModels } from "../../www/choices.js";
import { assert, check, cli, finish } from "./harness.mjs";

const wasmFileFor = (relaxed) => (relaxed ? WASM_BUILDS.relaxed : WASM_BUILDS.plain);

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const SAMPLES = path.resolve(process.env.SKINSCAN_SAMPLES ?? path.join(ROOT, "../shared/data/samples"));
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const TOLERANCE = 1e-4; // the page against the CLI, as tests/e2e/run.mjs
const META = { age: 55, sex: "male", site: "posterior torso", grew: "yes", diameterMm: 6 };


/** The first path where `a` and `b` differ (numbers compared with Object.is: bit for bit), or null. */
function firstDifference(a, b, at = "") {
  if (typeof a === "number" && typeof b === "number") return Object.is(a, b) ? null : `${at}: ${a} != ${b}`;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") {
    return a === b ? null : `${at}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`;
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const d = firstDifference(a[k], b[k], `${at}.${k}`);
    if (d) return d;
  }
  return null;
}

const images = readdirSync(SAMPLES)
  .filter((f) => /\.(jpe?g|png|webp|bmp|gif)$/i.test(f))
  .sort();
assert(images.length > 0, `no images in ${SAMPLES}`);

const server = await startServer({
  root: path.join(ROOT, "www"),
  mounts: { "/samples/": SAMPLES },
});
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const consoleErrors = [];
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("console", (m) => {
    // The bare document's /favicon.ico (the app pages declare their icon) is the one allowed 404.
    if (m.type() === "error" && !m.location()?.url?.endsWith("/favicon.ico")) consoleErrors.push(`page: ${m.text()} @ ${m.location()?.url}`);
  });
  page.on("worker", (w) => w.on("console", (m) => m.type() === "error" && consoleErrors.push(`worker: ${m.text()}`)));
  page.on("pageerror", (e) => consoleErrors.push(`page error: ${e.message}`));
  // A same-origin document to run skinscan.js in (the app's own page would start its own engine).
  await page.goto(`${server.origin}/models/manifest.json`);
  const counts = [1, 2, 4];
  const runs = await page.evaluate(
    async ({ images, counts, meta }) => {
      const { load } = await import("/skinscan.js");
      const scanners = [];
      const progress = [];
      const beforeFirst = []; // each scanner's instances once loaded, before any classify (issue 21)
      for (const instances of counts) {
        const s = await load({ instances, onProgress: (p) => scanners.length || progress.push(p) });
        beforeFirst.push(await s.instances());
        // Wait until every helper has built its Classifier, so that each one takes turns.
        for (let t0 = performance.now(); ;) {
          const all = await s.instances({ start: true }); // the page starts them after its first result
          if (all.every((i) => i.ready)) break;
          if (all.some((i) => i.error) || performance.now() - t0 > 120_000) {
            throw new Error(`helpers not ready: ${JSON.stringify(all)}`);
          }
          await new Promise((r) => setTimeout(r, 100));
        }
        scanners.push(s);
      }
      const out = [];
      for (const name of images) {
        const bytes = await (await fetch(`/samples/${encodeURIComponent(name)}`)).arrayBuffer();
        for (const m of [undefined, meta]) {
          const results = [];
          for (const s of scanners) {
            const r = await s.classify(bytes, m);
            delete r.timings_ms; // clock readings, different on every run
            results.push(r);
          }
          out.push({ name, meta: !!m, results });
        }
      }
      const instances = [];
      for (const s of scanners) instances.push(await s.instances());
      for (const s of scanners) s.close();
      // As the page runs it: nothing asks for the helpers; after the first result they build by themselves.
      const lazy = await load({ instances: 2 });
      await lazy.classify(await (await fetch(`/samples/${encodeURIComponent(images[0])}`)).arrayBuffer());
      let afterFirst;
      for (let t0 = performance.now(); performance.now() - t0 < 120_000;) {
        afterFirst = await lazy.instances();
        if (afterFirst.every((i) => i.ready) || afterFirst.some((i) => i.error)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      lazy.close();
      return { out, instances, beforeFirst, afterFirst, progress, relaxed: (await import("/choices.js")).relaxedSimd() };
    },
    { images, counts, meta: META },
  );

  await check("loading reports progress in bytes, up to the wasm's and the two models' sizes", () => {
    const p = runs.progress;
    assert(p.length >= 2, `only ${p.length} progress reports`);
    for (let i = 1; i < p.length; i++) assert(p[i].loaded >= p[i - 1].loaded, `progress went back: ${JSON.stringify(p.slice(i - 1, i + 1))}`);
    const manifest = JSON.parse(readFileSync(path.join(ROOT, "www/models/manifest.json"), "utf8"));
    const { image, tabular } = defaultModels(manifest);
    const wasm = statSync(path.join(ROOT, "www", wasmFileFor(runs.relaxed))).size;
    const last = p[p.length - 1];
    const want = wasm + image.bytes + tabular.bytes;
    assert(last.loaded === want && last.total === want, `last report ${JSON.stringify(last)}, expected ${want} bytes`);
    return `${p.length} reports, ${(want / 1e6).toFixed(1)} MB`;
  });

  await check(`quarter turns over 2 and 4 instances: the same bits as one instance (${images.length} photos, with and without metadata)`, () => {
    for (const { name, meta, results } of runs.out) {
      for (let i = 1; i < counts.length; i++) {
        const d = firstDifference(results[0], results[i]);
        assert(!d, `${name}${meta ? " with metadata" : ""}: ${counts[i]} instances differ from 1 at ${d}`);
      }
    }
    return `${runs.out.length} classifies x ${counts.length} instance counts`;
  });

  await check("the helpers start only after the first result, not during the load (issue 21)", () => {
    for (const list of runs.beforeFirst) {
      const early = list.filter((i) => i.role === "helper" && (i.started !== false || i.ready));
      assert(!early.length, `helpers started before any classify: ${JSON.stringify(list)}`);
    }
    assert(runs.afterFirst.length === 2 && runs.afterFirst.every((i) => i.ready), `after the first result the helper did not build: ${JSON.stringify(runs.afterFirst)}`);
    return runs.beforeFirst.map((l) => `${l.length} instance(s), ${l.filter((i) => i.role === "helper").length} helper(s) not started`).join("; ") + "; after the first result the helper built by itself";
  });
  await check("the helper instances were built and ran turns", () => {
    const [one, two, four] = runs.instances;
    assert(one.length === 1, `instances: 1 gave ${one.length} instances`);
    assert(two.length === 2 && four.length === 4, `expected 2 and 4 instances, got ${two.length} and ${four.length}`);
    for (const h of [...two, ...four].filter((i) => i.role === "helper")) {
      assert(h.ready && h.turns > 0, `a helper did not take part: ${JSON.stringify(h)}`);
    }
    const mb = (b) => (b / 2 ** 20).toFixed(1);
    return `wasm memory per instance (MiB): main ${mb(four[0].wasm_memory_bytes)}, helpers ${four.slice(1).map((h) => mb(h.wasm_memory_bytes)).join(", ")}; turns per helper of 4: ${four.slice(1).map((h) => h.turns).join(", ")}`;
  });

  await check("the parallel result agrees with the CLI on every photo", () => {
    for (const { name, meta, results } of runs.out) {
      const got = results[results.length - 1];
      const want = cli(path.join(SAMPLES, name), meta ? META : undefined);
      const what = `${name}${meta ? " with metadata" : ""}`;
      assert(Math.abs(got.malignant_probability - want.malignant_probability) <= TOLERANCE,
        `${what}: page ${got.malignant_probability}, CLI ${want.malignant_probability}`);
      assert(got.risk_tier === want.risk_tier, `${what}: page tier ${got.risk_tier}, CLI ${want.risk_tier}`);
      assert((got.quality?.verdict ?? null) === (want.quality?.verdict ?? null), `${what}: photo check differs`);
    }
  });

  await check("no console errors", () => assert(consoleErrors.length === 0, consoleErrors.join("\n")));
} finally {
  await browser.close();
  await server.close();
}
finish("parallel-turn");
