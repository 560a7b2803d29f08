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

/** The six questions (Yes / No / Don't know, default Don't know) and the size in mm. */
export function questionsMarkup(id) {
  const answers = [["", "Don't know"], ["yes", "Yes"], ["no", "No"]];
  return `
    <details class="ss-questions">
      <summary>What have you noticed? (optional, improves the estimate)</summary>
      <div class="ss-meta-fields">${QUESTIONS.map(([key, q]) => radios(id, key, q, answers)).join("")}
        <div class="ss-field" data-field="diameter_mm">
          <label for="${id("diameter")}">Its size across, in millimetres</label>
          <input type="number" id="${id("diameter")}" name="diameterMm" inputmode="decimal" min="0" step="0.5" autocomplete="off">
        </div>
      </div>
      <p class="ss-hint">Used only for this estimate, never stored or sent anywhere.</p>
    </details>`;
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
  const what = pt.kind === "clinical" ? "an ordinary (phone) photo" : "a dermatoscope photo";
  const how = pt.source === "given" ? "as you said" : pt.source === "detected" ? "detected from the photo" : "assumed";
  return `Judged as ${what}, ${how}.`;
}

/** Which of the person's details the estimate used, in words ("" when none). */
export function usedText(used, meta) {
  if (!used?.length) return "";
  const short = Object.fromEntries(QUESTIONS.map(([key, , word]) => [key, word]));
  const words = used.map((f) => {
    if (f === "age") return `age ${meta.age}`;
    if (f === "diameter_mm") return `size ${meta.diameterMm} mm`;
    if (short[f]) return `${short[f]}: ${meta[f]}`;
    return String(meta[f] ?? f);
  });
  return `Combined the photo with your details (${words.join(", ")}).`;
}
