// SkinScan inference worker (a module worker): owns the wasm Classifier, so the page never freezes.
//
// Protocol (main thread -> worker), each message carries an `id` echoed in the reply:
//   {type: "load", id, manifestUrl, wasmUrl, modelsUrl, instances?, prefetched?}
//       fetches the manifest, the wasm (compiled as it streams in, from the start) and the two
//       default models (each hashed as it arrives, checked against the manifest's SHA-256), with
//       progress in bytes, builds the Classifier once, and (after the first result) starts
//       `instances - 1` helper workers (default 1 instance; skinscan.js asks for choices.js's
//       modelInstances()), each building its own Classifier from the same compiled module and bytes.
//       `prefetched` (skinscan.js's prefetch(): {manifestText, responses: {url: {body, type, length}}})
//       are those downloads already under way in the page, their bodies transferred streams: they
//       are read, hashed and compiled here just the same; whatever is missing is fetched here.
//       While the models download, the compiled wasm runs its tiny built-in graph (warmUpUntil).
//       -> {type: "progress", id, loaded, total}*  then {type: "loaded", id, manifest, modelVersion, instances}
//   {type: "classify", id, bytes: ArrayBuffer, meta: the page's raw details (see skinscan.js Metadata) | undefined}
//       prepare (decode, preprocess) here, the quarter turns' CNN spread over this instance and the
//       helpers that are ready, finish (turn average, tabular, ensemble, photo check) here. Makes
//       no network request. -> {type: "result", id, result}
//   {type: "instances", id, start?} -> {type: "instances", id, instances: [{role, ready, wasm_memory_bytes}]}
//       `start`: start the helpers now rather than after the first result (tests, benchmark).
// Any failure -> {type: "error", id, message, fatal}. `fatal` means the wasm instance may be
// unusable (a trap); the page then starts a fresh worker (its helpers end with it).
//
// The same file is the helper (a nested worker, started by the one above):
//   {type: "build", id, module: WebAssembly.Module, manifestText, image, tabular: ArrayBuffer}
//       -> {type: "built", id, wasm_memory_bytes}
//   {type: "turn", id, input: Float32Array, k} -> {type: "turned", id, output, wasm_memory_bytes}
//
// bench/ours.js imports loadClassifier() to time these very loading steps, and then replaces
// this module's onmessage with its own (its body runs after this module's).
import { defaultModels } from "./choices.js";
import init, { Classifier, warm_up } from "./pkg/skinscan.js";
import { Sha256 } from "./sha256.js";

let engine = null; // the page's worker: an Engine
let classifier = null; // a helper: its Classifier
let memory = null; // this instance's wasm memory

self.onmessage = async (event) => {
  const msg = event.data;
  try {
    if (msg.type === "load") {
      const loaded = await loadClassifier(msg);
      engine = loaded.engine;
      const { manifest, modelVersion } = loaded;
      self.postMessage({ type: "loaded", id: msg.id, manifest, modelVersion, instances: engine.size });
    } else if (msg.type === "classify") {
      if (!engine) throw new Error("the classifier is not loaded yet");
      const result = await engine.classify(new Uint8Array(msg.bytes), msg.meta);
      self.postMessage({ type: "result", id: msg.id, result });
    } else if (msg.type === "instances") {
      if (!engine) throw new Error("the classifier is not loaded yet");
      if (msg.start) engine.startHelpers();
      self.postMessage({ type: "instances", id: msg.id, instances: engine.describe() });
    } else if (msg.type === "build") {
      memory = (await init({ module_or_path: msg.module })).memory;
      classifier = Classifier.from_checked(msg.manifestText, new Uint8Array(msg.image), new Uint8Array(msg.tabular));
      self.postMessage({ type: "built", id: msg.id, wasm_memory_bytes: memory.buffer.byteLength });
    } else if (msg.type === "turn") {
      if (!classifier) throw new Error("this helper has no classifier yet");
      const output = classifier.run_turn(msg.input, msg.k);
      self.postMessage({ type: "turned", id: msg.id, output, wasm_memory_bytes: memory.buffer.byteLength });
    } else {
      throw new Error(`unknown request ${msg.type}`);
    }
  } catch (err) {
    const fatal = err instanceof WebAssembly.RuntimeError;
    self.postMessage({ type: "error", id: msg.id, message: oneLine(err), fatal });
  }
};

/**
 * The loading steps of a "load" request: resolves to {classifier, engine, manifest, modelVersion,
 * steps_ms: {download_check_compile, construct}} (how long the downloads, the SHA-256 checks and
 * the streaming compile took together, then `Classifier.from_checked`). Posts its progress
 * messages with `id`. `instances` (default 1): how many Classifiers the engine spreads a
 * classify's quarter turns over, this one included.
 */
export async function loadClassifier({ id, manifestUrl, wasmUrl, modelsUrl, instances = 1, prefetched = null }) {
  const t0 = performance.now();
  const get = source(prefetched);
  // One progress bar over the three downloads: the wasm's size comes from Content-Length (absent or
  // compressed on some hosts: then the bar just fills late), the models' from the manifest.
  const progress = new Progress(id);
  // The wasm does not depend on the manifest: its download and streaming compile start at once.
  // The compiled module also goes to the helpers, which instantiate it without compiling again.
  let module;
  const wasmReady = get(wasmUrl)
    .then((res) => WebAssembly.compileStreaming(progress.track(res)))
    .then(async (m) => {
      module = m;
      memory = (await init({ module_or_path: m })).memory;
    });
  wasmReady.catch(() => {}); // reported through Promise.all below, or moot if the manifest failed
  const manifestText = prefetched?.manifestText ?? (await (await get(manifestUrl)).text());
  let manifest;
  try {
    manifest = JSON.parse(manifestText);
  } catch {
    throw new Error(`${manifestUrl} is not valid JSON`);
  }
  const { image, tabular } = defaultModels(manifest);
  // The helpers' workers start now, so that their scripts load beside the downloads, never during
  // or after a classify (no request while a photo is checked); they build their Classifiers only
  // after the first result (Engine.startHelpers).
  const helpers = [];
  for (let i = 1; i < Math.min(instances, image.quarter_turns ?? 1); i++) helpers.push(new Helper());

  progress.expect((image.bytes || 0) + (tabular.bytes || 0));
  const modelUrl = (m) => new URL(m.file, modelsUrl).href;
  const downloads = Promise.all([
    downloadChecked(get, modelUrl(image), image, progress),
    downloadChecked(get, modelUrl(tabular), tabular, progress),
    wasmReady,
  ]);
  const warming = warmUpUntil(wasmReady, downloads);
  const [imageBytes, tabularBytes] = await downloads;
  await warming;
  progress.finish();
  const t1 = performance.now();
  // Both models were checked as they arrived, so wasm need not hash them again (issue 5: hashing
  // in wasm after the download cost about 0.1 s of cold start).
  const built = Classifier.from_checked(manifestText, imageBytes, tabularBytes);
  const steps_ms = { download_check_compile: t1 - t0, construct: performance.now() - t1 };
  return {
    classifier: built,
    engine: new Engine(built, helpers, { module, manifestText, image: imageBytes, tabular: tabularBytes }),
    manifest, modelVersion: built.model_version(), steps_ms,
  };
}

/**
 * While the models still download (on a phone's network the wasm arrives many seconds before
 * the image model), build and run the wasm's tiny built-in graph again and again (`warm_up`, a
 * few milliseconds a call once optimised), yielding between calls so the downloads are read and
 * hashed. The browser first runs wasm through a quick baseline compiler and optimises a function
 * only once it has run a while: by the time the model arrives, parsing, optimising and the CNN's
 * kernels run optimised code, and so does every helper (instances of one compiled module share
 * it). Stops when `downloads` settles, or after WARM_UP_CALLS calls. Never fails the load.
 */
const WARM_UP_CALLS = 60;
async function warmUpUntil(wasmReady, downloads) {
  let done = false;
  downloads.then(() => (done = true), () => (done = true));
  try {
    await wasmReady;
  } catch {
    return;
  }
  for (let i = 0; i < WARM_UP_CALLS && !done; i++) {
    try {
      warm_up(1);
    } catch {
      return; // a broken warm-up only costs the speed-up
    }
    await nextTask();
  }
}

/**
 * A classify across instances of the model (issue 15): this worker's Classifier prepares the photo
 * and finishes the assessment; the quarter turns' CNN passes, the bulk of the time, go to whichever
 * instances are ready, this one included. Each turn's outputs land at their turn's index, and the
 * Rust `finish` averages them in turn order, so the result is the same bits whatever ran where.
 */
//
// The helpers build their Classifiers only after the first result (issue 21), or when
// startHelpers() is called: built during the load, they fought this instance for the cores and
// slowed "ready" (WebKit reports 4 cores on a 2-core machine and took 8.6-11.2 s to "ready"), and
// the first photo does not need them.
class Engine {
  /** `helpers` (started Helper workers) build from `parts` ({module, manifestText, image, tabular}) once started. */
  constructor(classifier, helpers, parts) {
    this.classifier = classifier;
    this.helpers = helpers;
    this.parts = helpers.length ? parts : null;
  }
  get size() {
    return 1 + this.helpers.length;
  }
  /** Start the helpers' builds (once): each builds its own Classifier, and takes turns once ready. */
  startHelpers() {
    if (!this.parts) return;
    const parts = this.parts;
    this.parts = null; // the copies of the bytes are the helpers' now
    for (const h of this.helpers) h.build(parts);
  }
  async classify(bytes, meta) {
    try {
      const photo = this.classifier.prepare(bytes, meta);
      let turns;
      try {
        turns = await this.turns(photo.input(), this.classifier.quarter_turns());
      } catch (err) {
        photo.free();
        throw err;
      }
      return this.classifier.finish(photo, turns); // consumes photo
    } finally {
      // After the first answer (or error) is on its way: the helpers build while the person reads it.
      setTimeout(() => this.startHelpers(), 0);
    }
  }
  /** `[run_turn(input, 0), …, run_turn(input, n - 1)]`, spread over the ready instances. */
  async turns(input, n) {
    const out = new Array(n);
    const queue = Array.from({ length: n }, (_, k) => k);
    const helperShares = this.helpers.filter((h) => h.ready).map(async (h) => {
      for (let k; (k = queue.shift()) !== undefined;) {
        try {
          out[k] = await h.turn(input, k);
        } catch {
          out[k] = this.classifier.run_turn(input, k); // a helper failed: this instance runs its turn
        }
      }
    });
    const ownShare = (async () => {
      for (let k; (k = queue.shift()) !== undefined;) {
        out[k] = this.classifier.run_turn(input, k);
        await nextTask(); // let the helpers' replies in, so they take the next turns
      }
    })();
    await Promise.all([ownShare, ...helperShares]);
    return out;
  }
  /** Each instance: this one, then the helpers; wasm memory in bytes (null until built). */
  describe() {
    return [
      { role: "main", ready: true, wasm_memory_bytes: memory?.buffer.byteLength ?? null },
      ...this.helpers.map((h) => ({
        role: "helper", ready: h.ready, started: !this.parts, turns: h.turns, wasm_memory_bytes: h.memoryBytes, error: h.error,
      })),
    ];
  }
}

/** A nested worker running this same file with its own Classifier, for quarter turns. */
class Helper {
  constructor() {
    this.ready = false;
    this.memoryBytes = null;
    this.error = null;
    this.turns = 0; // turns it has run, for the tests and the benchmark
    this.next = 1;
    this.pending = new Map();
    this.worker = spawn(import.meta.url);
    this.worker.onmessage = ({ data }) => {
      const p = this.pending.get(data.id);
      if (!p) return;
      this.pending.delete(data.id);
      if (data.wasm_memory_bytes) this.memoryBytes = data.wasm_memory_bytes;
      if (data.type === "error") {
        if (data.fatal) this.retire(data.message);
        p.reject(new Error(data.message));
      } else p.resolve(data);
    };
    this.worker.onerror = (event) => {
      event.preventDefault?.();
      this.retire(`a model worker failed: ${event.message || "could not start"}`);
    };
  }
  /** Build its Classifier; it takes turns once that succeeded (a failure leaves it out: slower, same result). */
  build(parts) {
    this.call({ type: "build", ...parts }).then(
      () => (this.ready = !this.error),
      (err) => this.retire(err.message),
    );
  }
  async turn(input, k) {
    const { output } = await this.call({ type: "turn", input, k });
    this.turns++;
    return output;
  }
  call(msg) {
    if (this.error) return Promise.reject(new Error(this.error));
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id });
    });
  }
  /** Out of service for good: pending calls fail, and it is never given another turn. */
  retire(reason) {
    this.ready = false;
    this.error = reason;
    this.worker.terminate();
    for (const p of this.pending.values()) p.reject(new Error(reason));
    this.pending.clear();
  }
}

/** Same-origin: a plain module worker. Cross-origin (the widget from a CDN): a blob shim that imports it. */
function spawn(url) {
  const options = { type: "module", name: "skinscan-turns" };
  if (new URL(url).origin === self.location.origin) return new Worker(url, options);
  const shim = new Blob([`import ${JSON.stringify(url)};`], { type: "text/javascript" });
  return new Worker(URL.createObjectURL(shim), options);
}

/** Resolves in a later task: pending messages (a helper's finished turn) are handled first. */
function nextTask() {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

/** `get(url)`: the prefetched response for `url` (once), else a fetch. */
function source(prefetched) {
  const ready = new Map(Object.entries(prefetched?.responses ?? {}));
  return (url) => {
    const r = ready.get(url);
    if (!r) return get(url);
    ready.delete(url);
    const headers = {};
    if (r.type) headers["Content-Type"] = r.type;
    if (r.length) headers["Content-Length"] = r.length;
    return Promise.resolve(new Response(r.body, { headers }));
  };
}

async function get(url) {
  let res;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new Error(`could not download ${url} (${oneLine(err)}); check your connection and reload`);
  }
  if (!res.ok) throw new Error(`could not download ${url} (HTTP ${res.status})`);
  return res;
}

/**
 * A model file, read piece by piece into one buffer (of the manifest's size) and hashed as it
 * arrives (www/sha256.js: crypto.subtle.digest only hashes a whole file, after the download), then
 * checked against the manifest's SHA-256.
 */
async function downloadChecked(get, url, model, progress) {
  const res = await get(url);
  const hash = new Sha256();
  let buf = new Uint8Array(model.bytes || 0);
  let n = 0;
  const reader = res.body.getReader();
  for (let r; !(r = await reader.read()).done;) {
    const piece = r.value;
    if (n + piece.length > buf.length) {
      const bigger = new Uint8Array(Math.max(2 * buf.length, n + piece.length));
      bigger.set(buf.subarray(0, n));
      buf = bigger;
    }
    buf.set(piece, n);
    n += piece.length;
    hash.update(piece);
    progress.add(piece.length);
  }
  const hex = hash.hex();
  if (hex !== String(model.sha256).toLowerCase()) {
    throw new Error(
      `model file ${model.file} failed its integrity check (SHA-256 ${hex.slice(0, 12)}… does not match the manifest); reload the page`,
    );
  }
  return n === buf.length ? buf : buf.slice(0, n);
}

class Progress {
  constructor(id) {
    this.id = id;
    this.loaded = 0;
    this.total = 0;
    this.last = 0;
  }
  /** `bytes` more to come. */
  expect(bytes) {
    this.total += bytes;
  }
  /** Wrap a Response so its body reports bytes read, and expect its Content-Length. */
  track(res) {
    this.expect(Number(res.headers.get("Content-Length")) || 0);
    if (!res.body) return res;
    const self = this;
    const counted = res.body.pipeThrough(
      new TransformStream({
        transform(chunk, ctrl) {
          self.add(chunk.byteLength);
          ctrl.enqueue(chunk);
        },
      }),
    );
    return new Response(counted, { status: res.status, headers: res.headers });
  }
  add(n) {
    this.loaded += n;
    const now = performance.now();
    if (now - this.last > 50) {
      this.last = now;
      this.post();
    }
  }
  post() {
    postMessage({ type: "progress", id: this.id, loaded: this.loaded, total: Math.max(this.total, this.loaded) });
  }
  finish() {
    this.total = this.loaded;
    this.post();
  }
}

function oneLine(err) {
  const text = err && err.message ? err.message : String(err);
  return text.split("\n")[0].trim() || "unknown error";
}
