// SkinScan benchmark (issue 5): our wasm against onnxruntime-web on the same model, side by side,
// in one headless Chromium session on a loopback server; native tract for reference; sizes.
// Run by `./build.sh bench`, which builds the release wasm, the release CLI and www/models first.
// By hand: node bench/run.mjs [--runs N] [--cold N] [--warmup N] [--phone-cold N] [--phone-runs N] [--out bench/results.json]
//
// Then the phone profile (issue 15), in the same browser: Lighthouse's mobile network and CPU
// slowdown over CDP (emulatePhone), from a second server that gzips as a static host does. Cold
// start to first result, warm classify, bytes sent, each against onnxruntime-web with 2 threads
// running the same 4 passes; and how far the CPU slowdown reached (Chromium 148 slows only the
// page's main thread: workers refuse Emulation.setCPUThrottlingRate).
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
// The phone profile (issue 15): cold starts are ~40 s each at 1.6 Mbit/s, so fewer of them.
const PHONE_COLD = Number(opt("--phone-cold", process.env.BENCH_PHONE_COLD ?? 3));
const PHONE_RUNS = Number(opt("--phone-runs", 10));
// Lighthouse's mobile profile ("Slow 4G"): 1.6 Mbit/s down, 750 kbit/s up, 150 ms RTT, 4x CPU.
const PHONE_NET = { offline: false, latency: 150, downloadThroughput: 1.6e6 / 8, uploadThroughput: 750e3 / 8 };
const PHONE_CPU = 4;
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
// The phone profile's server: the same files, gzipped as a static host sends them, so that the bytes
// counted are the bytes a phone downloads.
const phoneServer = await startServer({
  root: WWW,
  mounts: { "/bench/": path.join(ROOT, "bench"), "/ort/": ORT_DIST, "/samples/": SAMPLES },
  headers: { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" },
  gzip: true,
});
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
    // measureUserAgentSpecificMemory() answers at once instead of at the next garbage collection.
    "--enable-blink-features=ForceEagerMeasureMemory"],
});
const imageUrl = `/samples/${encodeURIComponent(imageFile)}`;
console.error(`bench: ${browser.version()} · ${server.origin} · ${imageFile} · ${RUNS} runs after ${WARMUP} warm-up, ${COLD} cold starts`);

const problems = [];
/**
 * Lighthouse's mobile profile on `page` over CDP: network conditions and the CPU slowdown on the page,
 * and the same tried on every worker (auto-attached, nested ones too). Chromium applies the page's
 * network conditions to its workers' fetches (bench/results.md shows the download times); what each
 * worker answered is returned in `workers`, since Chromium 148 refuses both there.
 */
async function emulatePhone(context, page, { network = true } = {}) {
  const cdp = await context.newCDPSession(page);
  if (network) {
    await cdp.send("Network.enable");
    await cdp.send("Network.emulateNetworkConditions", PHONE_NET);
  }
  await cdp.send("Emulation.setCPUThrottlingRate", { rate: PHONE_CPU });
  const workers = [];
  let seq = 1;
  const waiting = new Map();
  cdp.on("Target.receivedMessageFromTarget", (ev) => {
    const m = JSON.parse(ev.message);
    const w = waiting.get(`${ev.sessionId}/${m.id}`);
    if (w) w(m.error ? m.error.message : "ok");
  });
  cdp.on("Target.attachedToTarget", async (ev) => {
    const send = (method, params = {}) =>
      new Promise((resolve) => {
        const id = seq++;
        waiting.set(`${ev.sessionId}/${id}`, resolve);
        cdp.send("Target.sendMessageToTarget", { sessionId: ev.sessionId, message: JSON.stringify({ id, method, params }) })
          .catch((e) => resolve(String(e.message)));
      });
    const entry = { type: ev.targetInfo.type, url: ev.targetInfo.url };
    workers.push(entry);
    if (network) entry.network = await send("Network.emulateNetworkConditions", PHONE_NET);
    entry.cpu = await send("Emulation.setCPUThrottlingRate", { rate: PHONE_CPU });
  });
  await cdp.send("Target.setAutoAttach", { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
  return { cdp, workers };
}

async function visit(query, { timeout = 600_000, phone = false } = {}) {
  const srv = phone ? phoneServer : server;
  const context = await browser.newContext();
  context.on("request", (r) => {
    if (!r.url().startsWith(`${srv.origin}/`)) problems.push(`off-origin request: ${r.url()}`);
  });
  const page = await context.newPage();
  const logFrom = srv.log.length;
  // Cold phone visits run throttled from the first byte; the warm one once its engines are loaded.
  const emulation = phone && query.mode === "cold" ? await emulatePhone(context, page) : null;
  const onConsole = (where) => (m) => m.type() === "error" && problems.push(`${where} console error: ${m.text()}`);
  page.on("console", onConsole("page"));
  page.on("worker", (w) => w.on("console", onConsole("worker")));
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  context.on("response", (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()} for ${r.url()}`));
  try {
    await page.goto(`${srv.origin}/bench/bench.html?${new URLSearchParams({ ...query, image: imageUrl })}`);
    let late = null;
    if (query.mode === "phone") {
      await page.waitForFunction(() => window.benchReady || window.benchError, null, { timeout, polling: 250 });
      late = await emulatePhone(context, page, { network: false });
      await page.evaluate(() => window.benchGo?.());
    }
    await page.waitForFunction(() => window.benchResult || window.benchError, null, { timeout, polling: 250 });
    const [result, error] = await page.evaluate(() => [window.benchResult, window.benchError]);
    if (error) throw new Error(`bench page (${JSON.stringify(query)}): ${error}`);
    // What the server sent during the visit (the bench's own page and photo aside): the app's bytes.
    const sent = srv.log.slice(logFrom).filter((e) => !/^\/(bench|samples)\//.test(e.url));
    result.bytes_sent = sent.reduce((a, e) => a + (e.bytes ?? 0), 0);
    result.sent = sent.map((e) => ({ url: e.url, status: e.status, bytes: e.bytes ?? 0 }));
    if (emulation || late) result.worker_emulation = (emulation ?? late).workers;
    return result;
  } finally {
    await context.close();
  }
}

let warm;
const coldRuns = { ours: [], ort: [] };
const phoneRuns = { cold_ours: [], cold_ort: [], warm: null };
try {
  // Cold starts first, alternating engines, each in a fresh context (empty HTTP cache, no
  // compiled-code cache); then the warm session.
  for (let i = 0; i < COLD; i++) {
    for (const engine of ["ours", "ort"]) coldRuns[engine].push(await visit({ mode: "cold", engine }));
    process.stderr.write(`\rcold starts ${i + 1}/${COLD}`);
  }
  if (COLD) process.stderr.write("\n");
  warm = await visit({ mode: "warm", runs: String(RUNS), warmup: String(WARMUP) });
  // The phone profile (issue 15): cold starts, alternating engines, then warm classifies at 4x.
  const threads = String(Math.min(2, warm.hardwareConcurrency));
  for (let i = 0; i < PHONE_COLD; i++) {
    phoneRuns.cold_ours.push(await visit({ mode: "cold", engine: "ours" }, { phone: true }));
    phoneRuns.cold_ort.push(await visit({ mode: "cold", engine: "ort", threads, passes: "4" }, { phone: true }));
    process.stderr.write(`\rphone cold starts ${i + 1}/${PHONE_COLD}`);
  }
  if (PHONE_COLD) process.stderr.write("\n");
  phoneRuns.warm = await visit({ mode: "phone", runs: String(PHONE_RUNS), threads, passes: "4" }, { phone: true });
} finally {
  await browser.close();
  await server.close();
  await phoneServer.close();
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
st.ours_e2e_1 = stats(S.ours_e2e_1.map((x) => x.wall));
// The phone profile (issue 15).
const PW = phoneRuns.warm;
const ph = {
  cold_ours: stats(phoneRuns.cold_ours.map((r) => r.first_result_ms)),
  cold_ort: stats(phoneRuns.cold_ort.map((r) => r.first_result_ms)),
  warm_ours: stats(PW.samples.ours_e2e),
  warm_ort: stats(PW.samples.ort_passes),
  bytes_ours: median(phoneRuns.cold_ours.map((r) => r.bytes_sent)),
  bytes_ort: median(phoneRuns.cold_ort.map((r) => r.bytes_sent)),
};
const emulationAnswers = [...new Set([...phoneRuns.cold_ours, ...phoneRuns.cold_ort, PW].flatMap((r) => r.worker_emulation ?? [])
  .map((w) => `${w.network ? `Network.emulateNetworkConditions: ${w.network}; ` : ""}Emulation.setCPUThrottlingRate: ${w.cpu}`))];
const workerCount = [...phoneRuns.cold_ours, ...phoneRuns.cold_ort, PW].reduce((a, r) => a + (r.worker_emulation?.length ?? 0), 0);
const mib = (b) => (b == null ? "–" : (b / 2 ** 20).toFixed(1));
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
const phoneRatios = {
  cold: ph.cold_ours.median / ph.cold_ort.median,
  warm: ph.warm_ours.median / ph.warm_ort.median,
  desktop_e2e_vs_ort_many_x4: ortMany ? st.ours_e2e.median / (turns * st.ort_many.median) : null,
  parallel_vs_one_instance: st.ours_e2e.median / st.ours_e2e_1.median,
};
const issue15 = {
  "default image model download <= 5 MB gzipped": sizes.image_model.gzip9 <= 5e6,
  [`warm end-to-end classify, ${turns} turns, <= 1.0x onnxruntime-web ${PW.ort_threads} threads running the same ${turns} passes (under CDP's ${PHONE_CPU}x, which does not slow workers)`]: phoneRatios.warm <= 1.0,
  "cold start to first result, mobile profile <= 0.7x onnxruntime-web's": phoneRatios.cold <= 0.7,
  "bytes fetched before the first result (wasm + models + scripts, as sent) <= 8 MB": ph.bytes_ours <= 8e6,
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
    `Our load steps in the warm session (ms, www/worker.js's own): download, streaming SHA-256 (www/sha256.js) and compile, ` +
    `overlapped, ${f(warm.ours_load.download_check_compile, 0)}, \`Classifier.from_checked\` (parse, optimise) ` +
    `${f(warm.ours_load.construct, 0)}; onnxruntime-web session create ${f(warm.ort.ort_1.create_ms, 0)}.`,
  "",
  `Where one CNN pass goes in wasm (${shippedFile}, tract operators, each node timed, mean of ${RUNS} passes; the ` +
    `timing itself adds a little): ` +
    (warm.cnn_profile ?? []).slice(0, 8).map((o) => `${o.op} ${f(o.ms_per_pass, 1)} ms (${o.nodes} nodes)`).join(", ") + ".",
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
  "",
  `### Phone profile (issue 15), same Chromium session`,
  "",
  `Lighthouse's mobile profile over CDP: \`Network.emulateNetworkConditions\` ${PHONE_NET.downloadThroughput * 8 / 1e6} Mbit/s down, ` +
    `${PHONE_NET.uploadThroughput * 8 / 1e3} kbit/s up, ${PHONE_NET.latency} ms RTT, and \`Emulation.setCPUThrottlingRate\` ${PHONE_CPU}, on the page; ` +
    `files gzipped -9 as a static host sends them. Cold starts: ${PHONE_COLD} fresh contexts per engine, from \`load()\` ` +
    `(ours: skinscan.js, worker.js, wasm, models; onnxruntime-web: its worker, runtime, wasm, model) to the first result ` +
    `(ours: classify with ${turns} turns; onnxruntime-web: ${turns} passes with ${PW.ort_threads} threads, on a constant tensor). ` +
    `Warm: ${PHONE_RUNS} interleaved runs after the slowdown was applied.`,
  "",
  "| measurement | median ms | min | p90 | n | ratio (same run) |",
  "| --- | ---: | ---: | ---: | ---: | --- |",
  row(`cold start to first result, ours (${warm.instances.length} model instances)`, ph.cold_ours, `**${f(phoneRatios.cold, 2)}x** onnxruntime-web`),
  row(`cold start to first result, onnxruntime-web ${PW.ort_threads} threads, ${turns} passes`, ph.cold_ort, "1.00x"),
  row(`warm end-to-end classify, CDP CPU slowdown ${PHONE_CPU}x (reaches the page only, see below), ours (with metadata, ${turns} turns over ${PW.instances.length} instances)`, ph.warm_ours, `**${f(phoneRatios.warm, 2)}x** onnxruntime-web`),
  row(`warm, onnxruntime-web ${PW.ort_threads} threads, ${turns} passes of the CNN`, ph.warm_ort, "1.00x"),
  "",
  `**How far the CPU slowdown reached** (the same JS loop before and after, in this run): the page's main thread ` +
    `${f(PW.slowdown.page, 2)}x, a dedicated worker ${f(PW.slowdown.worker, 2)}x. Chromium's CPU throttling slows the ` +
    `page's main thread only, and both engines compute in workers: the "${PHONE_CPU}x CPU" rows above ran their CNNs at ` +
    `about this machine's speed, not a phone's; the comparison with onnxruntime-web is still under the same conditions. ` +
    `The page's network conditions do reach the workers' fetches (the cold starts take at least the bytes over ` +
    `${PHONE_NET.downloadThroughput * 8 / 1e6} Mbit/s: ${f(ph.bytes_ours / PHONE_NET.downloadThroughput, 1)} s for ours, ` +
    `${f(ph.bytes_ort / PHONE_NET.downloadThroughput, 1)} s for onnxruntime-web). ` +
    `Applying the same to each of the ${workerCount} auto-attached workers (\`Target.setAutoAttach\`) got: ${emulationAnswers.join(" | ") || "no workers attached"}.`,
  "",
  `Bytes fetched before the first result, as sent (gzip), median of the cold starts: ours ${mb(ph.bytes_ours)} MB, ` +
    `onnxruntime-web ${mb(ph.bytes_ort)} MB. Ours: ${(phoneRuns.cold_ours[0]?.sent ?? []).filter((e) => e.bytes > 0).map((e) => `${e.url.replace(/\?.*/, "")} ${(e.bytes / 1e3).toFixed(0)} kB`).join(", ")}.`,
  "",
  `Parallel turns on the desktop (${hc} cores): end to end ${f(st.ours_e2e.median)} ms over ${warm.instances.length} instances, ` +
    `${f(st.ours_e2e_1.median)} ms in one (${f(phoneRatios.parallel_vs_one_instance, 2)}x)` +
    (ortMany ? `; against onnxruntime-web ${hc} threads x ${turns} passes (${f(turns * st.ort_many.median)} ms): ${f(phoneRatios.desktop_e2e_vs_ort_many_x4, 2)}x.` : ".") +
    ` Wasm memory per instance (MiB): ${warm.instances.map((i) => `${i.role} ${mib(i.wasm_memory_bytes)}`).join(", ")}` +
    (warm.ua_memory?.worker_js?.length
      ? `; \`performance.measureUserAgentSpecificMemory()\`, each worker.js instance in the page (the two scanners' main instances and the helper; JS heap and wasm memory): ${warm.ua_memory.worker_js.map(mib).join(", ")} MiB.`
      : `; measureUserAgentSpecificMemory: ${warm.ua_memory?.error ?? "unavailable"}.`),
  "",
  "Targets (issue 15): " + Object.entries(issue15).map(([k, v]) => `${v ? "met" : "MISSED"}: ${k}`).join("; ") +
    `; .wasm <= 3 MB gzipped: ${targets[".wasm <= 3 MB gzipped (the build this browser loads)"] ? "met" : "MISSED"}` +
    "; the ROC-AUC checks of the compact weights: not measured by the bench (the compact model's own tests).",
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
      phone: { network: PHONE_NET, cpu: PHONE_CPU, stats: ph, ratios: phoneRatios, targets: issue15, runs: phoneRuns },
      instances: warm.instances,
      ours_load: warm.ours_load, ort_load: warm.ort, native: { ...native, stdout: undefined },
      samples: { ...S, cold: coldRuns },
    },
    null,
    1,
  ) + "\n",
);
writeFileSync(OUT.replace(/\.json$/, ".md"), table + "\n");
console.error(`wrote ${path.relative(ROOT, OUT)} and ${path.relative(ROOT, OUT.replace(/\.json$/, ".md"))}`);
