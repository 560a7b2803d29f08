// The manifest's and the browser's choices, written once (issue 13): which models are the default
// ones, which wasm build this engine loads, and the page's words for the engine's warning codes.
// worker.js, sw.js (a module service worker), ui.js, history-views.js, skinscan.js and the benchmark
// import it in the browser; build.sh and bench/run.mjs import it in Node. It has no side effects.

/**
 * The manifest's default image and tabular model entries (`default_image_model`, `tabular.default`).
 * Throws, naming the missing id, when the manifest does not list one of them.
 * @returns {{image: object, tabular: object}}
 */
export function defaultModels(manifest) {
  return {
    image: pick(manifest?.image_models, manifest?.default_image_model, "image model"),
    tabular: pick(manifest?.tabular?.models, manifest?.tabular?.default, "tabular model"),
  };
}

function pick(list, wanted, what) {
  const found = Array.isArray(list) && list.find((m) => m.id === wanted);
  if (!found) throw new Error(`the manifest names no ${what} "${wanted}"`);
  return found;
}

/** The two wasm builds in pkg/ (build.sh): `+simd128`, and `+simd128,+relaxed-simd`. */
export const WASM_BUILDS = { plain: "pkg/skinscan_bg.wasm", relaxed: "pkg/skinscan_relaxed_bg.wasm" };

/**
 * Whether this engine has WebAssembly relaxed SIMD (Chrome 114+, Firefox 145+ at the time of
 * writing): then the page loads the build compiled with `+relaxed-simd`, whose matrix kernels
 * use fused multiply-add (measured by `./build.sh bench`), else the plain `+simd128` build.
 * The bytes are a 1-function module using `i8x16.relaxed_swizzle` (wasm-feature-detect's test).
 */
export function relaxedSimd() {
  return WebAssembly.validate(new Uint8Array([
    0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 1, 253, 15, 65, 2, 253, 15,
    253, 128, 2, 11,
  ]));
}

/** The wasm build this engine loads (relative to the app's folder): the page, its worker and sw.js agree. */
export function wasmFile() {
  return relaxedSimd() ? WASM_BUILDS.relaxed : WASM_BUILDS.plain;
}

/**
 * How many instances of the model (one per worker) a classify spreads its quarter turns over
 * (issue 15): `min(4, cores)`, 4 being the most turns a manifest asks for; worker.js also caps it
 * at the image model's `quarter_turns`. Every instance gives the same bits, so the count changes
 * the time, never the result.
 */
export function modelInstances(cores = globalThis.navigator?.hardwareConcurrency) {
  return Math.max(1, Math.min(4, Math.floor(Number(cores)) || 1));
}

/** Verbatim from issue 4; shown beside every result and before any result. */
export const CLOSEUP_WARNING =
  "Only clear, close-up photos of a single lesion give meaningful results; selfies or unrelated images may produce false high-risk results. This is not a diagnosis.";

/**
 * The page's words for a photo the check turned down (issue 22): what is wrong with the photo,
 * then what to do. They judge the photo, never the person or the spot, since a real lesion can be
 * turned down too ("Photos from anywhere" is about how often).
 */
export const VERDICT_TITLE = {
  retake: "Please take the photo again",
  not_a_lesion: "We could not check this photo",
};

/** What is wrong, by the gate's reason (`not_a_lesion` is the reason of that verdict). */
export const REASON_TEXT = {
  blurry: "The photo is blurry.",
  too_dark: "The photo is too dark.",
  overexposed: "The photo is too bright or washed out.",
  lesion_too_small: "The spot looks too far away or too small in the frame.",
  not_centred: "The spot is not in the middle of the frame.",
  not_a_lesion: "This looks like a picture of something other than skin, or of skin from too far away to judge.",
};

/** What to do about it, by the same reasons. */
export const RETAKE_ADVICE = {
  blurry: "Hold the phone steady about 10 cm from the skin, tap the spot so the camera focuses on it, and take the photo again.",
  too_dark: "Take it again in daylight or bright room light, without your shadow on the skin.",
  overexposed: "Turn the flash off, avoid direct sun and glare, and take it again.",
  lesion_too_small: "Move closer, about 10 cm away, so the spot fills a good part of the middle of the frame, and take it again.",
  not_centred: "Put the spot in the middle of the frame and take it again.",
  not_a_lesion: "If it is a skin spot, take a close-up: about 10 cm away, the spot filling the middle of the frame, in focus and in good light. The check judges the photo only, not the spot.",
};

/**
 * The page's words for the engine's warning codes (the CLI has its own, in src/cli.rs). The
 * close-up warning and the photo check are already on screen in their own places, so they add no
 * list item ("").
 */
export function warningText(w) {
  switch (w?.code) {
    case "close_up":
    case "photo_quality":
      return "";
    case "no_gate":
      return "This model does not check the photo: blurry, badly lit or unrelated photos are not detected.";
    case "small_image":
      return `The photo is very small (${w.width}×${w.height} pixels), so the result is unreliable. Use a larger, closer photo.`;
    default:
      return w?.code ? `Warning: ${String(w.code).replace(/_/g, " ")}.` : "";
  }
}
