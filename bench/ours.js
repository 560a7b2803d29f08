// Benchmark worker for our wasm's CNN alone: www/worker.js's own loading steps (imported, so the
// benchmark times the loader that ships), then timed runs of the image model on request.
// Messages: {type: "load", wasmUrl, manifestUrl, modelsUrl, imageUrl}, {type: "cnn", runs},
// {type: "profile", runs}, {type: "input"}; each reply echoes `id`. `wasmUrl` picks the build (www/pkg has a +simd128 one
// and a relaxed-SIMD one; one JS glue). End to end is timed through www/skinscan.js (bench.js).
//
// The CNN-only figure and onnxruntime-web's input need what the page never asks for: one pass of
// the graph, and the preprocessed tensor. The wasm Classifier's two benchmark hooks give them
// (`bench_cnn`, `preprocess`; src/wasm.rs): `classify` runs the graph once per quarter turn, with
// the photo check, and returns no tensor.
import { loadClassifier } from "/worker.js";
import { serve } from "./serve.js";

let classifier = null;
let image = null;

const handlers = {
  async load({ wasmUrl, manifestUrl, modelsUrl, imageUrl }) {
    const t0 = performance.now();
    const loaded = await loadClassifier({ wasmUrl, manifestUrl, modelsUrl });
    const ready = performance.now() - t0;
    classifier = loaded.classifier;
    image = new Uint8Array(await (await fetch(imageUrl)).arrayBuffer());
    return { ...loaded.steps_ms, ready_ms: ready };
  },
  input() {
    return classifier.preprocess(image);
  },
  cnn({ runs }) {
    return Array.from(classifier.bench_cnn(image, runs));
  },
  /** The CNN's time by tract operator over `runs` passes: [{op, ms_per_pass, nodes}], slowest first. */
  profile({ runs }) {
    return classifier.bench_profile(image, runs);
  },
};

// After worker.js's own onmessage (its module body ran first, as an import): this one replaces it.
serve(handlers);
