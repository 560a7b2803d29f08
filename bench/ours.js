// Benchmark worker for our wasm: the same loading steps as www/worker.js, each one timed, then
// timed runs on request. Messages: {type: "load", wasmUrl, manifestUrl, modelsUrl, imageUrl},
// {type: "cnn", runs}, {type: "e2e", runs}, {type: "input"}; each reply echoes `id`.
// `wasmUrl` picks the build (www/pkg has a +simd128 one and a relaxed-SIMD one; one JS glue).
import init, { Classifier } from "/pkg/skinscan.js";
import { serve } from "./serve.js";

let classifier = null;
let image = null;
let meta = null;

const handlers = {
  async load({ wasmUrl, manifestUrl, modelsUrl, imageUrl }) {
    const t0 = performance.now();
    const manifestText = await (await fetch(manifestUrl)).text();
    const manifest = JSON.parse(manifestText);
    const img = manifest.image_models.find((m) => m.id === manifest.default_image_model);
    const tab = manifest.tabular.models.find((m) => m.id === manifest.tabular.default);
    const bytes = async (url) => new Uint8Array(await (await fetch(url)).arrayBuffer());
    const marks = {};
    const [imageModel, tabularModel] = await Promise.all([
      bytes(new URL(img.file, modelsUrl)).then((b) => ((marks.models_fetched = performance.now() - t0), b)),
      bytes(new URL(tab.file, modelsUrl)),
      init({ module_or_path: fetch(wasmUrl) }).then(() => (marks.wasm_compiled = performance.now() - t0)),
    ]);
    const t1 = performance.now();
    for (const b of [imageModel, tabularModel]) await crypto.subtle.digest("SHA-256", b);
    const t2 = performance.now();
    classifier = Classifier.from_checked(manifestText, imageModel, tabularModel);
    const t3 = performance.now();
    image = new Uint8Array(await (await fetch(imageUrl)).arrayBuffer());
    // Metadata for every tabular feature, so end-to-end includes the tabular model: the middle
    // of a numeric range, the first value of a categorical one.
    meta = Object.fromEntries(
      manifest.tabular.features.map((f) => [f.name, f.kind === "numeric" ? Math.round((f.min + f.max) / 2) : f.values[0]]),
    );
    return {
      fetch_and_compile_ms: t1 - t0,
      ...marks,
      subtle_sha256_ms: t2 - t1,
      construct_ms: t3 - t2,
      ready_ms: t3 - t0,
      model: img.file,
    };
  },
  input() {
    return classifier.preprocess(image);
  },
  cnn({ runs }) {
    return Array.from(classifier.bench_cnn(image, runs));
  },
  e2e({ runs }) {
    const out = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const r = classifier.classify(image, meta);
      if (!r.metadata_used?.length) throw new Error("the tabular model did not run");
      out.push({ wall: performance.now() - t0, stages: r.timings_ms });
    }
    return out;
  },
};

serve(handlers);
