// The SkinScan user interface, written once: the page (app.js) mounts it in the document and the
// <skin-scan> widget (widget.js) mounts it in a shadow root. It talks to the classifier only through
// skinscan.js, so the wasm runs in a worker and the UI never freezes.
import { CLOSEUP_WARNING, REASON_TEXT, VERDICT_TITLE, defaultModels, warningText } from "./choices.js";
import { load } from "./skinscan.js";
import { badSize, photoTypeMarkup, photoTypeText, questionsMarkup, readAnswers, usedText } from "./questions.js";

const ADVICE = {
  low: ["Low risk", "Keep an eye on it. Take another close-up photo in a few months, and see a doctor if it grows, changes shape or colour, bleeds or itches."],
  moderate: ["Moderate risk", "Have it checked. Book an appointment with a doctor or dermatologist in the next few weeks."],
  high: ["High risk", "See a doctor soon. Book an appointment within days, not weeks, and show them this spot."],
};

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
  const id = (name) => `skinscan${n}-${name}`;
  const root = document.createElement("div");
  root.className = "skinscan";
  root.dataset.testid = "app";
  root.dataset.engine = "loading";
  root.innerHTML = `
    <div class="ss-loader" data-testid="loader">
      <label for="${id("progress")}">Loading the classifier onto this device…</label>
      <progress id="${id("progress")}" max="1"></progress>
      <span class="ss-progress-text" aria-hidden="true"></span>
    </div>

    <div class="ss-drop" data-testid="dropzone">
      <p class="ss-drop-title">Drop a photo of the spot here, paste it, or</p>
      <div class="ss-buttons">
        <button type="button" class="ss-choose">Choose a photo</button>
        <button type="button" class="ss-camera">Take a photo</button>
      </div>
      <p class="ss-hint">JPEG, PNG, WebP, BMP or GIF. The photo stays on this device.</p>
      <input type="file" accept="image/*" class="ss-file ss-visually-hidden" tabindex="-1"
             aria-label="Photo of the skin spot" id="${id("file")}">
    </div>

    ${photoTypeMarkup(id)}

    <details class="ss-meta">
      <summary>Add age, sex and body site (optional, improves the estimate)</summary>
      <div class="ss-meta-fields" role="group" aria-label="Optional details">
        <div class="ss-field" data-field="age">
          <label for="${id("age")}">Age in years</label>
          <input type="number" id="${id("age")}" name="age" inputmode="numeric" min="0" max="120" step="1" autocomplete="off">
        </div>
        <div class="ss-field" data-field="sex">
          <label for="${id("sex")}">Sex</label>
          <select id="${id("sex")}" name="sex"><option value="">Not given</option></select>
        </div>
        <div class="ss-field" data-field="site">
          <label for="${id("site")}">Body site</label>
          <select id="${id("site")}" name="site"><option value="">Not given</option></select>
        </div>
      </div>
      <p class="ss-hint">Used only for this estimate, never stored or sent anywhere.</p>
    </details>
    ${questionsMarkup(id)}

    <section class="ss-output" aria-label="Result">
      <div class="ss-error" data-testid="error" role="alert" hidden></div>
      <p class="ss-announce ss-visually-hidden" role="status" aria-live="polite"></p>
      <p class="ss-busy" hidden>Analysing the photo on this device…</p>
      <div class="ss-result" hidden>
        <div class="ss-photo">
          <div class="ss-photo-frame">
            <canvas class="ss-preview" width="0" height="0" role="img" aria-label="The photo you chose"></canvas>
            <canvas class="ss-heatmap" data-testid="heatmap" width="0" height="0" hidden role="img"
                    aria-label="Heatmap: where the model saw signs of the malignant lesion types"></canvas>
          </div>
          <button type="button" class="ss-heatmap-toggle" data-testid="heatmap-toggle" aria-pressed="false">Show where the model looked</button>
          <p class="ss-heatmap-note" hidden>Warmer colours mark the parts of the photo that pushed the estimate
            towards the malignant types most. It explains the estimate; it is not a diagnosis.</p>
        </div>
        <div class="ss-quality" data-testid="quality" data-verdict="">
          <p class="ss-quality-title"></p>
          <p class="ss-quality-advice"></p>
          <button type="button" class="ss-reveal" data-testid="reveal" hidden>Show the result anyway</button>
        </div>
        <div class="ss-verdict-gated">
          <p class="ss-unreliable" data-testid="unreliable" tabindex="-1" hidden>Unreliable: this photo did not pass the photo
            check, so the result below may be wrong. Take a better photo for a meaningful estimate.</p>
          <div class="ss-summary">
            <p class="ss-tier-line"><span class="ss-tier-label"></span>
              <span class="ss-visually-hidden">, tier:</span>
              <span class="ss-tier" data-testid="risk-tier"></span></p>
            <p class="ss-advice"></p>
          </div>
          <div class="ss-gauge-block">
            <p class="ss-prob-text"></p>
            <div class="ss-gauge" aria-hidden="true">
              <div class="ss-gauge-fill"></div>
              <div class="ss-gauge-mark ss-mark-low"></div>
              <div class="ss-gauge-mark ss-mark-high"></div>
            </div>
            <p class="ss-gauge-legend"></p>
          </div>
          <h3 class="ss-h">Most likely lesion types (from the photo)</h3>
          <ol class="ss-dx"></ol>
          <p class="ss-photo-type" data-testid="photo-type"></p>
          <p class="ss-meta-used" data-testid="metadata-used"></p>
        </div>
        <ul class="ss-warnings"></ul>
        <p class="ss-timing" data-testid="timing"></p>
        <button type="button" class="ss-reset">Start over</button>
      </div>
      <p class="ss-warning" data-testid="closeup-warning"></p>
    </section>`;
  container.append(root);

  const $ = (sel) => root.querySelector(sel);
  const el = {
    loader: $(".ss-loader"), progress: $("progress"), progressText: $(".ss-progress-text"),
    drop: $(".ss-drop"), file: $(".ss-file"), choose: $(".ss-choose"), camera: $(".ss-camera"),
    age: $('[name="age"]'), sex: $('[name="sex"]'), site: $('[name="site"]'),
    error: $(".ss-error"), announce: $(".ss-announce"), busy: $(".ss-busy"), result: $(".ss-result"), preview: $(".ss-preview"),
    tierLabel: $(".ss-tier-label"), tier: $(".ss-tier"), advice: $(".ss-advice"),
    probText: $(".ss-prob-text"), fill: $(".ss-gauge-fill"), markLow: $(".ss-mark-low"), markHigh: $(".ss-mark-high"),
    legend: $(".ss-gauge-legend"), dx: $(".ss-dx"), metaUsed: $(".ss-meta-used"), warnings: $(".ss-warnings"),
    photoType: $(".ss-photo-type"),
    timing: $(".ss-timing"), reset: $(".ss-reset"), warning: $(".ss-warning"),
    heatmap: $(".ss-heatmap"), heatmapToggle: $(".ss-heatmap-toggle"), heatmapNote: $(".ss-heatmap-note"),
    quality: $(".ss-quality"), qualityTitle: $(".ss-quality-title"), qualityAdvice: $(".ss-quality-advice"),
    reveal: $(".ss-reveal"), gated: $(".ss-verdict-gated"), unreliable: $(".ss-unreliable"),
  };
  el.warning.textContent = CLOSEUP_WARNING;

  let manifest = null;
  let currentFile = null; // the chosen photo, kept in memory only to re-run when details change
  let runs = 0; // newest request wins; older answers are dropped
  let shown = 0; // results rendered so far: data-seq, a stable hook for tests
  let heatmap = null; // the last result's heatmap {width, height, values in 0..1}, drawn over the preview

  // --- loading, with a progress bar -------------------------------------------------------------
  const engine = load({
    ...options.loadOptions,
    onProgress: ({ loaded, total }) => {
      el.progress.max = total || 1;
      el.progress.value = Math.min(loaded, total || 1);
      el.progressText.textContent = total ? `${Math.floor((100 * loaded) / total)}% of ${mb(total)}` : mb(loaded);
    },
  });
  engine.then(
    (e) => {
      manifest = e.manifest;
      fillVocabulary(manifest);
      el.loader.hidden = true;
      root.dataset.engine = "ready";
    },
    (err) => {
      root.dataset.engine = "failed";
      el.loader.hidden = true;
      showError(`The classifier could not load: ${err.message}. Reload the page to try again.`);
    },
  );

  function fillVocabulary(m) {
    const features = m?.tabular?.features ?? [];
    const feature = (name) => features.find((f) => f.name === name);
    const age = feature("age");
    if (age) {
      if (Number.isFinite(age.min)) el.age.min = age.min;
      if (Number.isFinite(age.max)) el.age.max = age.max;
    }
    for (const name of ["sex", "site"]) {
      const values = feature(name)?.values ?? [];
      for (const v of values) el[name].append(new Option(capitalise(v), v));
    }
    for (const name of ["age", "sex", "site"]) {
      root.querySelector(`[data-field="${name}"]`).hidden = !feature(name);
    }
  }

  // --- input: picker, camera, drag-and-drop, paste --------------------------------------------
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
  const pasteTarget = options.pasteTarget === undefined ? document : options.pasteTarget;
  pasteTarget?.addEventListener("paste", (e) => {
    const item = [...(e.clipboardData?.items ?? [])].find((i) => i.kind === "file");
    const f = item?.getAsFile();
    if (!f) return; // ordinary text paste, e.g. into the age field
    e.preventDefault();
    handleFile(f);
  });
  // Any detail or answer changed: the same photo again, with it.
  for (const field of root.querySelectorAll(".ss-meta input, .ss-meta select, .ss-questions input, .ss-photo-type-choice input")) {
    field.addEventListener("change", () => {
      if (currentFile) run();
    });
  }
  el.heatmapToggle.addEventListener("click", () => {
    const on = el.heatmapToggle.getAttribute("aria-pressed") !== "true";
    el.heatmapToggle.setAttribute("aria-pressed", String(on));
    el.heatmapToggle.textContent = on ? "Hide where the model looked" : "Show where the model looked";
    el.heatmap.hidden = el.heatmapNote.hidden = !on;
    if (on) drawHeatmap();
  });
  el.reveal.addEventListener("click", () => {
    el.gated.hidden = false;
    el.reveal.hidden = true;
    el.result.classList.remove("ss-gated");
    root.dataset.revealed = "true";
    el.unreliable.focus();
  });
  el.reset.addEventListener("click", () => {
    currentFile = null;
    runs++; // an answer still on its way is dropped
    el.result.hidden = true;
    el.busy.hidden = true;
    delete root.dataset.busy;
    clearError();
    el.choose.focus();
  });

  function handleFile(file) {
    clearError();
    el.result.hidden = true;
    if (file.size === 0) return showError("That file is empty. Choose a photo of the spot.");
    if (file.size > MAX_FILE_BYTES) {
      return showError(`That file is too large (${mb(file.size)}). Choose a photo under ${mb(MAX_FILE_BYTES)}.`);
    }
    currentFile = file;
    drawPreview(file);
    run();
  }

  async function run() {
    const mine = ++runs;
    clearError();
    const meta = readMeta();
    if (meta.error) {
      el.result.hidden = true;
      return showError(meta.error);
    }
    el.busy.hidden = false;
    el.announce.textContent = "Analysing the photo…";
    root.dataset.busy = "true";
    let result;
    try {
      const e = await engine;
      result = await e.classify(currentFile, meta.value);
    } catch (err) {
      if (mine !== runs) return;
      el.busy.hidden = true;
      delete root.dataset.busy;
      el.result.hidden = true;
      if (root.dataset.engine === "failed") return; // the load error is already on screen
      return showError(explain(err.message));
    }
    if (mine !== runs) return;
    el.busy.hidden = true;
    delete root.dataset.busy;
    render(result, meta.value);
    // For history-ui.js (issue 14), which saves the check only if the user asks.
    root.dispatchEvent(new CustomEvent("skinscan:result", { detail: { result, file: currentFile, answers: meta.value ?? {} } }));
  }

  function readMeta() {
    const ageText = el.age.value.trim();
    if (el.age.validity.badInput || (ageText !== "" && !el.age.validity.valid)) {
      return { error: `Age must be a whole number from ${el.age.min || 0} to ${el.age.max || 120}, or left empty.` };
    }
    if (badSize(root)) return { error: "The size must be a number of millimetres, or left empty." };
    // Raw values: the engine parses and checks them (blank and "Don't know" mean not given).
    return { value: { age: ageText, sex: el.sex.value, site: el.site.value, ...readAnswers(root) } };
  }

  // --- output -------------------------------------------------------------------------------------
  /** `meta`: the details this result was computed with (what `metadata_used` refers to). */
  function render(r, meta) {
    renderQuality(r.quality);
    heatmap = r.heatmap ?? null;
    el.heatmapToggle.hidden = !heatmap;
    drawHeatmap();
    const tier = r.risk_tier;
    const [label, advice] = ADVICE[tier] ?? [tier, ""];
    root.dataset.tier = tier;
    el.result.className = `ss-result ss-tier-${tier}`;
    el.tierLabel.textContent = label;
    el.tier.textContent = tier;
    el.tier.dataset.probability = String(r.malignant_probability);
    el.tier.dataset.seq = String(++shown);
    el.advice.textContent = advice;

    const p = r.malignant_probability;
    el.probText.textContent = `Estimated chance that the spot is malignant: ${pct(p)}`;
    el.fill.style.width = `${(100 * clamp01(p)).toFixed(2)}%`;
    const head = r.photo_type?.kind === "clinical" && imageModel()?.clinical ? imageModel().clinical : imageModel();
    const bands = head?.tiers?.[r.metadata_used?.length ? "with_metadata" : "image_only"];
    if (bands && Number.isFinite(bands.low_below) && Number.isFinite(bands.high_from)) {
      el.markLow.style.left = `${100 * clamp01(bands.low_below)}%`;
      el.markHigh.style.left = `${100 * clamp01(bands.high_from)}%`;
      el.markLow.hidden = el.markHigh.hidden = false;
      el.legend.textContent = `Low below ${pct(bands.low_below)}, high from ${pct(bands.high_from)} (calibrated on held-out images).`;
    } else {
      el.markLow.hidden = el.markHigh.hidden = true;
      el.legend.textContent = "";
    }

    const names = new Map((manifest?.diagnoses ?? []).map((d) => [d.code, d]));
    const ranked = Object.entries(r.diagnosis ?? {}).sort((a, b) => b[1] - a[1]).slice(0, 3);
    el.dx.replaceChildren(
      ...ranked.map(([code, prob]) => {
        const li = document.createElement("li");
        const d = names.get(code);
        li.textContent = `${d?.name ?? code} — ${pct(prob)}${d?.malignant ? " (malignant type)" : ""}`;
        return li;
      }),
    );

    el.photoType.textContent = photoTypeText(r.photo_type);
    el.photoType.dataset.kind = r.photo_type?.kind ?? "";
    el.photoType.dataset.source = r.photo_type?.source ?? "";
    el.metaUsed.textContent =
      usedText(r.metadata_used, meta ?? {}) || "Photo only: add your details and what you noticed above to refine the estimate.";
    el.warnings.replaceChildren(
      // The close-up warning is already on screen beside every result, and the photo check's
      // advice in its own box; list only the others.
      ...(r.warnings ?? []).map(warningText).filter(Boolean).map((text) => {
        const li = document.createElement("li");
        li.textContent = text;
        return li;
      }),
    );
    const t = r.timings_ms ?? {};
    const parts = ["decode", "preprocess", "cnn", "tabular", "ensemble"]
      .filter((k) => Number.isFinite(t[k]))
      .map((k) => `${k === "cnn" ? "CNN" : k} ${ms(t[k])}`);
    el.timing.textContent =
      `Analysed on this device in ${ms(t.total)}${parts.length ? ` (${parts.join(", ")})` : ""}. ` +
      `Model ${r.model_version ?? ""}.`;
    el.result.hidden = false;
    const ok = !r.quality || r.quality.verdict === "ok";
    // Until the user asks, not even the border colour gives the tier away.
    el.result.classList.toggle("ss-gated", !ok);
    el.announce.textContent = ok
      ? `${label}. ${advice} Estimated chance of malignancy ${pct(p)}.`
      : `${el.qualityTitle.textContent}. ${el.qualityAdvice.textContent}`;
    root.dataset.seq = String(shown);
  }

  /** The photo check: a verdict other than ok hides the tier until the user asks for it. */
  function renderQuality(q) {
    const verdict = q ? q.verdict : "unchecked";
    const ok = verdict === "ok" || verdict === "unchecked";
    el.quality.dataset.verdict = verdict;
    if (q?.reason && verdict === "retake") el.quality.dataset.reason = q.reason;
    else delete el.quality.dataset.reason;
    el.quality.className = `ss-quality ss-quality-${verdict}`;
    if (verdict === "ok") {
      el.qualityTitle.textContent = "Photo check passed: a clear close-up of a skin spot.";
      el.qualityAdvice.textContent = "";
    } else if (verdict === "unchecked") {
      el.qualityTitle.textContent = "This model does not check the photo's quality.";
      el.qualityAdvice.textContent = "";
    } else {
      const why = verdict === "retake" ? REASON_TEXT[q.reason] ?? "" : "";
      el.qualityTitle.textContent = `${VERDICT_TITLE[verdict] ?? verdict}${why ? ` — ${why.replace(/\.$/, "")}` : ""}`;
      el.qualityAdvice.textContent = q.advice ?? "";
    }
    el.qualityAdvice.hidden = !el.qualityAdvice.textContent;
    el.reveal.hidden = ok;
    el.gated.hidden = !ok;
    el.unreliable.hidden = ok;
    el.tier.dataset.unreliable = String(!ok);
    delete root.dataset.revealed;
    root.dataset.verdict = verdict;
  }

  /** The wasm-computed heatmap (values 0..1 on the model's grid), stretched over the preview. */
  function drawHeatmap() {
    const c = el.heatmap;
    const w = el.preview.width;
    const h = el.preview.height;
    if (!heatmap || !w || !h || el.heatmap.hidden) return;
    c.width = w;
    c.height = h;
    const grid = document.createElement("canvas");
    grid.width = heatmap.width;
    grid.height = heatmap.height;
    const g = grid.getContext("2d");
    const img = g.createImageData(heatmap.width, heatmap.height);
    heatmap.values.forEach((v, i) => {
      const t = clamp01(v);
      // Transparent where the evidence is weakest, through yellow to opaque red at the strongest.
      img.data.set([255, Math.round(220 * (1 - t)), 0, Math.round(200 * t)], 4 * i);
    });
    g.putImageData(img, 0, 0);
    const ctx = c.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(grid, 0, 0, w, h);
    c.dataset.drawn = String(Number(c.dataset.drawn ?? 0) + 1);
  }

  function imageModel() {
    return manifest ? defaultModels(manifest).image : undefined;
  }

  async function drawPreview(file) {
    const c = el.preview;
    c.width = c.height = 0;
    heatmap = null;
    el.heatmap.width = el.heatmap.height = 0;
    // createImageBitmap decodes locally (and applies EXIF orientation); no blob: URL, no request.
    try {
      const bmp = await createImageBitmap(file);
      const scale = Math.min(1, 320 / Math.max(bmp.width, bmp.height));
      c.width = Math.max(1, Math.round(bmp.width * scale));
      c.height = Math.max(1, Math.round(bmp.height * scale));
      c.getContext("2d").drawImage(bmp, 0, 0, c.width, c.height);
      bmp.close();
      drawHeatmap(); // the result may have arrived before the photo was decoded
    } catch {
      // Not decodable by the browser: the classifier's own message will explain.
    }
  }

  function showError(text) {
    el.error.textContent = text;
    el.error.hidden = false;
    root.dataset.error = "true";
  }
  function clearError() {
    el.error.textContent = "";
    el.error.hidden = true;
    delete root.dataset.error;
  }

  return { root, engine, handleFile };
}

/** The engine's one-line message, framed for a person; its own advice is kept, not repeated. */
function explain(message) {
  const text = message.replace(/\.$/, "");
  if (/^invalid field/.test(text)) return `Please check your details: ${text}.`;
  const advised = /\b(upload|export|choose|use)\b/i.test(text);
  return `This file could not be analysed: ${text}.${advised ? "" : " Choose a clear, close-up photo of the spot (JPEG, PNG, WebP, BMP or GIF)."}`;
}

function hasFiles(e) {
  return [...(e.dataTransfer?.types ?? [])].includes("Files");
}
function capitalise(s) {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
function clamp01(x) {
  return Math.min(1, Math.max(0, Number(x) || 0));
}
function pct(p) {
  const v = 100 * clamp01(p);
  if (v > 0 && v < 1) return "under 1%";
  if (v < 100 && v > 99) return "over 99%";
  return `${Math.round(v)}%`;
}
function ms(x) {
  return Number.isFinite(x) ? `${x < 10 ? x.toFixed(1) : Math.round(x)} ms` : "– ms";
}
function mb(bytes) {
  return `${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB`;
}
