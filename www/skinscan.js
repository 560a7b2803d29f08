// SkinScan embedding API: the classifier in a module Web Worker, behind two calls.
//
//   import { load } from "https://example.org/skinscan/skinscan.js";
//   const scanner = await load({ onProgress: ({ loaded, total }) => … });
//   const assessment = await scanner.classify(file, { age: 55, sex: "male", site: "posterior torso",
//                                                     photoType: "auto", grew: "yes", diameterMm: 6 });
//
// The wasm, the worker and the models resolve relative to this file (import.meta.url) unless
// options override them. Photos are read in the page and handed to the worker; nothing is uploaded.
import { defaultModels, modelInstances, relaxedSimd, wasmFile } from "./choices.js";
import { missingFeatures, UnsupportedBrowserError } from "./features.js";

/** Whether this engine has relaxed SIMD (and so loads the relaxed-SIMD build): see choices.js. */
export { relaxedSimd };

/**
 * @typedef {object} LoadOptions
 * @property {string|URL} [base]        folder holding worker.js, pkg/ and models/ (default: this module's folder)
 * @property {string|URL} [manifestUrl] default `${base}models/manifest.json`
 * @property {string|URL} [modelsUrl]   folder the manifest's model files are relative to (default: the manifest's folder)
 * @property {string|URL} [wasmUrl]     default `${base}pkg/skinscan_relaxed_bg.wasm` where the browser has
 *   relaxed SIMD (see choices.js relaxedSimd()), else `${base}pkg/skinscan_bg.wasm`
 * @property {string|URL} [workerUrl]   default `${base}worker.js`
 * @property {number} [instances]     model instances (workers) a classify spreads its quarter turns over
 *   (default: choices.js modelInstances(), min(4, navigator.hardwareConcurrency)); the result is the same bits for any count
 * @property {(p: {loaded: number, total: number}) => void} [onProgress] download progress in bytes
 *
 * @typedef {object} Metadata   every field optional; empty, null or "unknown" means "not given". Passed to
 *   the engine as given: src/tabular.rs parses and checks it (an unknown key or a bad value is an error
 *   naming the field).
 * @property {number|string} [age]  years, 0–120
 * @property {"male"|"female"} [sex]
 * @property {string} [site]        one of the manifest's tabular site values
 * @property {"auto"|"dermoscopic"|"clinical"} [photoType]  taken with a dermatoscope? "auto" (default) detects it
 * @property {"yes"|"no"|boolean} [itch]  and likewise grew, hurt, changed, bleed, elevation
 * @property {number|string} [diameterMm]  the spot's size across, in millimetres
 *
 * @typedef {object} Assessment  what the wasm Classifier returns (see README): malignant_probability,
 *   risk_tier ("low"|"moderate"|"high"), diagnosis {code: p}, image_probability, tabular_probability,
 *   metadata_used (the fields used: ["age", "grew", …], [] for photo only),
 *   photo_type ({kind: "dermoscopic"|"clinical", source: "detected"|"given", probability: P(clinical)}),
 *   warnings (codes, each front end words them: {code: "close_up"}, {code: "no_gate"},
 *   {code: "photo_quality", verdict, reason}, {code: "small_image", width, height}),
 *   model_version, timings_ms, top_dx,
 *   quality (null, or {verdict: "ok"|"retake"|"not_a_lesion", reason, advice, ood_score, measures}: the
 *   photo check; when the verdict is not ok the tier is unreliable and `advice` says how to retake),
 *   heatmap ({width, height, values: width*height numbers in 0..1, row-major, min, max}: where the
 *   model saw malignant signs, on the photo squashed to a square)
 */

/**
 * Start a worker, download and verify the models, and build the classifier once.
 * @param {LoadOptions} [options]
 * @returns {Promise<{manifest: object, modelVersion: string,
 *   classify(input: Blob|ArrayBuffer|ArrayBufferView, meta?: Metadata): Promise<Assessment>,
 *   close(): void}>}
 */
export async function load(options = {}) {
  // A browser without what the classifier needs is told so now, in words (features.js), not by a
  // failure deep in the worker. The error's `.missing` lists what it lacks.
  const lacking = missingFeatures().filter((m) => m.for === "classifier");
  if (lacking.length) throw new UnsupportedBrowserError(lacking);
  const base = new URL(options.base ?? ".", import.meta.url);
  const manifestUrl = new URL(options.manifestUrl ?? "models/manifest.json", base);
  const urls = {
    manifestUrl: manifestUrl.href,
    modelsUrl: new URL(options.modelsUrl ?? ".", manifestUrl).href,
    wasmUrl: new URL(options.wasmUrl ?? wasmFile(), base).href,
    instances: options.instances ?? modelInstances(),
  };
  const workerUrl = new URL(options.workerUrl ?? "worker.js", base);

  let worker = null;
  let info = null;
  let loading = null;
  let nextId = 1;
  const pending = new Map();

  function start() {
    worker = spawn(workerUrl);
    worker.onmessage = ({ data }) => {
      const p = pending.get(data.id);
      if (!p) return;
      if (data.type === "progress") return options.onProgress?.({ loaded: data.loaded, total: data.total });
      pending.delete(data.id);
      if (data.type === "error") {
        // A trap can leave the wasm instance broken: drop this worker, the next call starts afresh.
        if (data.fatal) restart();
        p.reject(new Error(data.message));
      } else p.resolve(data);
    };
    worker.onerror = (event) => {
      event.preventDefault?.();
      const err = new Error(`the classifier worker failed: ${event.message || "could not start (is pkg/ built?)"}`);
      for (const p of pending.values()) p.reject(err);
      pending.clear();
      restart();
    };
    loading = prefetch(urls).then(({ prefetched, transfer }) => call({ type: "load", ...urls, prefetched }, transfer));
    return loading;
  }
  function restart() {
    worker?.terminate();
    worker = null;
    loading = null;
  }
  function call(msg, transfer = []) {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage({ ...msg, id }, transfer);
    });
  }

  try {
    info = await start();
  } catch (err) {
    restart();
    throw err;
  }
  return {
    manifest: info.manifest,
    modelVersion: info.modelVersion,
    async classify(input, meta) {
      const bytes = await toArrayBuffer(input);
      if (!worker) await start();
      else await loading;
      const reply = await call({ type: "classify", bytes, meta: meta ?? undefined }, [bytes]);
      return reply.result;
    },
    /**
     * Each model instance: `{role: "main"|"helper", ready, turns, wasm_memory_bytes}` (tests, benchmark).
     * The helpers start after the first result; `{start: true}` starts them now.
     */
    async instances({ start: now = false } = {}) {
      if (!worker) await start();
      else await loading;
      return (await call({ type: "instances", start: now })).instances;
    },
    close() {
      restart();
    },
  };
}

/**
 * The downloads start here, while the worker's script and its imports load (on a phone's network
 * that is three round trips with nothing else on the wire): the wasm and the manifest at once,
 * the manifest's default models as soon as it arrives. The worker gets each response's body as a
 * transferred stream and reads, hashes and compiles it exactly as if it had fetched it itself.
 * Where streams cannot be transferred, or anything here fails, nothing is sent and the worker
 * fetches for itself (and reports what fails).
 * @returns {Promise<{prefetched: null | {manifestText: string, responses: Object<string, {body: ReadableStream,
 *   type: string|null, length: string|null}>}, transfer: ReadableStream[]}>}
 */
async function prefetch({ manifestUrl, modelsUrl, wasmUrl }) {
  if (!streamsTransfer()) return { prefetched: null, transfer: [] };
  const pending = [];
  try {
    const wasm = fetch(wasmUrl);
    pending.push(wasm);
    const manifestRes = await fetch(manifestUrl);
    if (!manifestRes.ok) throw new Error(`HTTP ${manifestRes.status}`);
    const manifestText = await manifestRes.text();
    const { image, tabular } = defaultModels(JSON.parse(manifestText));
    const urls = [wasmUrl, ...[image, tabular].map((m) => new URL(m.file, modelsUrl).href)];
    const fetches = [wasm, ...urls.slice(1).map((u) => fetch(u))];
    pending.push(...fetches);
    const responses = {};
    for (const [i, res] of (await Promise.all(fetches)).entries()) {
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      responses[urls[i]] = { body: res.body, type: res.headers.get("Content-Type"), length: res.headers.get("Content-Length") };
    }
    return { prefetched: { manifestText, responses }, transfer: Object.values(responses).map((r) => r.body) };
  } catch {
    // Leave nothing half-read: the worker starts over, from the browser's cache where it can.
    for (const p of pending) p.then((res) => res.body?.cancel(), () => {});
    return { prefetched: null, transfer: [] };
  }
}

/** Whether this browser can hand a ReadableStream to a worker (not every browser can). */
function streamsTransfer() {
  try {
    const s = new ReadableStream();
    structuredClone(s, { transfer: [s] });
    return true;
  } catch {
    return false;
  }
}

/** Same-origin: a plain module worker. Cross-origin (widget served from a CDN): a blob shim that imports it. */
function spawn(url) {
  if (url.origin === self.location.origin) return new Worker(url, { type: "module", name: "skinscan" });
  const shim = new Blob([`import ${JSON.stringify(url.href)};`], { type: "text/javascript" });
  return new Worker(URL.createObjectURL(shim), { type: "module", name: "skinscan" });
}

/** A private copy of the bytes, so transferring it to the worker never detaches the caller's buffer. */
async function toArrayBuffer(input) {
  if (input instanceof Blob) return input.arrayBuffer();
  if (input instanceof ArrayBuffer) return input.slice(0);
  if (ArrayBuffer.isView(input)) {
    return input.buffer.slice(input.byteOffset, input.byteOffset + input.byteLength);
  }
  throw new TypeError("classify() takes a File, Blob, ArrayBuffer or typed array");
}
