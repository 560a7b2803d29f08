// The benchmark page (bench/run.mjs drives it; see ./build.sh bench). Two modes:
//   ?mode=warm&runs=N&warmup=W&image=URL  one page, one worker per engine, loaded once; then
//       W warm-up runs each and N timed rounds, each round one run of every engine in a rotating
//       order, so a burst of load on this shared machine hits every engine alike.
//   ?mode=cold&engine=ours|ort&image=URL   a fresh browser context per visit (run.mjs): from
//       skinscan.js's load() (or creating onnxruntime-web's worker) to ready, then the first
//       classify (or run).
// The result lands in window.benchResult (or window.benchError).
import { WASM_BUILDS, defaultModels, wasmFile } from "/choices.js";
import { spin } from "./serve.js";

const q = new URLSearchParams(location.search);
const MODELS = "/models/";
const IMAGE = q.get("image");

function rpc(worker) {
  let next = 1;
  const pending = new Map();
  worker.onmessage = ({ data }) => {
    const p = pending.get(data.id);
    if (!p) return;
    pending.delete(data.id);
    data.error ? p.reject(new Error(data.error)) : p.resolve(data.value);
  };
  worker.onerror = (e) => {
    for (const p of pending.values()) p.reject(new Error(e.message || "worker error"));
    pending.clear();
  };
  return (type, args = {}, transfer = []) =>
    new Promise((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      worker.postMessage({ type, id, ...args }, transfer);
    });
}

async function manifest() {
  const m = await (await fetch(`${MODELS}manifest.json`)).json();
  return { m, img: defaultModels(m).image };
}

// Metadata for every tabular feature, so end to end includes the tabular model: the middle of a
// numeric range, the first value of a categorical one, "yes" for a question.
function everyFeature(manifest) {
  const value = (f) => (f.kind === "numeric" ? Math.round((f.min + f.max) / 2) : f.kind === "boolean" ? "yes" : f.values[0]);
  return Object.fromEntries(manifest.tabular.features.map((f) => [f.name, value(f)]));
}

/**
 * performance.measureUserAgentSpecificMemory() (cross-origin isolated pages only), the entries of
 * www/worker.js's instances: the main instances (of the parallel and the one-instance scanner) and
 * the helper(s). Each entry counts that worker's JS heap and its wasm memory. Null where unavailable.
 */
async function userAgentMemory() {
  if (!performance.measureUserAgentSpecificMemory) return null;
  try {
    const m = await Promise.race([
      performance.measureUserAgentSpecificMemory(),
      new Promise((r) => setTimeout(() => r(null), 10_000)),
    ]);
    if (!m) return { error: "no answer within 10 s" };
    const workers = m.breakdown
      .filter((b) => b.bytes > 0 && b.attribution.some((a) => /\/worker\.js$/.test(a.url ?? "")))
      .map((b) => b.bytes);
    return { bytes: m.bytes, worker_js: workers };
  } catch (err) {
    return { error: String(err) };
  }
}

/** `scanner` once every helper instance has built its Classifier (so that each takes turns). */
async function whenReady(scanner) {
  for (let t0 = performance.now(); performance.now() - t0 < 120_000;) {
    if ((await scanner.instances({ start: true })).every((i) => i.ready)) return scanner;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`helper instances not ready: ${JSON.stringify(await scanner.instances())}`);
}

/** `runs` calls of the shipped classify(), each timed from the page (the worker round trip included). */
async function classifyRuns(scanner, imageBytes, meta, runs) {
  const out = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = await scanner.classify(imageBytes, meta);
    if (!r.metadata_used?.length) throw new Error("the tabular model did not run");
    out.push({ wall: performance.now() - t0, stages: r.timings_ms });
  }
  return out;
}

async function warm() {
  const runs = Number(q.get("runs") ?? 30);
  const warmup = Number(q.get("warmup") ?? 5);
  const { img } = await manifest();
  const modelUrl = `${MODELS}${img.file}`;

  // Ours: the build this browser gets from skinscan.js (relaxed SIMD where supported), and the
  // plain +simd128 build beside it when they differ, so each run re-measures what the twin buys.
  // End to end goes through the shipped skinscan.js and worker.js, as the page does; the CNN
  // alone through bench/ours.js, which loads with worker.js's own steps.
  const { load } = await import("/skinscan.js");
  const shipped = `/${wasmFile()}`;
  const oursWorker = async (wasmUrl) => {
    const call = rpc(new Worker("ours.js", { type: "module" }));
    const info = await call("load", {
      wasmUrl, manifestUrl: `${MODELS}manifest.json`, modelsUrl: new URL(MODELS, location.href).href, imageUrl: IMAGE,
    });
    return { call, info };
  };
  const ours = await oursWorker(shipped);
  const oursLoad = { ...ours.info, wasm: shipped };
  const input = await ours.call("input");
  const scanner = await whenReady(await load());
  // The same with every turn in one instance (load({instances: 1})): what the parallel turns buy.
  const single = await load({ instances: 1 });
  const imageBytes = await (await fetch(IMAGE)).arrayBuffer();
  const meta = everyFeature(scanner.manifest);
  const engines = {
    ours_cnn: (n) => ours.call("cnn", { runs: n }),
    ours_e2e: (n) => classifyRuns(scanner, imageBytes, meta, n),
    ours_e2e_1: (n) => classifyRuns(single, imageBytes, meta, n),
  };
  if (shipped !== `/${WASM_BUILDS.plain}`) {
    const plain = await oursWorker(`/${WASM_BUILDS.plain}`);
    engines.ours_simd128_cnn = (n) => plain.call("cnn", { runs: n });
  }
  const ortInfo = {};
  const ortWorker = async (threads) => {
    const w = new Worker("ort.js", { type: "module" });
    const call = rpc(w);
    const info = await call("load", { modelUrl, threads });
    await call("run", { runs: 1, input, shape: img.input_shape });
    return { w, call, info };
  };
  const one = await ortWorker(1);
  ortInfo.ort_1 = one.info;
  engines.ort_1 = (n) => one.call("run", { runs: n });
  const hc = navigator.hardwareConcurrency || 1;
  if (hc > 1) {
    const many = await ortWorker(hc);
    ortInfo[`ort_${hc}`] = many.info;
    engines[`ort_${hc}`] = (n) => many.call("run", { runs: n });
  }
  // onnxruntime-web's own default thread count: a row of its own only when it differs from both.
  const dflt = await ortWorker(0);
  ortInfo.ort_default = dflt.info;
  const defaultThreads = dflt.info.threads;
  if (defaultThreads !== 1 && defaultThreads !== hc) {
    engines.ort_default = (n) => dflt.call("run", { runs: n });
  } else {
    dflt.w.terminate();
  }

  const names = Object.keys(engines);
  for (const name of names) await engines[name](warmup);
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < runs; r++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(r + k) % names.length];
      samples[name].push(...(await engines[name](1)));
    }
  }
  // Where a pass of the CNN goes, by tract operator (the shipped build), after the timed runs.
  const cnnProfile = await ours.call("profile", { runs });
  const uaMemory = await userAgentMemory();
  return {
    mode: "warm", runs, warmup, ua_memory: uaMemory, cnn_profile: cnnProfile, userAgent: navigator.userAgent, hardwareConcurrency: hc,
    crossOriginIsolated: self.crossOriginIsolated, ours_load: oursLoad, ort: ortInfo,
    instances: await scanner.instances(),
    ort_default_threads: defaultThreads, samples,
  };
}

async function cold() {
  const engine = q.get("engine");
  // passes: runs of the graph for the first result (4 = our quarter turns); threads: onnxruntime-web's.
  const passes = Number(q.get("passes") ?? 1);
  const threads = Number(q.get("threads") ?? 1);
  const imageBytes = await (await fetch(IMAGE)).arrayBuffer();
  if (engine === "ours") {
    // The shipped path, exactly as the page takes it: skinscan.js's load() starts worker.js,
    // which downloads and compiles the wasm, downloads and checks the models, builds the Classifier
    // (and its helper instances).
    const t0 = performance.now();
    const { load } = await import("/skinscan.js");
    const scanner = await load();
    const t1 = performance.now();
    await scanner.classify(imageBytes);
    const t2 = performance.now();
    const instances = await scanner.instances();
    scanner.close();
    return { mode: "cold", engine, ready_ms: t1 - t0, first_ms: t2 - t1, first_result_ms: t2 - t0, instances };
  }
  const t0 = performance.now();
  const { img } = await manifest();
  const call = rpc(new Worker("ort.js", { type: "module" }));
  const info = await call("load", { modelUrl: `${MODELS}${img.file}`, threads });
  const t1 = performance.now();
  const size = img.input_shape.reduce((a, b) => a * b, 1);
  const input = new Float32Array(size).fill(0.5);
  await call("run", { runs: passes, input, shape: img.input_shape });
  const t2 = performance.now();
  return {
    mode: "cold", engine, ready_ms: t1 - t0, first_ms: t2 - t1, first_result_ms: t2 - t0, create_ms: info.create_ms,
    threads: info.threads,
  };
}

/**
 * ?mode=phone&runs=N (issue 15): warm end-to-end classify under a CPU slowdown that bench/run.mjs
 * applies over CDP once this page says it is ready (window.benchReady; it then calls window.benchGo).
 * Ours: skinscan.js classify() with metadata (its quarter turns over its instances); onnxruntime-web:
 * the same graph `passes` times (4) with `threads` threads, timed from the page both. spin(), the same
 * JS loop on the page and in a worker before and after, shows which threads the slowdown reached.
 */
async function phone() {
  const runs = Number(q.get("runs") ?? 10);
  const passes = Number(q.get("passes") ?? 4);
  const threads = Number(q.get("threads") ?? 2);
  const { img } = await manifest();
  const { load } = await import("/skinscan.js");
  const scanner = await whenReady(await load());
  const imageBytes = await (await fetch(IMAGE)).arrayBuffer();
  const meta = everyFeature(scanner.manifest);
  const call = rpc(new Worker("ort.js", { type: "module" }));
  const ortInfo = await call("load", { modelUrl: `${MODELS}${img.file}`, threads });
  const size = img.input_shape.reduce((a, b) => a * b, 1);
  const input = new Float32Array(size).fill(0.5);
  const engines = {
    ours_e2e: async () => {
      const t0 = performance.now();
      await scanner.classify(imageBytes, meta);
      return performance.now() - t0;
    },
    ort_passes: async () => {
      const t0 = performance.now();
      await call("run", { runs: passes, input, shape: img.input_shape });
      return performance.now() - t0;
    },
  };
  for (const e of Object.values(engines)) await e();
  const spins = async () => ({ page: spin(), worker: await call("spin") });
  const before = await spins();
  window.benchReady = true;
  await new Promise((resolve) => (window.benchGo = resolve));
  const after = await spins();
  for (const e of Object.values(engines)) await e(); // one warm-up at the new speed
  const samples = { ours_e2e: [], ort_passes: [] };
  const names = Object.keys(engines);
  for (let r = 0; r < runs; r++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(r + k) % names.length];
      samples[name].push(await engines[name]());
    }
  }
  const instances = await scanner.instances();
  return {
    mode: "phone", runs, passes, ort_threads: ortInfo.threads, samples, instances,
    slowdown: { page: after.page / before.page, worker: after.worker / before.worker, before, after },
  };
}

const MODES = { cold, warm, phone };
MODES[q.get("mode") ?? "warm"]().then(
  (r) => {
    window.benchResult = r;
    document.getElementById("log").textContent = "done";
  },
  (e) => {
    window.benchError = String(e?.stack ?? e);
    document.getElementById("log").textContent = window.benchError;
  },
);
