// SkinScan inference worker (a module worker): owns the wasm Classifier, so the page never freezes.
//
// Protocol (main thread -> worker), each message carries an `id` echoed in the reply:
//   {type: "load", id, manifestUrl, wasmUrl, modelsUrl}
//       fetches the manifest, the wasm and the two default models (streamed, with progress),
//       checks each model's SHA-256 against the manifest, builds the Classifier once.
//       -> {type: "progress", id, loaded, total}*  then {type: "loaded", id, manifest, modelVersion}
//   {type: "classify", id, bytes: ArrayBuffer, meta: the page's raw details (see skinscan.js Metadata) | undefined}
//       runs the whole pipeline in wasm. Makes no network request.
//       -> {type: "result", id, result}
// Any failure -> {type: "error", id, message, fatal}. `fatal` means the wasm instance may be
// unusable (a trap); the page then starts a fresh worker.
//
// bench/ours.js imports loadClassifier() to time these very loading steps, and then replaces
// this module's onmessage with its own (its body runs after this module's).
import { defaultModels } from "./choices.js";
import init, { Classifier } from "./pkg/skinscan.js";

let classifier = null;

self.onmessage = async (event) => {
  const msg = event.data;
  try {
    if (msg.type === "load") {
      let manifest, modelVersion;
      ({ classifier, manifest, modelVersion } = await loadClassifier(msg));
      self.postMessage({ type: "loaded", id: msg.id, manifest, modelVersion });
    } else if (msg.type === "classify") {
      if (!classifier) throw new Error("the classifier is not loaded yet");
      const result = classifier.classify(new Uint8Array(msg.bytes), msg.meta);
      self.postMessage({ type: "result", id: msg.id, result });
    } else {
      throw new Error(`unknown request ${msg.type}`);
    }
  } catch (err) {
    const fatal = err instanceof WebAssembly.RuntimeError;
    self.postMessage({ type: "error", id: msg.id, message: oneLine(err), fatal });
  }
};

/**
 * The loading steps of a "load" request: resolves to {classifier, manifest, modelVersion,
 * steps_ms: {download_check_compile, construct}} (how long the downloads, the SHA-256 checks and
 * the streaming compile took together, then `Classifier.from_checked`). Posts its progress
 * messages with `id`.
 */
export async function loadClassifier({ id, manifestUrl, wasmUrl, modelsUrl }) {
  const t0 = performance.now();
  const manifestRes = await get(manifestUrl);
  const manifestText = await manifestRes.text();
  let manifest;
  try {
    manifest = JSON.parse(manifestText);
  } catch {
    throw new Error(`${manifestUrl} is not valid JSON`);
  }
  const { image, tabular } = defaultModels(manifest);

  // One progress bar over all three downloads. The manifest knows the models' sizes; the wasm's
  // comes from Content-Length (absent or compressed on some hosts: then the bar just fills late).
  const progress = new Progress(id, [image.bytes || 0, tabular.bytes || 0]);
  const modelUrl = (m) => new URL(m.file, modelsUrl).href;
  const [imageBytes, tabularBytes] = await Promise.all([
    download(modelUrl(image), progress).then((b) => verify(b, image)),
    download(modelUrl(tabular), progress).then((b) => verify(b, tabular)),
    // Streaming compile: hand wasm-bindgen a Response whose body counts bytes as they arrive.
    get(wasmUrl).then((res) => init({ module_or_path: progress.track(res, true) })),
  ]);
  progress.finish();
  const t1 = performance.now();
  // Both models passed verify() above, so wasm need not hash them again (issue 5: hashing in
  // wasm cost about 0.1 s of cold start, crypto.subtle about 20 ms).
  const built = Classifier.from_checked(manifestText, imageBytes, tabularBytes);
  const steps_ms = { download_check_compile: t1 - t0, construct: performance.now() - t1 };
  return { classifier: built, manifest, modelVersion: built.model_version(), steps_ms };
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

async function download(url, progress) {
  const res = progress.track(await get(url), false);
  return new Uint8Array(await res.arrayBuffer());
}

async function verify(bytes, model) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  if (hex !== String(model.sha256).toLowerCase()) {
    throw new Error(
      `model file ${model.file} failed its integrity check (SHA-256 ${hex.slice(0, 12)}… does not match the manifest); reload the page`,
    );
  }
  return bytes;
}

class Progress {
  constructor(id, knownSizes) {
    this.id = id;
    this.loaded = 0;
    this.total = knownSizes.reduce((a, b) => a + b, 0);
    this.last = 0;
  }
  /** Wrap a Response so its body reports bytes read; `addLength` adds its Content-Length to the total. */
  track(res, addLength) {
    if (addLength) this.total += Number(res.headers.get("Content-Length")) || 0;
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
