// The SkinScan user interface, written once: the page (app.js) mounts it in the document and the
// <skin-scan> widget (widget.js) mounts it in a shadow root. It talks to the classifier only through
// skinscan.js, so the wasm runs in a worker and the UI never freezes.
//
// Split by job (issue 13): ui-markup.js holds the HTML and the element map, ui-render.js draws
// results into it, and this module wires them: loading, the inputs, and one request per photo.
import { CLOSEUP_WARNING } from "./choices.js";
import { answerWords, badSize, hasAnswers, readAnswers } from "./questions.js";
import { missingFeatures, unsupportedMessage } from "./features.js";
import { load } from "./skinscan.js";
import { elements, markup } from "./ui-markup.js";
import { clearError, drawHeatmap, drawPreview, explain, fillVocabulary, mb, render, showError } from "./ui-render.js";

/** Files bigger than this are refused before they are read (a phone's 48-megapixel JPEG is ~20 MB). */
const MAX_FILE_BYTES = 64 * 1024 * 1024;

let instances = 0;

/**
 * Build the UI inside `container` (an element or a shadow root) and start loading the classifier.
 * @param {Element|ShadowRoot} container
 * @param {{loadOptions?: object, pasteTarget?: EventTarget|null}} [options]
 *   loadOptions go to skinscan.js load(); pasteTarget receives paste events (default: document).
 * @returns {{root: HTMLElement, engine: Promise<object>, handleFile: (file: File) => void}}
 */
export function mountUI(container, options = {}) {
  const n = ++instances;
  const root = document.createElement("div");
  root.className = "skinscan";
  root.dataset.testid = "app";
  root.dataset.engine = "loading";
  root.innerHTML = markup((name) => `skinscan${n}-${name}`);
  container.append(root);
  const el = elements(root);
  el.warning.textContent = CLOSEUP_WARNING;

  // manifest: once loaded; heatmap: the last result's, drawn over the preview; shown: results
  // rendered so far (data-seq, a stable hook for tests).
  const view = { root, el, state: { manifest: null, heatmap: null, shown: 0 } };
  // What this browser lacks (features.js), said before anything loads: the classifier's needs stop
  // the load; saving's only turn saving off (history-ui.js).
  const missing = missingFeatures();
  if (missing.length) {
    el.unsupported.textContent = unsupportedMessage(missing);
    el.unsupported.hidden = false;
    root.dataset.unsupported = missing.map((m) => m.id).join(" ");
  }
  const engine = loadEngine(view, options.loadOptions);
  let currentFile = null; // the chosen photo, kept in memory only to re-run when details change
  let runs = 0; // newest request wins; older answers are dropped
  // Whether the answers on the form went into a check since the last "Start over" (issue 22): then a
  // new photo asks "Same spot?" before they are used again.
  let answered = false;

  function handleFile(file) {
    clearError(view);
    el.result.hidden = true;
    if (file.size === 0) return showError(view, "That file is empty. Choose a photo of the spot.");
    if (file.size > MAX_FILE_BYTES) {
      return showError(view, `That file is too large (${mb(file.size)}). Choose a photo under ${mb(MAX_FILE_BYTES)}.`);
    }
    const go = () => {
      currentFile = file;
      drawPreview(view, file);
      run({ fresh: true });
    };
    if (!el.sameSpot.hidden || (answered && hasAnswers(formAnswers(view)))) {
      runs++; // a result still on its way belongs to the last spot
      setBusy(view, false);
      return askSameSpot(view, go);
    }
    go();
  }

  /** `fresh`: a new photo, whose result then scrolls into view and takes focus. */
  async function run({ fresh = false } = {}) {
    const mine = ++runs;
    clearError(view);
    const meta = readMeta(view);
    if (meta.error) {
      el.result.hidden = true;
      return showError(view, meta.error);
    }
    setBusy(view, true);
    el.announce.textContent = "Analysing the photo…";
    let result;
    try {
      result = await (await engine).classify(currentFile, meta.value);
    } catch (err) {
      if (mine !== runs) return;
      setBusy(view, false);
      el.result.hidden = true;
      if (root.dataset.engine === "failed") return; // the load error is already on screen
      return showError(view, explain(err.message));
    }
    if (mine !== runs) return;
    setBusy(view, false);
    render(view, result, meta.value);
    answered = true;
    // On a phone the result is below the form (issue 22): bring it into view and give it focus,
    // which a screen reader reads after the announcement. Not when an answer changed, where the
    // focus stays on the answer.
    if (fresh) {
      el.resultHeading.focus({ preventScroll: true });
      el.result.scrollIntoView({ block: "start" });
    }
    // For history-ui.js (issue 14), which saves the check only if the user asks.
    root.dispatchEvent(new CustomEvent("skinscan:result", { detail: { result, file: currentFile, answers: meta.value ?? {} } }));
  }

  wireInputs(view, handleFile, options.pasteTarget === undefined ? document : options.pasteTarget);
  wireSameSpot(view);
  wireControls(view, {
    rerun: () => currentFile && el.sameSpot.hidden && run(),
    reset: () => {
      currentFile = null;
      runs++; // an answer still on its way is dropped
      const had = answered && hasAnswers(formAnswers(view));
      answered = false;
      return had;
    },
  });
  return { root, engine, handleFile };
}

/**
 * Ask "Same spot?" and then call `then`: "same spot" keeps every answer, "another spot" clears
 * them all first (issue 22). The question takes the focus; the answer gives it back to `then`'s result.
 */
function askSameSpot(view, then) {
  const { el } = view;
  el.sameList.textContent = answerWords(formAnswers(view)).join("; ");
  el.sameSpot.hidden = false;
  el.sameSpot.focus();
  // The latest question wins: a photo chosen while it is open waits on the same answer.
  view.sameSpotThen = then;
}

/** The two answers to "Same spot?", wired once per instance. */
function wireSameSpot(view) {
  const { el } = view;
  const answer = (keep) => {
    el.sameSpot.hidden = true;
    if (!keep) clearAnswers(view);
    const then = view.sameSpotThen;
    view.sameSpotThen = null;
    then?.();
  };
  el.same.addEventListener("click", () => answer(true));
  el.other.addEventListener("click", () => answer(false));
}

/** Every answer and detail back to its default: blank, "Don't know", detect the photo type. */
function clearAnswers({ root, el }) {
  el.age.value = "";
  el.sex.value = "";
  el.site.value = "";
  const size = root.querySelector('[name="diameterMm"]');
  if (size) size.value = "";
  for (const group of root.querySelectorAll(".ss-choice")) {
    const first = group.querySelector("input[type=radio]");
    if (first) first.checked = true;
  }
}

/** The form's answers as readMeta sends them (for "Same spot?"). */
function formAnswers({ root, el }) {
  return { age: el.age.value.trim(), sex: el.sex.value, site: el.site.value, ...readAnswers(root) };
}

/** Start loading the classifier, with a progress bar; resolves to skinscan.js's engine. */
function loadEngine(view, loadOptions) {
  const { root, el, state } = view;
  let announced = 0; // the last quarter of the download announced to screen readers
  const engine = load({
    ...loadOptions,
    onProgress: ({ loaded, total }) => {
      el.progress.max = total || 1;
      el.progress.value = Math.min(loaded, total || 1);
      el.progressText.textContent = total ? `${Math.floor((100 * loaded) / total)}% of ${mb(total)}` : mb(loaded);
      // Screen readers hear a polite status at each quarter, not every 50 ms update of the bar.
      const quarter = total ? Math.floor((4 * Math.min(loaded, total)) / total) : 0;
      if (quarter !== announced) {
        announced = quarter;
        el.progressStatus.textContent = `Loading the classifier: ${25 * quarter}% of ${mb(total)} downloaded`;
      }
    },
  });
  engine.then(
    (e) => {
      state.manifest = e.manifest;
      fillVocabulary(view, e.manifest);
      el.progressStatus.textContent = "The classifier is ready: choose a photo.";
      el.loader.hidden = true;
      root.dataset.engine = "ready";
    },
    (err) => {
      root.dataset.engine = "failed";
      el.loader.hidden = true;
      if (err.missing) {
        // Already said, in words, by the notice above; nothing here can be chosen.
        root.dataset.engine = "unsupported";
        el.choose.disabled = el.camera.disabled = true;
        return;
      }
      showError(view, `The classifier could not load: ${err.message}. Reload the page to try again.`);
    },
  );
  return engine;
}

/** The photo's ways in: picker, camera, drag-and-drop, paste. */
function wireInputs({ root, el }, handleFile, pasteTarget) {
  el.choose.addEventListener("click", () => {
    el.file.removeAttribute("capture");
    el.file.click();
  });
  el.camera.addEventListener("click", () => {
    el.file.setAttribute("capture", "environment");
    el.file.click();
  });
  el.file.addEventListener("change", () => {
    const f = el.file.files?.[0];
    el.file.removeAttribute("capture");
    if (f) handleFile(f);
    el.file.value = ""; // choosing the same file again still fires change
  });
  root.addEventListener("dragover", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
    el.drop.classList.add("ss-dragging");
  });
  root.addEventListener("dragleave", (e) => {
    if (!root.contains(e.relatedTarget)) el.drop.classList.remove("ss-dragging");
  });
  root.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    el.drop.classList.remove("ss-dragging");
    const f = e.dataTransfer.files[0];
    if (f) handleFile(f);
  });
  pasteTarget?.addEventListener("paste", (e) => {
    const item = [...(e.clipboardData?.items ?? [])].find((i) => i.kind === "file");
    const f = item?.getAsFile();
    if (!f) return; // ordinary text paste, e.g. into the age field
    e.preventDefault();
    handleFile(f);
  });
}

/** The details and answers (a change re-runs the photo), the heatmap toggle, reveal and reset. */
function wireControls(view, { rerun, reset }) {
  const { root, el } = view;
  for (const field of root.querySelectorAll(".ss-meta input, .ss-meta select, .ss-questions input, .ss-photo-type-choice input")) {
    field.addEventListener("change", rerun);
  }
  el.heatmapToggle.addEventListener("click", () => {
    const on = el.heatmapToggle.getAttribute("aria-pressed") !== "true";
    el.heatmapToggle.setAttribute("aria-pressed", String(on));
    el.heatmapToggle.textContent = on ? "Hide where the model looked" : "Show where the model looked";
    el.heatmap.hidden = el.heatmapNote.hidden = !on;
    if (on) drawHeatmap(view);
  });
  el.reveal.addEventListener("click", () => {
    el.gated.hidden = false;
    el.reveal.hidden = true;
    root.dataset.revealed = "true";
    el.unreliable.focus();
  });
  el.reset.addEventListener("click", () => {
    const ask = reset();
    el.result.hidden = true;
    setBusy(view, false);
    clearError(view);
    // With answers on the form, "Start over" asks whether the next photo is of the same spot.
    if (ask) return askSameSpot(view, () => el.choose.focus());
    el.choose.focus();
  });
}

function setBusy({ root, el }, busy) {
  el.busy.hidden = !busy;
  if (busy) root.dataset.busy = "true";
  else delete root.dataset.busy;
}

/** The form's raw values (the engine parses and checks them), or the error to show instead. */
function readMeta({ root, el }) {
  const ageText = el.age.value.trim();
  if (el.age.validity.badInput || (ageText !== "" && !el.age.validity.valid)) {
    return { error: `Age must be a whole number from ${el.age.min || 0} to ${el.age.max || 120}, or left empty.` };
  }
  if (badSize(root)) return { error: "The size must be a number of millimetres, or left empty." };
  // Raw values: blank and "Don't know" mean not given.
  return { value: { age: ageText, sex: el.sex.value, site: el.site.value, ...readAnswers(root) } };
}

function hasFiles(e) {
  return [...(e.dataTransfer?.types ?? [])].includes("Files");
}
