// Benchmark worker for onnxruntime-web (npm, wasm backend) on the same .onnx file.
// Messages: {type: "load", modelUrl, threads}, {type: "run", runs, input: Float32Array, shape}.
// `threads` 0 leaves env.wasm.numThreads unset, i.e. onnxruntime-web's own default.
import * as ort from "/ort/ort.wasm.min.mjs";
import { serve } from "./serve.js";

let session = null;
let feeds = null;

const handlers = {
  async load({ modelUrl, threads }) {
    const t0 = performance.now();
    ort.env.wasm.wasmPaths = "/ort/";
    if (threads > 0) ort.env.wasm.numThreads = threads;
    const model = new Uint8Array(await (await fetch(modelUrl)).arrayBuffer());
    const t1 = performance.now();
    session = await ort.InferenceSession.create(model, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
    const t2 = performance.now();
    return {
      fetch_ms: t1 - t0,
      create_ms: t2 - t1,
      ready_ms: t2 - t0,
      threads: ort.env.wasm.numThreads,
      isolated: self.crossOriginIsolated,
      inputs: session.inputNames,
    };
  },
  async run({ runs, input, shape }) {
    if (input) feeds = { [session.inputNames[0]]: new ort.Tensor("float32", input, shape) };
    const out = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const r = await session.run(feeds);
      out.push(performance.now() - t0);
      for (const t of Object.values(r)) t.dispose?.();
    }
    return out;
  },
};

serve(handlers);
