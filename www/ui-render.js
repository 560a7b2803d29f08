// The UI's rendering (issue 13: the UI split by job): a result, the photo check, the heatmap, the
// preview, errors and the manifest's vocabulary, drawn into one mounted instance. Each function
// takes the instance's `view` {root, el, state} (ui.js makes it; state holds the manifest, the
// last heatmap and the count of results shown) and reads nothing else of the page.
import { REASON_TEXT, RETAKE_ADVICE, VERDICT_TITLE, defaultModels, warningText } from "./choices.js";
import { MAX_GAP, shownDiagnoses } from "./diagnoses.js";
import { answerWords, hasAnswers, photoKind, photoSource, photoTypeText, usedText, usedWords } from "./questions.js";

const ADVICE = {
  low: ["Low risk", "Keep an eye on it. Take another close-up photo in a few months, and see a doctor if it grows, changes shape or colour, bleeds or itches."],
  moderate: ["Moderate risk", "Have it checked. Book an appointment with a doctor or dermatologist in the next few weeks."],
  high: ["High risk", "See a doctor soon. Book an appointment within days, not weeks, and show them this spot."],
};

/** The age bounds and the sex and site choices of the manifest's tabular features. */
export function fillVocabulary({ root, el }, m) {
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

/**
 * One result. `meta`: the details this result was computed with (what `metadata_used` refers to).
 * A photo that failed the check gets no tier at all (issue 22): no tier colour, no tier words, no
 * advice; "Show the result anyway" shows only the probability, greyed and marked unreliable.
 */
export function render(view, r, meta) {
  const { root, el, state } = view;
  renderQuality(view, r.quality);
  state.heatmap = r.heatmap ?? null;
  el.heatmapToggle.hidden = !state.heatmap;
  drawHeatmap(view);
  const ok = !r.quality || r.quality.verdict === "ok";
  const [label, advice] = renderTier(view, r, ok);
  renderGauge(view, r, ok);
  renderDetails(view, r, meta, ok);
  el.result.hidden = false;
  el.announce.textContent = ok
    ? `${label}. ${advice} ${el.probText.textContent}`
    : `${el.qualityTitle.textContent}. ${el.qualityAdvice.textContent}`;
  root.dataset.seq = String(state.shown);
}

/** The tier, its words and the data hooks tests read; returns [label, advice]. */
function renderTier({ root, el, state }, r, ok) {
  const tier = r.risk_tier;
  const [label, advice] = ADVICE[tier] ?? [tier, ""];
  root.dataset.tier = tier;
  // The colour is the tier's only where the photo passed; a refused photo's box stays neutral.
  el.result.className = ok ? `ss-result ss-tier-${tier}` : "ss-result ss-refused";
  el.summary.hidden = !ok;
  el.tierLabel.textContent = ok ? label : "";
  el.tier.textContent = tier;
  el.tier.dataset.probability = String(r.malignant_probability);
  el.tier.dataset.seq = String(++state.shown);
  el.advice.textContent = ok ? advice : "";
  return [label, advice];
}

/** The head's tier boundaries for this result: {low_below, high_from} or null. */
export function bandsOf(manifest, r) {
  const model = manifest ? defaultModels(manifest).image : undefined;
  const head = r.photo_type?.kind === "clinical" && model?.clinical ? model.clinical : model;
  const bands = head?.tiers?.[r.metadata_used?.length ? "with_metadata" : "image_only"];
  return bands && Number.isFinite(bands.low_below) && Number.isFinite(bands.high_from) ? bands : null;
}

/**
 * Where `p` sits on the one scale every photo type shares (issue 22): each tier is a third of the
 * gauge, and `p` is placed within its tier's band linearly between that head's boundaries.
 */
export function scalePosition(p, bands) {
  const x = clamp01(p);
  if (!bands) return x;
  const { low_below: lo, high_from: hi } = bands;
  if (x < lo) return (x / lo) / 3;
  if (x < hi) return (1 + (x - lo) / (hi - lo)) / 3;
  return (2 + (hi < 1 ? (x - hi) / (1 - hi) : 1)) / 3;
}

/**
 * The gauge: three equal bands, low, moderate and high, the same for every photo type; the mark
 * sits in the tier's band. The calibrated probability, in smaller type, with the boundaries of the
 * photo type that produced it.
 */
function renderGauge({ el, state }, r, ok) {
  const p = r.malignant_probability;
  const bands = bandsOf(state.manifest, r);
  el.mark.style.left = `${(100 * scalePosition(p, bands)).toFixed(2)}%`;
  const kind = r.photo_type?.kind === "clinical" ? "an ordinary (phone) photo" : "a dermatoscope photo";
  const scale = bands ? ` For ${kind}${r.metadata_used?.length ? " with your details" : ""}, low is below ${pct(bands.low_below)} and high from ${pct(bands.high_from)}.` : "";
  el.probText.textContent = ok
    ? `Estimated chance that the spot is malignant: ${pct(p)}.${scale}`
    : `Unreliable estimate, not a risk tier: ${pct(p)} chance of malignancy, from a photo that did not pass the check.`;
  el.probText.dataset.shown = String(p);
}

/** The lesion types (consistent with the probability, or withheld), the inputs used, warnings, timings. */
function renderDetails({ el, state }, r, meta, ok) {
  const dx = shownDiagnoses(r, state.manifest);
  el.dxBlock.hidden = !ok;
  el.dxBlock.dataset.withheld = String(dx.withheld);
  el.dxBlock.dataset.malignantShown = String(dx.malignantShown);
  el.dx.replaceChildren(...dx.items.map((d) => {
    const li = item(`${d.name}: ${pct(d.probability)}${d.malignant ? " (a malignant type)" : ""}`);
    li.dataset.code = d.code;
    li.dataset.probability = String(d.probability);
    li.dataset.malignant = String(d.malignant);
    return li;
  }));
  el.dxNote.textContent = dx.withheld
    ? `Not shown for this photo: the lesion types the photo resembles would not agree with the estimate above (within ${Math.round(100 * MAX_GAP)} points).`
    : "The photo's ranking of lesion types, scaled so that the malignant types add up to the estimate above.";
  renderInputs(el, r, meta ?? {});
  el.photoType.textContent = photoTypeText(r.photo_type);
  el.photoType.dataset.kind = r.photo_type?.kind ?? "";
  el.photoType.dataset.source = r.photo_type?.source ?? "";
  el.metaUsed.textContent = usedText(r.metadata_used, meta ?? {}) || (hasAnswers(meta) ? "" : WITHOUT_ANSWERS);
  // The close-up warning is already on screen beside every result, and the photo check's
  // advice in its own box; list only the others.
  el.warnings.replaceChildren(...(r.warnings ?? []).map(warningText).filter(Boolean).map(item));
  const t = r.timings_ms ?? {};
  const parts = ["decode", "preprocess", "cnn", "tabular", "ensemble"]
    .filter((k) => Number.isFinite(t[k]))
    .map((k) => `${k === "cnn" ? "CNN" : k} ${ms(t[k])}`);
  el.timing.textContent =
    `Analysed on this device in ${ms(t.total)}${parts.length ? ` (${parts.join(", ")})` : ""}. ` +
    `Model ${r.model_version ?? ""}.`;
}

/** Said with a result computed from the photo alone: that it is, and what answering would change. */
export const WITHOUT_ANSWERS =
  "Computed from the photo alone: no questions were answered. Answers on growth, change, bleeding and the " +
  "other questions above go into the estimate with the photo and can move it up or down a tier; answer the " +
  "ones you know and the result updates.";

/** Every input the estimate used, listed (issue 22): the photo and its type, then each detail. */
function renderInputs(el, r, meta) {
  const pt = r.photo_type;
  const photo = pt ? `The photo, judged as ${photoKind(pt.kind)} (${photoSource(pt.source)})` : "The photo";
  const used = usedWords(r.metadata_used, meta);
  const given = answerWords(meta).filter((w) => !w.startsWith("Taken with a dermatoscope"));
  const unused = given.filter((w) => !used.includes(w));
  const items = [photo, ...used].map((t) => item(t));
  if (!used.length) items.push(item("None of your details or answers"));
  for (const u of unused) {
    const li = item(`Not used by this model: ${u}`);
    li.className = "ss-unused";
    items.push(li);
  }
  el.inputs.replaceChildren(...items);
  el.inputs.dataset.used = (r.metadata_used ?? []).join(" ");
}

function item(text) {
  const li = document.createElement("li");
  li.textContent = text;
  return li;
}

/** The photo check: a verdict other than ok hides the tier until the user asks for it. */
export function renderQuality({ root, el }, q) {
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
    // What is wrong, then what to do, in the page's words; the engine's advice where the page has none.
    const reason = verdict === "not_a_lesion" ? "not_a_lesion" : q.reason;
    const why = REASON_TEXT[reason] ?? "";
    el.qualityTitle.textContent = `${VERDICT_TITLE[verdict] ?? verdict}${why ? `: ${why.charAt(0).toLowerCase()}${why.slice(1)}` : "."}`;
    el.qualityAdvice.textContent = RETAKE_ADVICE[reason] ?? q.advice ?? "";
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
export function drawHeatmap({ el, state }) {
  const { heatmap } = state;
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

/** The chosen photo, at most 320 px, decoded in the page (no blob: URL, no request). */
export async function drawPreview(view, file) {
  const { el, state } = view;
  const c = el.preview;
  c.width = c.height = 0;
  state.heatmap = null;
  el.heatmap.width = el.heatmap.height = 0;
  // createImageBitmap decodes locally (and applies EXIF orientation).
  try {
    const bmp = await createImageBitmap(file);
    const scale = Math.min(1, 320 / Math.max(bmp.width, bmp.height));
    c.width = Math.max(1, Math.round(bmp.width * scale));
    c.height = Math.max(1, Math.round(bmp.height * scale));
    c.getContext("2d").drawImage(bmp, 0, 0, c.width, c.height);
    bmp.close();
    drawHeatmap(view); // the result may have arrived before the photo was decoded
  } catch {
    // Not decodable by the browser: the classifier's own message will explain.
  }
}

export function showError({ root, el }, text) {
  el.error.textContent = text;
  el.error.hidden = false;
  root.dataset.error = "true";
}

export function clearError({ root, el }) {
  el.error.textContent = "";
  el.error.hidden = true;
  delete root.dataset.error;
}

/** The engine's one-line message, framed for a person; its own advice is kept, not repeated. */
export function explain(message) {
  const text = message.replace(/\.$/, "");
  if (/^invalid field/.test(text)) return `Please check your details: ${text}.`;
  const advised = /\b(upload|export|choose|use)\b/i.test(text);
  return `This file could not be analysed: ${text}.${advised ? "" : " Choose a clear, close-up photo of the spot (JPEG, PNG, WebP, BMP or GIF)."}`;
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
  return v < 10 && v > 0 ? `${v.toFixed(1)}%` : `${Math.round(v)}%`;
}
function ms(x) {
  return Number.isFinite(x) ? `${x < 10 ? x.toFixed(1) : Math.round(x)} ms` : "– ms";
}
/** Megabytes, for sizes shown to the user. */
export function mb(bytes) {
  return `${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB`;
}
