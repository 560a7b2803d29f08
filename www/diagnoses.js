// The lesion types shown beside a result (issue 22), consistent with the shown probability.
//
// The image head's softmax over the diagnoses is uncalibrated, and the probability a person reads
// is calibrated (and, with answers, stacked with the tabular model), so the two disagree: "30%
// chance malignant" beside "naevus 87%, melanoma 5%". The list shown here is the softmax split by
// the calibrated probability instead: each malignant type gets p x its share among the malignant
// types, each benign type (1 - p) x its share among the benign ones. The ranking within each group
// is the photo's; the malignant types' total is exactly p. The list holds the top `top` types and
// every malignant type of at least `floor`, so the malignant share of what is shown is within
// (number of malignant types) x floor of p. Where that cannot be met (a manifest without a
// malignant flag, a result without diagnoses), the list is withheld.
//
// Pure: the page (ui-render.js), the report (history-views.js) and the tests (trust.mjs) use it.

/** How far, in probability, the malignant share of the shown list may be from the shown probability. */
export const MAX_GAP = 0.1;

/**
 * @param {{diagnosis?: object, malignant_probability: number}} result the engine's result
 * @param {{diagnoses?: {code: string, name?: string, malignant?: boolean}[]}} manifest
 * @returns {{items: {code: string, name: string, malignant: boolean, probability: number}[],
 *            malignantShown: number, withheld: boolean}}
 */
export function shownDiagnoses(result, manifest, { top = 3, floor = 0.01 } = {}) {
  const p = Number(result?.malignant_probability);
  const info = new Map((manifest?.diagnoses ?? []).map((d) => [d.code, d]));
  const raw = Object.entries(result?.diagnosis ?? {}).filter(([, v]) => Number.isFinite(v) && v >= 0);
  const none = { items: [], malignantShown: 0, withheld: true };
  if (!Number.isFinite(p) || !raw.length || !raw.every(([code]) => info.has(code))) return none;
  const isMal = (code) => info.get(code).malignant === true;
  const sum = (rows) => rows.reduce((s, [, v]) => s + v, 0);
  const mal = raw.filter(([c]) => isMal(c));
  const ben = raw.filter(([c]) => !isMal(c));
  const [sm, sb] = [sum(mal), sum(ben)];
  // Within a group the photo's ranking; with no evidence for a group, its types share evenly.
  const scaled = [
    ...mal.map(([c, v]) => [c, p * (sm > 0 ? v / sm : 1 / mal.length)]),
    ...ben.map(([c, v]) => [c, (1 - p) * (sb > 0 ? v / sb : 1 / ben.length)]),
  ].sort((a, b) => b[1] - a[1]);
  const keep = scaled.filter(([c, v], i) => i < top || (isMal(c) && v >= floor));
  const items = keep.map(([code, probability]) => ({
    code, probability, malignant: isMal(code), name: info.get(code).name ?? code,
  }));
  const malignantShown = items.filter((d) => d.malignant).reduce((s, d) => s + d.probability, 0);
  if (!mal.length || !ben.length || Math.abs(malignantShown - p) > MAX_GAP) return { items: [], malignantShown, withheld: true };
  return { items, malignantShown, withheld: false };
}
