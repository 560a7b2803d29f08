// The views of one saved spot (issue 14): its timeline (a small SVG chart and a table), the compare
// view of two checks with their heatmaps, the printable report, and the .ics reminder. Everything
// is drawn on this device from IndexedDB (history.js): photos are decoded with createImageBitmap
// onto canvases, so showing them makes no request of any kind.
import { REASON_TEXT, defaultModels } from "./choices.js";
import { shownDiagnoses } from "./diagnoses.js";
import * as store from "./history.js";
import { answerWords, photoKind, photoSource, usedWords } from "./questions.js";

const TIER_LABEL = { low: "Low risk", moderate: "Moderate risk", high: "High risk" };
const TIER_RANK = { low: 0, moderate: 1, high: 2 };
const VERDICT_TEXT = { ok: "passed", retake: "retake advised", not_a_lesion: "could not check the photo", unchecked: "not checked" };
/**
 * "Check again in" follows the tier's advice (issue 22): low, in a few months; moderate, a doctor
 * within weeks; high, within days. A photo the check turned down: take a better one soon.
 */
const REMINDER_WEEKS = { low: 12, moderate: 2, high: 1, refused: 1 };
const WEEK_CHOICES = [1, 2, 4, 8, 12, 26];
/** Said wherever two checks' model versions differ (issue 14). */
const MODEL_CHANGE_NOTE = "A change in score across model versions is not a change in the spot.";
const DISCLAIMER =
  "SkinScan is not a medical device and does not diagnose anything. It estimates, from a photo, how much a spot " +
  "resembles lesions that were malignant in public research images, and it can be wrong in both directions. " +
  "A low result does not mean a spot is harmless: see a doctor about any spot that is new, changing, bleeding, " +
  "itching or worrying you, whatever SkinScan says.";
const SVG = "http://www.w3.org/2000/svg";
const SIDE = 224; // the compare view's and report's square frame, in CSS pixels

/** Render the spot `spotId` into `host`: its timeline, then the compare, report and reminder tools. */
export async function openSpot(ctx, host, spotId) {
  const [spot] = (await store.spots()).filter((s) => s.id === spotId);
  if (!spot) return ctx.refresh();
  const checks = await store.checks(spotId);
  const { manifest, modelVersion } = await ctx.info;
  const view = { ctx, host, spot, checks, manifest, modelVersion };
  const section = el("section", { class: "ss-spot-view", "data-testid": "timeline", "data-spot-id": spot.id, tabindex: "-1" });
  section.append(
    el("h3", { class: "ss-h" }, `${spot.name}${spot.site ? ` (${spot.site})` : ""}`),
    chart(view),
    timelineTable(view),
    spotActions(view),
  );
  host.replaceChildren(section);
  section.focus();
}

// ------------------------------------------------------------------------------------------------
// Timeline

/** Probability over time: one point per check, coloured by tier, hollow when made by another model. */
function chart({ checks, modelVersion }) {
  const W = 600, H = 180, L = 44, R = 16, T = 12, B = 30;
  const times = checks.map((c) => Date.parse(c.date));
  const [t0, t1] = [Math.min(...times), Math.max(...times)];
  const x = (i) => (checks.length < 2 ? (L + W - R) / 2 : t1 > t0 ? L + ((times[i] - t0) / (t1 - t0)) * (W - L - R) : L + (i / (checks.length - 1)) * (W - L - R));
  const y = (p) => T + (1 - clamp01(p)) * (H - T - B);
  const summary = checks.map((c) => `${day(c.date)}: ${tierText(c.result ?? {})}, ${percent(c.result?.malignant_probability)}`);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "ss-chart", role: "img", "aria-label": `Timeline of estimated chance of malignancy: ${summary.join("; ")}` });
  for (const p of [0, 0.25, 0.5, 0.75, 1]) {
    svg.append(svgEl("line", { x1: L, x2: W - R, y1: y(p), y2: y(p), class: "ss-chart-grid" }));
    svg.append(svgEl("text", { x: L - 6, y: y(p) + 4, "text-anchor": "end", class: "ss-chart-label" }, `${p * 100}%`));
  }
  if (checks.length > 1) {
    svg.append(svgEl("polyline", { points: checks.map((c, i) => `${x(i)},${y(c.result?.malignant_probability)}`).join(" "), class: "ss-chart-line" }));
  }
  let lastLabel = -Infinity;
  checks.forEach((c, i) => {
    const older = modelVersion && c.modelVersion !== modelVersion;
    // A check whose photo was turned down had no tier: its dot is grey, not a tier's colour.
    const tone = refusedCheck(c.result) ? "refused" : c.result?.risk_tier;
    svg.append(svgEl("circle", { cx: x(i), cy: y(c.result?.malignant_probability), r: 6, class: `ss-dot ss-dot-${tone}${older ? " ss-dot-older" : ""}` }));
    // Dates under the axis, skipping those that would overlap the previous one.
    if (x(i) - lastLabel < 80) return;
    const anchor = checks.length > 1 && i === 0 ? "start" : checks.length > 1 && x(i) > W - R - 40 ? "end" : "middle";
    svg.append(svgEl("text", { x: x(i), y: H - 10, "text-anchor": anchor, class: "ss-chart-label" }, day(c.date)));
    lastLabel = x(i);
  });
  return svg;
}

/** The same data as a table (what screen readers and the tests read), with a delete button per check. */
function timelineTable(view) {
  const { checks, modelVersion } = view;
  const table = el("table", { class: "ss-timeline-table" });
  table.append(
    el("caption", {}, `${checks.length} saved check${checks.length === 1 ? "" : "s"}, oldest first`),
    el("thead", {}, el("tr", {}, ...["Date", "Tier", "Chance of malignancy", "Photo check", "Model", "Action"].map((h) => el("th", { scope: "col" }, h)))),
  );
  const body = el("tbody");
  for (const c of checks) {
    const r = c.result ?? {};
    const del = el("button", { type: "button", class: "ss-link-button" }, "Delete");
    del.setAttribute("aria-label", `Delete the check of ${when(c.date)}`);
    del.addEventListener("click", async () => {
      await store.deleteCheck(c.id);
      view.ctx.refresh();
      openSpot(view.ctx, view.host, view.spot.id);
    });
    body.append(el("tr", { "data-check-id": c.id, "data-tier": r.risk_tier, "data-probability": String(r.malignant_probability), "data-date": c.date },
      el("td", { "data-label": "Date" }, when(c.date)), el("td", { "data-label": "Tier" }, tierText(r)),
      el("td", { "data-label": "Chance of malignancy" }, percent(r.malignant_probability)),
      el("td", { "data-label": "Photo check" }, VERDICT_TEXT[r.quality?.verdict ?? "unchecked"] ?? r.quality.verdict),
      el("td", { "data-label": "Model" }, modelCell(c, modelVersion)), el("td", { "data-label": "Action" }, del)));
  }
  table.append(body);
  return table;
}

function modelCell(check, current) {
  const older = current && check.modelVersion !== current;
  return older ? `${check.modelVersion ?? "unknown"} (older model: not the current ${current})` : String(check.modelVersion ?? "unknown");
}

function spotActions(view) {
  const { ctx } = view;
  const box = el("div", { class: "ss-spot-actions" });
  const panel = el("div", { class: "ss-spot-panel" });
  const button = (text, cls, onClick) => {
    const b = el("button", { type: "button", class: `ss-secondary ${cls}` }, text);
    b.addEventListener("click", onClick);
    return b;
  };
  const due = reminderWeeks(view.checks.at(-1));
  const weeks = el("select", { id: ctx.id(`weeks-${view.spot.id}`) }, ...WEEK_CHOICES.map((w) => new Option(`${w} week${w === 1 ? "" : "s"}`, String(w), w === due, w === due)));
  box.append(
    button("Compare two checks", "ss-open-compare", () => showPanel(ctx, panel, compareView(view))),
    button("Printable report", "ss-open-report", () => showPanel(ctx, panel, reportView(view))),
    el("span", { class: "ss-ics-group" }, el("label", { for: weeks.id }, "Check again in"), weeks,
      button("Download reminder (.ics)", "ss-ics", () => reminder(view, Number(weeks.value)))),
    button("Delete this spot", "ss-danger ss-delete-spot", async () => {
      if (!confirm(`Delete “${view.spot.name}” and all its checks from this device?`)) return;
      await store.deleteSpot(view.spot.id);
      view.host.replaceChildren();
      ctx.say(`Deleted “${view.spot.name}”.`);
      ctx.refresh();
    }),
  );
  return el("div", {}, box, panel);
}

function showPanel(ctx, panel, content) {
  setPrinting(ctx.root, content.classList.contains("ss-report"));
  panel.replaceChildren(content);
  content.focus();
}

/** While the report is open, printing (or Chromium's page.pdf) shows the report alone. */
function setPrinting(root, on) {
  root.classList.toggle("ss-report-open", on);
  document.body.classList.toggle("ss-report-open", on);
}

function closeButton(ctx, section) {
  const b = el("button", { type: "button", class: "ss-secondary ss-close" }, "Close");
  b.addEventListener("click", () => {
    setPrinting(ctx.root, false);
    const spotView = section.closest(".ss-spot-view");
    section.remove();
    spotView?.querySelector(".ss-open-compare")?.focus();
  });
  return b;
}

// ------------------------------------------------------------------------------------------------
// Compare view: two checks side by side at the same size, with heatmaps and the change.
function compareView(view) {
  const { ctx, checks } = view;
  const section = el("section", { class: "ss-compare", "data-testid": "compare", tabindex: "-1", "aria-label": "Compare two checks" });
  if (checks.length < 2) {
    section.append(el("p", {}, "Save at least two checks of this spot to compare them."), closeButton(ctx, section));
    return section;
  }
  const pick = (name, label, index) => {
    const s = el("select", { id: ctx.id(`cmp-${name}`), class: `ss-compare-${name}` }, ...checks.map((c, i) => new Option(when(c.date), c.id, i === index, i === index)));
    return [el("label", { for: s.id }, label), s];
  };
  const [la, a] = pick("a", "Earlier check", checks.length - 2);
  const [lb, b] = pick("b", "Later check", checks.length - 1);
  const body = el("div", { class: "ss-compare-body" });
  const render = () => renderComparison(view, body, checks.find((c) => c.id === a.value), checks.find((c) => c.id === b.value));
  a.addEventListener("change", render);
  b.addEventListener("change", render);
  section.append(el("h4", { class: "ss-h" }, "Compare two checks"), el("div", { class: "ss-compare-pick" }, el("span", {}, la, a), el("span", {}, lb, b)), body, closeButton(ctx, section));
  render();
  return section;
}

function renderComparison(view, body, a, b) {
  const pa = a.result?.malignant_probability, pb = b.result?.malignant_probability;
  const delta = 100 * (Number(pb) - Number(pa));
  const [ta, tb] = [a.result?.risk_tier, b.result?.risk_tier];
  const refused = refusedCheck(a.result) || refusedCheck(b.result);
  const tierChange = refused ? "No tier to compare: a photo of these checks did not pass the photo check."
    : ta === tb ? `Tier unchanged: ${TIER_LABEL[ta] ?? ta}.`
    : `Tier ${TIER_RANK[tb] > TIER_RANK[ta] ? "rose" : "fell"} from ${TIER_LABEL[ta] ?? ta} to ${TIER_LABEL[tb] ?? tb}.`;
  const change = el("p", { class: "ss-change", "data-delta": String(Number(pb) - Number(pa)), "data-tier-from": ta, "data-tier-to": tb },
    `Chance of malignancy ${percent(pa)} → ${percent(pb)} (${delta >= 0 ? "+" : "−"}${Math.abs(delta).toFixed(1)} percentage points). ${tierChange}`);
  const parts = [el("div", { class: "ss-compare-grid" }, checkFigure(a, view), checkFigure(b, view)), change];
  if (a.modelVersion !== b.modelVersion) {
    parts.push(el("p", { class: "ss-model-note", "data-testid": "model-changed" },
      `These checks were made by different model versions (${a.modelVersion ?? "unknown"}, then ${b.modelVersion ?? "unknown"}). ${MODEL_CHANGE_NOTE}`));
  }
  body.replaceChildren(...parts);
}

/** One check: its photo and its heatmap over the photo, both in the same square frame, and its figures. */
function checkFigure(check, { modelVersion, manifest }) {
  const r = check.result ?? {};
  const photo = el("canvas", { width: SIDE, height: SIDE, class: "ss-check-photo", role: "img", "aria-label": `Photo of ${when(check.date)}` });
  const heat = el("canvas", { width: SIDE, height: SIDE, class: "ss-check-heatmap", role: "img", "aria-label": `Heatmap of ${when(check.date)}: where the model saw signs of the malignant types` });
  paint(photo, heat, check);
  const verdict = r.quality?.verdict ?? "unchecked";
  const why = verdict === "not_a_lesion" ? REASON_TEXT.not_a_lesion : REASON_TEXT[r.quality?.reason];
  const lines = [
    `${tierText(r)} · chance of malignancy ${percent(r.malignant_probability)}`,
    `Photo check: ${VERDICT_TEXT[verdict] ?? verdict}${verdict !== "ok" && why ? ` (${why.replace(/\.$/, "").toLowerCase()})` : ""}`,
    photoType(r), `Most likely: ${topDiagnoses(r, manifest)}`, `Model: ${modelCell(check, modelVersion)}`,
  ].filter(Boolean);
  return el("figure", { class: "ss-check", "data-check-id": check.id, "data-tier": r.risk_tier, "data-probability": String(r.malignant_probability) },
    el("div", { class: "ss-check-images" }, photo, heat),
    el("figcaption", {}, el("strong", {}, when(check.date)), ...lines.map((t) => el("span", {}, t))));
}

/** Decode the stored JPEG on this device and draw it (contained) and, on the second canvas, its heatmap over it. */
async function paint(photo, heat, check) {
  const bmp = await createImageBitmap(new Blob([check.photo.bytes], { type: check.photo.type }));
  const scale = Math.min(SIDE / bmp.width, SIDE / bmp.height);
  const [w, h] = [bmp.width * scale, bmp.height * scale];
  const [x, y] = [(SIDE - w) / 2, (SIDE - h) / 2];
  for (const c of [photo, heat]) c.getContext("2d").drawImage(bmp, x, y, w, h);
  bmp.close();
  const map = check.result?.heatmap;
  if (map?.width && map?.height && map.values?.length === map.width * map.height) {
    const grid = new OffscreenCanvas(map.width, map.height);
    const g = grid.getContext("2d");
    const px = g.createImageData(map.width, map.height);
    // Transparent where the evidence is weakest, through yellow to red at the strongest (as on the result).
    map.values.forEach((v, i) => px.data.set([255, Math.round(220 * (1 - clamp01(v))), 0, Math.round(200 * clamp01(v))], 4 * i));
    g.putImageData(px, 0, 0);
    const ctx = heat.getContext("2d");
    ctx.globalCompositeOperation = "multiply";
    ctx.drawImage(grid, x, y, w, h);
  }
  photo.dataset.drawn = heat.dataset.drawn = "true";
}

// ------------------------------------------------------------------------------------------------
// Printable report of one spot.
function reportView(view) {
  const { ctx, spot, checks, manifest, modelVersion } = view;
  const section = el("section", { class: "ss-report", "data-testid": "report", tabindex: "-1", "aria-label": "Printable report" });
  const print = el("button", { type: "button", class: "ss-print" }, "Print or save as PDF");
  print.addEventListener("click", () => window.print());
  section.append(
    el("div", { class: "ss-report-actions" }, print, closeButton(ctx, section)),
    el("h3", {}, `SkinScan report: ${spot.name}`),
    el("p", {}, `Body site: ${spot.site || "not given"}. ${checks.length} check${checks.length === 1 ? "" : "s"}, from ${checks.length ? day(checks[0].date) : "–"} to ${checks.length ? day(checks.at(-1).date) : "–"}. Report made on this device on ${day(new Date().toISOString())}.`),
    el("p", { class: "ss-report-model" }, modelAccuracy(manifest, modelVersion)),
    el("p", {}, "Each check shows the photo, then its heatmap: warmer colours mark where the model saw most signs of the malignant lesion types."),
    ...checks.map((c) => reportCheck(c, view)),
    el("h4", {}, "Disclaimer"),
    el("p", { class: "ss-report-disclaimer" }, DISCLAIMER),
  );
  if (new Set(checks.map((c) => c.modelVersion)).size > 1) section.insertBefore(el("p", { class: "ss-model-note" }, `These checks were made by more than one model version. ${MODEL_CHANGE_NOTE}`), section.children[5]);
  return section;
}

/** The current model and its measured accuracy on each photo type, as the model card reports them via the manifest. */
function modelAccuracy(manifest, modelVersion) {
  const image = manifest ? defaultModels(manifest).image : undefined;
  if (!image) return `Model: ${modelVersion ?? "unknown"}.`;
  const types = ["dermoscopic", image.clinical ? "clinical" : null].filter(Boolean)
    .map((k) => `for ${PHOTO_KINDS[k]}, ${accuracyFigure(manifest, k)}`);
  return `Model: ${modelVersion} (${image.name}). Measured accuracy, from its model card, photo only: ${types.join("; ")}. ` +
    "ROC-AUC is the chance that a malignant spot scores higher than a benign one: 0.5 is a coin toss, 1 is never wrong. " +
    "Checks made by another model version are marked.";
}

const PHOTO_KINDS = { dermoscopic: "dermatoscope photos", clinical: "ordinary (phone) photos" };

/** How well the model ranks photos of one kind: its held-out ROC-AUC and where that was measured. */
function accuracyFigure(manifest, kind) {
  const image = defaultModels(manifest).image;
  if (kind === "clinical") {
    return `ROC-AUC ${Number(image.clinical?.test_roc_auc).toFixed(3)} on held-out phone photos of patients it never saw ` +
      "(PAD-UFES-20 test split)";
  }
  const n = manifest.provenance?.splits?.test_images;
  return `ROC-AUC ${Number(image.test_roc_auc).toFixed(3)} on ${n ? `${n} ` : ""}held-out dermatoscope images ` +
    "(ISIC 2018 task 3 test set)";
}

function reportCheck(check, view) {
  const article = el("article", { class: "ss-report-check" }, checkFigure(check, view));
  const r = check.result ?? {};
  const given = answerWords(check.answers ?? {});
  const used = Array.isArray(r.metadata_used) ? usedWords(r.metadata_used, check.answers ?? {}) : [];
  const kind = r.photo_type?.kind === "clinical" ? "clinical" : "dermoscopic";
  article.append(
    el("p", {}, `Answers given: ${given.length ? given.join("; ") : "none"}. ` +
      `Used by the estimate, besides the photo: ${used.length ? used.join("; ") : "nothing else (photo only)"}.`),
    el("p", { class: "ss-report-accuracy", "data-kind": kind },
      `Accuracy for this kind of photo (${kind === "clinical" ? "an ordinary photo" : "a dermatoscope photo"}): ` +
      `${view.manifest ? accuracyFigure(view.manifest, kind) : "not known"}.`),
  );
  return article;
}

/** The reminder interval the latest check's advice asks for, in weeks. */
export function reminderWeeks(check) {
  const r = check?.result;
  if (!r) return REMINDER_WEEKS.low;
  return refusedCheck(r) ? REMINDER_WEEKS.refused : REMINDER_WEEKS[r.risk_tier] ?? REMINDER_WEEKS.moderate;
}

/** Whether the check's photo was turned down by the photo check (then it has no tier). */
function refusedCheck(r) {
  return Boolean(r?.quality && r.quality.verdict !== "ok");
}

/** The tier as the person read it: none for a photo the check turned down. */
function tierText(r) {
  if (refusedCheck(r)) return "No tier (the photo did not pass the check)";
  return TIER_LABEL[r.risk_tier] ?? String(r.risk_tier);
}

// ------------------------------------------------------------------------------------------------
// Reminder: an .ics calendar file for "check again in N weeks"; nothing runs on a server.
function reminder(view, weeks) {
  const due = new Date();
  due.setDate(due.getDate() + 7 * weeks);
  const next = new Date(due);
  next.setDate(next.getDate() + 1);
  const ymd = (d) => `${d.getFullYear()}${String(d.getMonth() + 1).padStart(2, "0")}${String(d.getDate()).padStart(2, "0")}`;
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+/, "");
  const text = (s) => s.replace(/[\\;,]/g, (m) => `\\${m}`).replace(/\r?\n/g, "\\n");
  const uid = [...crypto.getRandomValues(new Uint8Array(12))].map((b) => b.toString(16).padStart(2, "0")).join("");
  const ics = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//SkinScan//history//EN", "CALSCALE:GREGORIAN", "BEGIN:VEVENT",
    `UID:${uid}@skinscan.invalid`, `DTSTAMP:${stamp}`, `DTSTART;VALUE=DATE:${ymd(due)}`, `DTEND;VALUE=DATE:${ymd(next)}`,
    `SUMMARY:${text(`Check “${view.spot.name}” again with SkinScan`)}`,
    `DESCRIPTION:${text(reminderText(view))}`,
    "END:VEVENT", "END:VCALENDAR", ""].join("\r\n");
  download(view.ctx.root, "skinscan-check-again.ics", `data:text/calendar;charset=utf-8,${encodeURIComponent(ics)}`);
  view.ctx.say(`Downloaded a calendar reminder for ${due.toLocaleDateString()}.`);
}

/** What the reminder asks, following the latest check's advice. */
function reminderText({ spot, checks }) {
  const r = checks.at(-1)?.result;
  const base = `Take a new close-up photo of ${spot.name} and compare it with your last check.`;
  if (refusedCheck(r)) return `${base} The last photo did not pass the photo check, so it gave no risk tier.`;
  if (r?.risk_tier === "high") return `Have you seen a doctor about ${spot.name}? SkinScan's last check was high risk: book an appointment within days. ${base}`;
  if (r?.risk_tier === "moderate") return `Have you booked a doctor for ${spot.name}? SkinScan's last check was moderate risk: have it checked within weeks. ${base}`;
  return `${base} See a doctor if it has grown, changed shape or colour, bled or itched.`;
}

/** Save `href` as a file named `name`, through a link clicked inside the UI (works in a shadow root). */
export function download(root, name, href) {
  const a = document.createElement("a");
  a.href = href;
  a.download = name;
  a.hidden = true;
  root.append(a);
  a.click();
  a.remove();
  if (href.startsWith("blob:")) setTimeout(() => URL.revokeObjectURL(href), 60_000);
}

// ------------------------------------------------------------------------------------------------
// Small helpers, reading results defensively (photo_type and a list-valued metadata_used are newer fields).
function photoType(r) {
  const t = r.photo_type;
  if (!t || typeof t !== "object") return "";
  return `Photo type: ${photoKind(t.kind)}, ${photoSource(t.source)}`;
}

function topDiagnoses(r, manifest) {
  if (refusedCheck(r)) return "not given for a photo the check turned down";
  // The list the result showed: consistent with the probability (diagnoses.js), or withheld.
  const dx = shownDiagnoses(r, manifest);
  if (dx.withheld) return "not shown (the lesion types would not agree with the estimate)";
  return dx.items.map((d) => `${d.name} ${percent(d.probability)}`).join(", ");
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function clamp01(x) {
  return Math.min(1, Math.max(0, Number(x) || 0));
}
/** One decimal: small changes between checks stay visible. */
function percent(p) {
  return Number.isFinite(Number(p)) ? `${(100 * Number(p)).toFixed(1)}%` : "–";
}
function day(iso) {
  return iso.slice(0, 10);
}
function when(iso) {
  return `${day(iso)} ${iso.slice(11, 16)} UTC`;
}
