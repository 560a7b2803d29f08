// SkinScan benchmark (issue 5): our wasm against onnxruntime-web on the same model, side by side,
// in one headless Chromium session on a loopback server; native tract for reference; sizes.
// Run by `./build.sh bench`, which builds the release wasm, the release CLI and www/models first.
// By hand: node bench/run.mjs [--runs N] [--cold N] [--warmup N] [--out bench/results.json]
//
// Prints a markdown table (medians; ratios are taken within this one run only, since this
// machine's timings drift ±25% between runs) and writes it with every sample to
// bench/results.json and bench/results.md.
import { chromium } from "playwright-core";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "../tools/server.mjs";
import { defaultModels } from "../www/choices.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const RUNS = Number(opt("--runs", process.env.BENCH_RUNS ?? 30));
const COLD = Number(opt("--cold", process.env.BENCH_COLD ?? 20));
const WARMUP = Number(opt("--warmup", 5));
const OUT = path.resolve(ROOT, opt("--out", "bench/results.json"));
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const SAMPLES = path.resolve(process.env.SKINSCAN_SAMPLES ?? path.join(ROOT, "../shared/data/samples"));
const TARGET = process.env.CARGO_TARGET_DIR ?? path.join(process.env.HOME, ".cache/skinscan/target");
const CLI = process.env.SKINSCAN_RELEASE_BIN ?? path.join(TARGET, "release/skinscan");
const WWW = path.join(ROOT, "www");
const ORT_DIST = path.join(ROOT, "node_modules/onnxruntime-web/dist");
const ORT_VERSION = JSON.parse(readFileSync(path.join(ROOT, "node_modules/onnxruntime-web/package.json"))).version;

if (!(RUNS >= 20)) throw new Error("--runs must be at least 20 (the issue asks for medians of 20 or more)");

/** Width and height from a baseline or progressive JPEG's SOF marker. */
function jpegSize(buf) {
  let i = 2;
  while (i + 9 < buf.length) {
    if (buf[i] !== 0xff) return null;
    const marker = buf[i + 1];
    const len = buf.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
      return { h: buf.readUInt16BE(i + 5), w: buf.readUInt16BE(i + 7) };
    }
    i += 2 + len;
  }
  return null;
}

// The issue's photo: a 1024x768 JPEG from the samples (the first one, by name).
const imageFile = readdirSync(SAMPLES)
  .filter((f) => /\.jpe?g$/i.test(f))
  .sort()
  .find((f) => {
    const s = jpegSize(readFileSync(path.join(SAMPLES, f)));
    return s && s.w === 1024 && s.h === 768;
  });
if (!imageFile) throw new Error(`no 1024x768 JPEG in ${SAMPLES}`);

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const quantile = (v, p) => [...v].sort((a, b) => a - b)[Math.min(v.length - 1, Math.floor(p * v.length))];
const stats = (v) => ({ n: v.length, median: median(v), min: Math.min(...v), p90: quantile(v, 0.9) });

// ------------------------------------------------------------------------------------------------
// Browser part. One server for the whole session; COOP/COEP make the pages cross-origin isolated,
// which onnxruntime-web needs for threads. This server is the benchmark's own: `./build.sh serve`
// and the browser tests never send these headers.
const server = await startServer({
  root: WWW,
  mounts: { "/bench/": path.join(ROOT, "bench"), "/ort/": ORT_DIST, "/samples/": SAMPLES },
  headers: { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" },
});
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic"],
});
const imageUrl = `/samples/${encodeURIComponent(imageFile)}`;
console.error(`bench: ${browser.version()} · ${server.origin} · ${imageFile} · ${RUNS} runs after ${WARMUP} warm-up, ${COLD} cold starts`);

const problems = [];
async function visit(query, timeout = 600_000) {
  const context = await browser.newContext();
  context.on("request", (r) => {
    if (!r.url().startsWith(`${server.origin}/`)) problems.push(`off-origin request: ${r.url()}`);
  });
  const page = await context.newPage();
  const onConsole = (where) => (m) => m.type() === "error" && problems.push(`${where} console error: ${m.text()}`);
  page.on("console", onConsole("page"));
  page.on("worker", (w) => w.on("console", onConsole("worker")));
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  context.on("response", (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()} for ${r.url()}`));
  try {
    await page.goto(`${server.origin}/bench/bench.html?${new URLSearchParams({ ...query, image: imageUrl })}`);
    await page.waitForFunction(() => window.benchResult || window.benchError, null, { timeout, polling: 250 });
    const [result, error] = await page.evaluate(() => [window.benchResult, window.benchError]);
    if (error) throw new Error(`bench page (${JSON.stringify(query)}): ${error}`);
    return result;
  } finally {
    await context.close();
  }
}

let warm;
const coldRuns = { ours: [], ort: [] };
try {
  // Cold starts first, alternating engines, each in a fresh context (empty HTTP cache, no
  // compiled-code cache); then the warm session.
  for (let i = 0; i < COLD; i++) {
    for (const engine of ["ours", "ort"]) coldRuns[engine].push(await visit({ mode: "cold", engine }));
    process.stderr.write(`\rcold starts ${i + 1}/${COLD}`);
  }
  if (COLD) process.stderr.write("\n");
  warm = await visit({ mode: "warm", runs: String(RUNS), warmup: String(WARMUP) });
} finally {
  await browser.close();
  await server.close();
}
if (problems.length) throw new Error(`the benchmark session was not clean:\n  ${problems.join("\n  ")}`);
if (!warm.crossOriginIsolated) throw new Error("the bench page was not cross-origin isolated: onnxruntime-web ran without threads");

// ------------------------------------------------------------------------------------------------
// Native tract, same image, the release CLI.
function nativeBench() {
  if (!existsSync(CLI)) return { error: `${CLI} not built` };
  const r = spawnSync(CLI, ["bench", path.join(SAMPLES, imageFile), "--runs", String(RUNS)], { cwd: ROOT, encoding: "utf8" });
  if (r.status !== 0) return { error: `skinscan bench failed: ${r.stderr}` };
  const row = (name) => {
    const m = r.stdout.match(new RegExp(`^${name}\\s+([\\d.]+)\\s+([\\d.]+)\\s+([\\d.]+)`, "m"));
    return m ? { first: Number(m[1]), median: Number(m[2]), min: Number(m[3]) } : null;
  };
  const load = r.stdout.match(/^load \+ optimise\s+([\d.]+)/m);
  return { cnn: row("cnn"), total: row("total"), load_ms: load ? Number(load[1]) : null, stdout: r.stdout };
}
const native = nativeBench();

// ------------------------------------------------------------------------------------------------
// Sizes.
const manifest = JSON.parse(readFileSync(path.join(ROOT, "models/manifest.json")));
const { image: imgModel, tabular: tabModel } = defaultModels(manifest);
// gzip -9's own count where gzip is installed (as build.sh reports it), else zlib at level 9.
const gzip9 = (file, buf) => {
  const r = spawnSync("gzip", ["-9", "-c", file], { maxBuffer: 1 << 30 });
  return r.status === 0 ? r.stdout.length : gzipSync(buf, { level: 9 }).length;
};
const size = (file) => {
  const buf = readFileSync(file);
  return { file: path.relative(ROOT, file), raw: buf.length, gzip9: gzip9(file, buf) };
};
const stamp = (name) => {
  const f = path.join(WWW, `pkg/.${name}.stamp`);
  return existsSync(f) && readFileSync(f, "utf8").trim().endsWith(" optimised");
};
const sizes = {
  wasm: size(path.join(WWW, "pkg/skinscan_bg.wasm")),
  wasm_optimised: stamp("skinscan_bg"),
  wasm_relaxed: size(path.join(WWW, "pkg/skinscan_relaxed_bg.wasm")),
  wasm_relaxed_optimised: stamp("skinscan_relaxed_bg"),
  ort_wasm: size(path.join(ORT_DIST, "ort-wasm-simd-threaded.wasm")),
  image_model: size(path.join(ROOT, "models", imgModel.file)),
  tabular_model: size(path.join(ROOT, "models", tabModel.file)),
};

// ------------------------------------------------------------------------------------------------
// The table.
const S = warm.samples;
const shippedFile = path.basename(warm.ours_load.wasm);
const shippedKey = shippedFile === "skinscan_relaxed_bg.wasm" ? "wasm_relaxed" : "wasm";
const hc = warm.hardwareConcurrency;
const ortMany = S[`ort_${hc}`] ? `ort_${hc}` : null;
const st = {
  cold_ours: stats(coldRuns.ours.map((r) => r.ready_ms)),
  first_ours: stats(coldRuns.ours.map((r) => r.first_ms)),
  cold_ort: stats(coldRuns.ort.map((r) => r.ready_ms)),
  first_ort: stats(coldRuns.ort.map((r) => r.first_ms)),
  ours_cnn: stats(S.ours_cnn),
  ...(S.ours_simd128_cnn ? { ours_simd128_cnn: stats(S.ours_simd128_cnn) } : {}),
  ours_e2e: stats(S.ours_e2e.map((x) => x.wall)),
  ort_1: stats(S.ort_1),
};
if (ortMany) st.ort_many = stats(S[ortMany]);
if (S.ort_default) st.ort_default = stats(S.ort_default);
const stage = (k) => median(S.ours_e2e.map((x) => x.stages[k]));
const stages = Object.fromEntries(["decode", "preprocess", "cnn", "tabular", "ensemble", "total"].map((k) => [k, stage(k)]));
const base = st.ort_1.median;
// classify runs the graph once per quarter turn (the manifest's quarter_turns, test-time
// augmentation); a pipeline on onnxruntime-web would run it as often, so end to end is judged
// against that many onnxruntime-web CNN runs. The CNN-only rows are one pass each.
const turns = imgModel.quarter_turns ?? 1;
const ratios = {
  ours_cnn_vs_ort_1: st.ours_cnn.median / base,
  ours_e2e_vs_ort_1_cnn: st.ours_e2e.median / (turns * base),
  ...(st.ours_simd128_cnn ? { ours_simd128_cnn_vs_ort_1: st.ours_simd128_cnn.median / base,
    relaxed_vs_simd128_cnn: st.ours_cnn.median / st.ours_simd128_cnn.median } : {}),
  ...(ortMany ? { ours_cnn_vs_ort_many: st.ours_cnn.median / st.ort_many.median } : {}),
};
const targets = {
  "CNN <= 1.0x onnxruntime-web 1 thread": ratios.ours_cnn_vs_ort_1 <= 1.0,
  [`end-to-end <= 1.3x onnxruntime-web 1-thread CNN${turns > 1 ? ` x ${turns} turns` : ""}`]: ratios.ours_e2e_vs_ort_1_cnn <= 1.3,
  "cold start < 1.5 s": st.cold_ours.median < 1500,
  ".wasm <= 3 MB gzipped (the build this browser loads)": sizes[shippedKey].gzip9 <= 3_000_000,
};

const f = (x, d = 1) => (x == null || Number.isNaN(x) ? "–" : x.toFixed(d));
const mb = (b) => (b / 1e6).toFixed(2);
const row = (what, s, ratio = "") => `| ${what} | ${f(s.median)} | ${f(s.min)} | ${f(s.p90)} | ${s.n} | ${ratio} |`;
const lines = [
  `Benchmark: ${warm.userAgent.match(/(HeadlessChrome|Chrome)\/[\d.]+/)?.[0] ?? "Chromium"}, ${hc} logical cores, ` +
    `${imgModel.file} (${manifest.model_version}), ${imageFile}, ${new Date().toISOString().slice(0, 16)}Z. ` +
    `Medians of ${RUNS} interleaved runs after ${WARMUP} warm-ups; cold starts: ${COLD} fresh browser contexts. ` +
    `onnxruntime-web ${ORT_VERSION}, wasm backend; its default is ${warm.ort_default_threads} thread(s) here.`,
  "",
  "| measurement | median ms | min | p90 | n | ratio (same run) |",
  "| --- | ---: | ---: | ---: | ---: | --- |",
  row("cold start, ours: skinscan.js load() = wasm compile + model fetch, SHA-256, parse, optimise", st.cold_ours),
  row("first classify after that cold start (wasm still tiering up)", st.first_ours),
  row(`cold start, onnxruntime-web 1 thread: wasm + model fetch, session create`, st.cold_ort),
  row("first run after that cold start", st.first_ort),
  row(`CNN only, one pass, ours (tract wasm in a worker, ${shippedFile})`, st.ours_cnn, `**${f(ratios.ours_cnn_vs_ort_1, 2)}x** ORT 1 thread`),
  ...(st.ours_simd128_cnn
    ? [row("CNN only, ours, +simd128 build (browsers without relaxed SIMD)", st.ours_simd128_cnn,
      `${f(ratios.ours_simd128_cnn_vs_ort_1, 2)}x ORT 1 thread; relaxed build is ${f(ratios.relaxed_vs_simd128_cnn, 2)}x this`)]
    : []),
  row("CNN only, onnxruntime-web, 1 thread", st.ort_1, "1.00x"),
  ...(ortMany ? [row(`CNN only, onnxruntime-web, ${hc} threads`, st.ort_many, `ours is ${f(ratios.ours_cnn_vs_ort_many, 2)}x this`)] : []),
  ...(st.ort_default ? [row(`CNN only, onnxruntime-web, default threads (${warm.ort_default_threads})`, st.ort_default)] : []),
  row(`end-to-end classify with metadata, ours (skinscan.js classify() from the page; ${imageFile}: decode, resize, CNN x ${turns} quarter turns, tabular, ensemble)`, st.ours_e2e,
    `**${f(ratios.ours_e2e_vs_ort_1_cnn, 2)}x** ORT 1-thread CNN${turns > 1 ? ` x ${turns}` : ""}`),
  native.cnn
    ? `| native tract CNN, release CLI \`skinscan bench\` (x86-64, 1 thread) | ${f(native.cnn.median)} | ${f(native.cnn.min)} | – | ${RUNS} | |`
    : `| native tract | ${native.error} | | | | |`,
  ...(native.total ? [`| native tract end-to-end | ${f(native.total.median)} | ${f(native.total.min)} | – | ${RUNS} | |`] : []),
  "",
  `End-to-end stages in wasm (medians, ms): ${Object.entries(stages).map(([k, v]) => `${k} ${f(v)}`).join(", ")}. ` +
    `Our load steps in the warm session (ms, www/worker.js's own): download, SHA-256 (crypto.subtle) and compile, ` +
    `overlapped, ${f(warm.ours_load.download_check_compile, 0)}, \`Classifier.from_checked\` (parse, optimise) ` +
    `${f(warm.ours_load.construct, 0)}; onnxruntime-web session create ${f(warm.ort.ort_1.create_ms, 0)}.`,
  "",
  "| file | raw MB | gzip -9 MB |",
  "| --- | ---: | ---: |",
  `| \`www/pkg/skinscan_bg.wasm\` (+simd128, ${sizes.wasm_optimised ? "after wasm-opt -O3" : "no wasm-opt"}) | ${mb(sizes.wasm.raw)} | ${mb(sizes.wasm.gzip9)} |`,
  `| \`www/pkg/skinscan_relaxed_bg.wasm\` (+relaxed-simd, ${sizes.wasm_relaxed_optimised ? "after wasm-opt -O3" : "no wasm-opt"}) | ${mb(sizes.wasm_relaxed.raw)} | ${mb(sizes.wasm_relaxed.gzip9)} |`,
  `| onnxruntime-web's \`ort-wasm-simd-threaded.wasm\` | ${mb(sizes.ort_wasm.raw)} | ${mb(sizes.ort_wasm.gzip9)} |`,
  `| \`models/${imgModel.file}\` | ${mb(sizes.image_model.raw)} | ${mb(sizes.image_model.gzip9)} |`,
  `| \`models/${tabModel.file}\` | ${mb(sizes.tabular_model.raw)} | ${mb(sizes.tabular_model.gzip9)} |`,
  "",
  "Targets (issue 5): " + Object.entries(targets).map(([k, v]) => `${v ? "met" : "MISSED"}: ${k}`).join("; ") + ".",
];
const table = lines.join("\n");
console.log(table);

writeFileSync(
  OUT,
  JSON.stringify(
    {
      when: new Date().toISOString(), chromium: warm.userAgent, hardware_concurrency: hc, image: imageFile,
      model: { file: imgModel.file, model_version: manifest.model_version }, ort_version: ORT_VERSION,
      runs: RUNS, warmup: WARMUP, cold_runs: COLD, stats: st, ratios, targets, stages_ms: stages, sizes,
      ours_load: warm.ours_load, ort_load: warm.ort, native: { ...native, stdout: undefined },
      samples: { ...S, cold: coldRuns },
    },
    null,
    1,
  ) + "\n",
);
writeFileSync(OUT.replace(/\.json$/, ".md"), table + "\n");
console.error(`wrote ${path.relative(ROOT, OUT)} and ${path.relative(ROOT, OUT.replace(/\.json$/, ".md"))}`);
