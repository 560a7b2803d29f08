// The optional questions beside the photo (issue 12): "taken with a dermatoscope?" and what the
// person noticed. Markup, reading the raw answers, and saying which were used. Values go to the
// engine as the user gave them; src/tabular.rs parses and checks them (one parser for page and CLI).

/** The yes/no questions, in plain words, keyed by the manifest's feature names. */
export const QUESTIONS = [
  ["itch", "Does it itch?", "itches"],
  ["grew", "Has it grown recently?", "grown"],
  ["hurt", "Does it hurt?", "hurts"],
  ["changed", "Has it changed in shape, colour or look?", "changed"],
  ["bleed", "Has it bled?", "bled"],
  ["elevation", "Is it raised above the skin?", "raised"],
];

const PHOTO_TYPES = [
  ["auto", "Not sure: detect it"],
  ["dermoscopic", "Yes"],
  ["clinical", "No, an ordinary photo"],
];

/** A radio group with a legend; `options` are [value, label], the first one checked. */
function radios(id, key, legend, options, extraClass = "") {
  const items = options
    .map(([value, label], i) => `
        <label class="ss-radio"><input type="radio" name="${id(key)}" value="${value}" data-answer="${key}"${i === 0 ? " checked" : ""}> ${label}</label>`)
    .join("");
  return `
      <fieldset class="ss-choice ${extraClass}" data-field="${key}">
        <legend>${legend}</legend>${items}
      </fieldset>`;
}

/** "Taken with a dermatoscope?": Auto (the engine detects it), Yes, No. */
export function photoTypeMarkup(id) {
  return radios(id, "photoType", "Photo taken with a dermatoscope?", PHOTO_TYPES, "ss-photo-type-choice");
}

/**
 * The six questions (Yes / No / Don't know, default Don't know) and the size in mm. Always open
 * (issue 22): they are what moves an estimate most after the photo, so they are seen before it.
 */
export function questionsMarkup(id) {
  const answers = [["", "Don't know"], ["yes", "Yes"], ["no", "No"]];
  return `
    <section class="ss-questions" aria-labelledby="${id("questions-h")}">
      <h2 class="ss-h2" id="${id("questions-h")}">What have you noticed? <span class="ss-optional">(optional)</span></h2>
      <p class="ss-hint">Answer what you know: the answers go into the estimate with the photo and can move it up or down a tier.</p>
      <div class="ss-meta-fields">${QUESTIONS.map(([key, q]) => radios(id, key, q, answers)).join("")}
        <div class="ss-field" data-field="diameter_mm">
          <label for="${id("diameter")}">Its size across, in millimetres</label>
          <input type="number" id="${id("diameter")}" name="diameterMm" inputmode="decimal" min="0" step="0.5" autocomplete="off">
        </div>
      </div>
      <p class="ss-hint">Used only for this estimate, never stored or sent anywhere unless you save the check.</p>
    </section>`;
}

/** The raw answers under `root`: {photoType, itch…elevation: "yes"|"no"|"", diameterMm: text}. */
export function readAnswers(root) {
  const out = {};
  for (const input of root.querySelectorAll("input[data-answer]:checked")) out[input.dataset.answer] = input.value;
  const size = root.querySelector('[name="diameterMm"]');
  if (size) out.diameterMm = size.value.trim();
  return out;
}

/** Whether a size was typed that the browser could not read as a number (its value is then ""). */
export function badSize(root) {
  return Boolean(root.querySelector('[name="diameterMm"]')?.validity.badInput);
}

/** One line on the photo type that chose the head: what it is and where that came from. */
export function photoTypeText(pt) {
  if (!pt) return "";
  return `Judged as ${photoKind(pt.kind)}, ${photoSource(pt.source)}.`;
}

/** "an ordinary (phone) photo" or "a dermatoscope photo". */
export function photoKind(kind) {
  return kind === "clinical" ? "an ordinary (phone) photo" : "a dermatoscope photo";
}

/** How the photo type was settled, in words: "as you said", "detected from the photo", "assumed". */
export function photoSource(source) {
  return source === "given" ? "as you said" : source === "detected" ? "detected from the photo" : "assumed";
}

/** Whether any detail or answer is set (other than the defaults: blank, "Don't know", detect the photo type). */
export function hasAnswers(answers) {
  return Object.entries(answers ?? {}).some(([k, v]) => (k === "photoType" ? v && v !== "auto" : v !== undefined && v !== null && v !== ""));
}

/** The form's keys in its order, each with its words; a feature name maps to its key (diameter_mm). */
const FIELD_WORDS = [
  ["age", (v) => `Age: ${v}`],
  ["sex", (v) => `Sex: ${v}`],
  ["site", (v) => `Body site: ${v}`],
  ["photoType", (v) => (v === "dermoscopic" ? "Taken with a dermatoscope: yes" : v === "clinical" ? "Taken with a dermatoscope: no, an ordinary photo" : "")],
  ...QUESTIONS.map(([key, q]) => [key, (v) => `${q} ${v === "yes" ? "Yes" : v === "no" ? "No" : v}`]),
  ["diameterMm", (v) => `Size across: ${v} mm`],
];
const FEATURE_KEY = { diameter_mm: "diameterMm" };

function words(answers, keys) {
  return FIELD_WORDS.filter(([key]) => keys.includes(key))
    .map(([key, say]) => (answers[key] === undefined || answers[key] === null || answers[key] === "" ? "" : say(answers[key])))
    .filter(Boolean);
}

/**
 * Every detail and answer the person gave, in plain words ("Has it bled? Yes", "Size across: 7 mm"),
 * in the form's order; the defaults (blank, "Don't know", detect the photo type) are left out.
 * `answers` are the raw values of readAnswers() plus age, sex and site.
 */
export function answerWords(answers = {}) {
  return words(answers, FIELD_WORDS.map(([key]) => key));
}

/** The details the estimate used (its `metadata_used` feature names), in the same words. */
export function usedWords(used, meta = {}) {
  return words(meta, (used ?? []).map((f) => FEATURE_KEY[f] ?? f));
}

/** Which of the person's details the estimate used, in one line ("" when none). */
export function usedText(used, meta) {
  if (!used?.length) return "";
  return `Combined the photo with your details: ${usedWords(used, meta).join("; ")}.`;
}
