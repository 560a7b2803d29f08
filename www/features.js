// What the page needs from the browser (issue 21), checked once before anything loads, so that a
// browser without it is told so in plain words instead of failing somewhere later:
//   the classifier: WebAssembly with fixed-width SIMD (tract's kernels are compiled with +simd128),
//     module workers (worker.js is an ES module), and crypto.getRandomValues (the wasm's getrandom);
//   saving checks: IndexedDB (history.js) and WebCrypto's crypto.subtle (the export's SHA-256 and
//     AES-GCM; browsers expose it only on https:// or localhost).
// skinscan.js refuses to load without the classifier's features; ui.js shows the message and
// history-ui.js leaves saving out without the others. No side effects: importing it checks nothing.

/** The browsers the page is tested in and known to work in, for the message. */
export const WORKING_BROWSERS =
  "a recent Chrome, Edge, Firefox or Safari (on a computer, on Android, or on an iPhone or iPad)";

/** A 1-function module returning a v128: `i8x16.popcnt(i8x16.splat(0))` (wasm-feature-detect's simd test). */
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11,
]);

/**
 * The features the page needs and this browser lacks, each `{id, name, for}`: `for` is
 * "classifier" (nothing can be checked without it) or "saving" (only saved checks need it).
 * `g`: the global object to look at (a test can pass a stand-in).
 * @returns {{id: string, name: string, for: "classifier"|"saving"}[]}
 */
export function missingFeatures(g = globalThis) {
  const missing = [];
  const lack = (id, name, what) => missing.push({ id, name, for: what });
  if (typeof g.WebAssembly?.validate !== "function") lack("wasm", "WebAssembly", "classifier");
  else if (!safely(() => g.WebAssembly.validate(SIMD_PROBE))) lack("wasm-simd", "WebAssembly SIMD", "classifier");
  if (!moduleWorkers(g)) lack("module-worker", "module workers (JavaScript modules in Web Workers)", "classifier");
  if (typeof g.crypto?.getRandomValues !== "function") {
    lack("crypto", "the Web Crypto API (crypto.getRandomValues)", "classifier");
  }
  if (!safely(() => g.indexedDB && typeof g.indexedDB.open === "function")) lack("indexeddb", "IndexedDB storage", "saving");
  if (typeof g.crypto?.subtle?.digest !== "function") {
    lack("webcrypto", "the Web Crypto API's crypto.subtle", "saving");
  }
  return missing;
}

/**
 * Whether `new Worker(url, {type: "module"})` is understood: a browser that knows module workers
 * reads the options' `type`; one that does not ignores it (and would run worker.js as a classic
 * script, which fails on its first `import`). The URL is invalid, so no worker ever starts.
 */
function moduleWorkers(g) {
  if (typeof g.Worker !== "function") return false;
  let read = false;
  const options = {
    get type() {
      read = true;
      return "module";
    },
  };
  try {
    new g.Worker("blob://", options).terminate();
  } catch {
    // expected: the URL is invalid
  }
  return read;
}

function safely(fn) {
  try {
    return Boolean(fn());
  } catch {
    return false;
  }
}

/** The plain-words message for `missing` (missingFeatures()), or "" when nothing is missing. */
export function unsupportedMessage(missing) {
  if (!missing.length) return "";
  const names = (list) => list.map((m) => m.name).join(", ");
  const classifier = missing.filter((m) => m.for === "classifier");
  const saving = missing.filter((m) => m.for === "saving");
  const https = saving.some((m) => m.id === "webcrypto") && globalThis.isSecureContext === false
    ? " (browsers offer it only to pages opened over https://)"
    : "";
  const parts = [];
  if (classifier.length) {
    parts.push(`This browser cannot run SkinScan: it lacks ${names(classifier)}, which the on-device classifier needs.`);
  }
  if (saving.length) {
    parts.push(`${classifier.length ? "It also lacks" : "This browser lacks"} ${names(saving)}${https}, so checks cannot be saved on this device${classifier.length ? "" : "; checking a photo still works"}.`);
  }
  parts.push(`SkinScan works in ${WORKING_BROWSERS}; updating this browser may be enough.`);
  return parts.join(" ");
}

/** An Error for a browser that cannot run the classifier: `.missing` lists what it lacks. */
export class UnsupportedBrowserError extends Error {
  constructor(missing) {
    super(unsupportedMessage(missing));
    this.name = "UnsupportedBrowserError";
    this.missing = missing;
  }
}
