// The benchmark page (bench/run.mjs drives it; see ./build.sh bench). Two modes:
//   ?mode=warm&runs=N&warmup=W&image=URL  one page, one worker per engine, loaded once; then
//       W warm-up runs each and N timed rounds, each round one run of every engine in a rotating
//       order, so a burst of load on this shared machine hits every engine alike.
//   ?mode=cold&engine=ours|ort&image=URL   a fresh browser context per visit (run.mjs): from
//       skinscan.js's load() (or creating onnxruntime-web's worker) to ready, then the first
//       classify (or run).
// The result lands in window.benchResult (or window.benchError).
import { WASM_BUILDS, defaultModels, wasmFile } from "/choices.js";

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
// numeric range, the first value of a categorical one.
function everyFeature(manifest) {
  return Object.fromEntries(
    manifest.tabular.features.map((f) => [f.name, f.kind === "numeric" ? Math.round((f.min + f.max) / 2) : f.values[0]]),
  );
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
  const scanner = await load();
  const imageBytes = await (await fetch(IMAGE)).arrayBuffer();
  const meta = everyFeature(scanner.manifest);
  const engines = {
    ours_cnn: (n) => ours.call("cnn", { runs: n }),
    ours_e2e: (n) => classifyRuns(scanner, imageBytes, meta, n),
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
  return {
    mode: "warm", runs, warmup, userAgent: navigator.userAgent, hardwareConcurrency: hc,
    crossOriginIsolated: self.crossOriginIsolated, ours_load: oursLoad, ort: ortInfo,
    ort_default_threads: defaultThreads, samples,
  };
}

async function cold() {
  const engine = q.get("engine");
  const imageBytes = await (await fetch(IMAGE)).arrayBuffer();
  if (engine === "ours") {
    // The shipped path, exactly as the page takes it: skinscan.js's load() starts worker.js,
    // which downloads and compiles the wasm, downloads and checks the models, builds the Classifier.
    const { load } = await import("/skinscan.js");
    const t0 = performance.now();
    const scanner = await load();
    const t1 = performance.now();
    await scanner.classify(imageBytes);
    const t2 = performance.now();
    scanner.close();
    return { mode: "cold", engine, ready_ms: t1 - t0, first_ms: t2 - t1 };
  }
  const { img } = await manifest();
  const t0 = performance.now();
  const call = rpc(new Worker("ort.js", { type: "module" }));
  const info = await call("load", { modelUrl: `${MODELS}${img.file}`, threads: 1 });
  const t1 = performance.now();
  const size = img.input_shape.reduce((a, b) => a * b, 1);
  const input = new Float32Array(size).fill(0.5);
  const [first] = await call("run", { runs: 1, input, shape: img.input_shape });
  return { mode: "cold", engine, ready_ms: t1 - t0, first_ms: first, create_ms: info.create_ms };
}

(q.get("mode") === "cold" ? cold() : warm()).then(
  (r) => {
    window.benchResult = r;
    document.getElementById("log").textContent = "done";
  },
  (e) => {
    window.benchError = String(e?.stack ?? e);
    document.getElementById("log").textContent = window.benchError;
  },
);
