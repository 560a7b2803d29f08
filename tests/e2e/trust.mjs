// Browser tests for issue 22 ("a result a person can trust at a glance"), in headless Debian
// Chromium on a 390x844 phone viewport. Run by `./build.sh test` after run.mjs; by hand, after
// `./build.sh`:
//
//   SKINSCAN_BIN=$CARGO_TARGET_DIR/debug/skinscan node tests/e2e/trust.mjs
//
// What it shows (one check per line of output):
//  1. answers belong to one check: after "Start over", or a new photo answered "another spot", no
//     answer of the last check is used (the page agrees with the CLI given no answers); "same spot"
//     keeps them (the page agrees with the CLI given them); every input used is listed;
//  2. a photo the check turned down, shown anyway, has no tier colour, no tier words and no advice,
//     only a greyed probability marked unreliable: for turned-down photos of each tier;
//  3. the lesion types shown agree with the probability shown (malignant types within 10 points)
//     or are withheld: every sample and every PAD-UFES-20 test photo;
//  4. after a photo is analysed the result is on screen and has the focus, the announcement kept;
//  5. no view is wider than the viewport at 320 and 390 px: page, result, turned down, timeline,
//     compare, report;
//  6. axe-core finds no violation of any impact in any of those views;
//  7. the report is in plain words (no field names, every figure explained), quotes each check's
//     photo type's accuracy, and the reminder follows the tier's advice.
import { chromium } from "playwright-core";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "../../tools/server.mjs";
import { assert, check, cli, finish } from "./harness.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const SAMPLES = path.resolve(process.env.SKINSCAN_SAMPLES ?? path.join(ROOT, "../shared/data/samples"));
const PAD = path.resolve(SAMPLES, "../pad-ufes-20");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const LOAD_TIMEOUT = 180_000;
const STEP_TIMEOUT = 60_000;
const TOLERANCE = 1e-4;
const PHONE = { width: 390, height: 844 };
const TIERS = ["low", "moderate", "high"];
const ADVICE_WORDS = ["Keep an eye on it", "Have it checked", "See a doctor soon", "Low risk", "Moderate risk", "High risk"];

const samples = readdirSync(SAMPLES).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort().map((f) => path.join(SAMPLES, f));
const want = new Map(samples.map((f) => [f, cli(f)]));
const passed = samples.filter((f) => want.get(f).quality?.verdict === "ok");
assert(passed.length >= 2, `fewer than two samples pass the photo check: ${samples.length} samples`);
const padTest = readPadTest();

function readPadTest() {
  const [head, ...rows] = readFileSync(path.join(PAD, "labels.csv"), "utf8").split("\n").filter(Boolean).map((l) => l.split(","));
  const [img, split] = [head.indexOf("image"), head.indexOf("split")];
  return rows.filter((r) => r[split] === "test").map((r) => path.join(PAD, "images", r[img]));
}

const tmp = mkdtempSync(path.join(tmpdir(), "skinscan-trust-"));
const server = await startServer({ root: path.join(ROOT, "www"), mounts: { "/__axe/": path.join(ROOT, "node_modules/axe-core") } });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic"],
});
const errors = [];
console.log(`trust: ${browser.version()} · ${server.origin} · ${samples.length} samples, ${padTest.length} PAD-UFES-20 test photos`);

// ------------------------------------------------------------------------------------------------
// The page's hooks.
const APP = '[data-testid="app"]';

async function seq(page) {
  return Number((await page.locator(APP).getAttribute("data-seq")) ?? 0);
}

/** Wait until result number `n` is on screen and nothing is running. */
async function resultNumber(page, n) {
  await page.locator(`${APP}[data-seq="${n}"]:not([data-busy])`).waitFor({ state: "attached", timeout: STEP_TIMEOUT });
}

/** Run `action`, which starts one analysis, and return what the page shows for it. */
async function analysed(page, action) {
  const n = (await seq(page)) + 1;
  await action();
  await resultNumber(page, n);
  return shown(page);
}

/** The photo `file` via the picker; when "Same spot?" is asked, `same` answers it (true, false). */
async function choose(page, file, same) {
  let n = (await seq(page)) + 1;
  await page.locator('input[type="file"]').setInputFiles(file);
  if (same !== undefined) {
    const ask = page.locator('[data-testid="same-spot"]');
    await ask.waitFor({ state: "visible", timeout: STEP_TIMEOUT });
    const focused = await page.evaluate(() => document.activeElement?.dataset?.testid);
    assert(focused === "same-spot", `"Same spot?" is asked without the focus (focus on ${focused})`);
    n = (await seq(page)) + 1; // nothing runs while it is asked
    await page.locator(`[data-testid="same-spot-${same ? "yes" : "no"}"]`).click();
  } else {
    assert(!(await page.locator('[data-testid="same-spot"]').isVisible()), "\"Same spot?\" was asked with no answers to keep");
  }
  await resultNumber(page, n);
  return shown(page);
}

/** What the result shows: tier and probability (data hooks), verdict, inputs used, lesion types. */
function shown(page) {
  return page.evaluate(() => {
    const q = (s) => document.querySelector(s);
    const tier = q('[data-testid="risk-tier"]');
    const dx = q('[data-testid="diagnoses"]');
    return {
      tier: tier.textContent.trim(),
      probability: Number(tier.dataset.probability),
      verdict: q('[data-testid="quality"]').dataset.verdict,
      used: q('[data-testid="inputs-used"]').dataset.used,
      inputs: q('[data-testid="inputs-used"]').innerText,
      note: q('[data-testid="metadata-used"]').innerText,
      withheld: dx.dataset.withheld === "true",
      items: [...dx.querySelectorAll("li")].map((li) => ({ text: li.textContent, p: Number(li.dataset.probability), malignant: li.dataset.malignant === "true" })),
      dxVisible: dx.offsetParent !== null,
    };
  });
}

function agree(got, ref, what) {
  assert(Math.abs(got.probability - ref.malignant_probability) <= TOLERANCE, `${what}: page ${got.probability}, CLI ${ref.malignant_probability}`);
  assert(got.tier === ref.risk_tier, `${what}: page tier ${got.tier}, CLI ${ref.risk_tier}`);
  assert(got.used === ref.metadata_used.join(" "), `${what}: page used "${got.used}", CLI used "${ref.metadata_used.join(" ")}"`);
}

const question = (page, q) => page.getByRole("group", { name: q });
async function answer(page, answers) {
  if (answers.age !== undefined) {
    await page.locator("details.ss-meta").evaluate((d) => { d.open = true; });
    await page.getByLabel("Age in years").fill(String(answers.age));
    await page.getByLabel("Age in years").blur();
  }
  if (answers.bleed) await question(page, "Has it bled?").getByLabel(answers.bleed === "yes" ? "Yes" : "No", { exact: true }).check();
  if (answers.grew) await question(page, "Has it grown recently?").getByLabel(answers.grew === "yes" ? "Yes" : "No", { exact: true }).check();
  if (answers.diameterMm !== undefined) {
    await page.getByLabel("Its size across, in millimetres").fill(String(answers.diameterMm));
    await page.getByLabel("Its size across, in millimetres").blur();
  }
  if (answers.photoType === "dermoscopic") {
    await question(page, "Photo taken with a dermatoscope?").getByLabel("Yes", { exact: true }).check();
  }
}

/** Every field at its default: blank, "Don't know", detect the photo type. */
function formIsClear(page) {
  return page.evaluate(() => {
    const app = document.querySelector('[data-testid="app"]');
    const values = [...app.querySelectorAll(".ss-meta input, .ss-meta select, .ss-questions input[type=number]")].map((e) => e.value);
    const radios = [...app.querySelectorAll(".ss-choice")].map((g) => g.querySelector("input[type=radio]").checked);
    return values.every((v) => v === "") && radios.every(Boolean);
  });
}

/** What a person would read as the tier: the tier words and advice, and any band or box in a tier's colour. */
function tierOnScreen(page) {
  return page.evaluate((words) => {
    const result = document.querySelector('[data-testid="result"]');
    const text = result.innerText;
    const colour = (e) => getComputedStyle(e).backgroundColor;
    const bands = [...result.querySelectorAll(".ss-band")].map(colour);
    return {
      words: words.filter((w) => text.includes(w)),
      tierClass: [...result.classList].filter((c) => c.startsWith("ss-tier-")),
      bandsDiffer: new Set(bands).size > 1,
      summaryVisible: result.querySelector('[data-testid="summary"]').offsetParent !== null,
      unreliable: result.querySelector('[data-testid="unreliable"]').offsetParent !== null,
      probability: result.querySelector('[data-testid="probability"]').innerText,
      border: getComputedStyle(result).borderTopColor,
    };
  }, ADVICE_WORDS);
}

async function axe(page) {
  if (!(await page.evaluate(() => "axe" in window))) await page.addScriptTag({ url: `${server.origin}/__axe/axe.min.js` });
  return page.evaluate(async () => (await window.axe.run(document, { resultTypes: ["violations"] })).violations
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" | ")}`));
}

/** The widest thing on the page, at `width` px: the document's scroll width and the widest element. */
async function widthAt(page, width) {
  await page.setViewportSize({ width, height: PHONE.height });
  return page.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    let widest = null;
    for (const e of document.querySelectorAll("body *")) {
      const r = e.getBoundingClientRect();
      if (r.width && r.right > vw + 0.5 && e.offsetParent !== null && (!widest || r.right > widest.right)) {
        widest = { right: Math.round(r.right), what: `${e.tagName.toLowerCase()}.${[...e.classList].join(".")}` };
      }
    }
    return { scroll: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth), vw, widest };
  });
}

/** Darkened, blurred or shrunk copies of `file`, made by the browser's canvas as JPEG; returns paths. */
async function degraded(page, file) {
  const b64 = readFileSync(file).toString("base64");
  const out = await page.evaluate(async (b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const bmp = await createImageBitmap(new Blob([bytes]));
    const make = async (filter, scale = 1, pad = 1) => {
      const w = Math.round(bmp.width * pad), h = Math.round(bmp.height * pad);
      const c = new OffscreenCanvas(w, h);
      const g = c.getContext("2d");
      g.fillStyle = "#c8a58c"; // skin-coloured margin around a shrunk spot
      g.fillRect(0, 0, w, h);
      g.filter = filter;
      const [dw, dh] = [bmp.width * scale, bmp.height * scale];
      g.drawImage(bmp, (w - dw) / 2, (h - dh) / 2, dw, dh);
      const blob = await c.convertToBlob({ type: "image/jpeg", quality: 0.9 });
      return btoa(String.fromCharCode(...new Uint8Array(await blob.arrayBuffer())));
    };
    return {
      dark: await make("brightness(0.12)"),
      darker: await make("brightness(0.06)"),
      blur: await make("blur(14px)"),
      bright: await make("brightness(3.2)"),
      small: await make("none", 0.12, 1),
    };
  }, b64);
  return Object.entries(out).map(([how, data]) => {
    const f = path.join(tmp, `${path.basename(file).replace(/\.\w+$/, "")}-${how}.jpg`);
    writeFileSync(f, Buffer.from(data, "base64"));
    return f;
  });
}

// ------------------------------------------------------------------------------------------------
try {
  const context = await browser.newContext({ viewport: PHONE, serviceWorkers: "block" });
  context.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  context.on("weberror", (e) => errors.push(String(e.error())));
  const page = await context.newPage();
  await page.goto(`${server.origin}/`);
  await page.locator(`${APP}[data-engine="ready"]`).waitFor({ state: "attached", timeout: LOAD_TIMEOUT });
  const views = {}; // name -> {scroll at 320, 390; axe}
  async function measureView(name) {
    const a = await widthAt(page, 320);
    const b = await widthAt(page, 390);
    views[name] = { 320: a, 390: b, axe: await axe(page) };
  }
  await measureView("page");

  const [A, B] = passed;
  const answers = { age: 60, bleed: "yes", diameterMm: 11, photoType: "dermoscopic" };

  await check("(1) answers belong to one check: start over or another spot clears them, same spot keeps them", async () => {
    await answer(page, answers);
    const first = await choose(page, A);
    agree(first, cli(A, answers), "with answers");
    assert(/Has it bled\? Yes/.test(first.inputs) && /Size across: 11 mm/.test(first.inputs) && /Age: 60/.test(first.inputs),
      `the result does not list the inputs it used: ${first.inputs}`);
    assert(/as you said/.test(first.inputs), `the given photo type is not listed: ${first.inputs}`);
    // "Start over" asks; "another spot" clears everything, so nothing of the first goes into the next.
    await page.getByRole("button", { name: "Start over" }).click();
    await page.locator('[data-testid="same-spot"]').waitFor({ state: "visible", timeout: STEP_TIMEOUT });
    await page.locator('[data-testid="same-spot-no"]').click();
    assert(await formIsClear(page), "\"Another spot\" left answers on the form");
    const second = await choose(page, B);
    agree(second, cli(B), "after start over, another spot");
    assert(!/bled|Size across|Age/.test(second.inputs), `an answer of the first check is listed: ${second.inputs}`);
    assert(/photo alone/.test(second.note), `a photo-only result does not say so: ${second.note}`);
    // A new photo with answers on the form asks too: "same spot" keeps them...
    await analysed(page, () => answer(page, { bleed: "yes" }));
    await analysed(page, () => answer(page, { diameterMm: 11 }));
    const same = await choose(page, A, true);
    agree(same, cli(A, { bleed: "yes", diameterMm: 11 }), "new photo, same spot");
    // ...and "another spot" clears them before the photo is analysed.
    const other = await choose(page, B, false);
    agree(other, cli(B), "new photo, another spot");
    assert(await formIsClear(page), "\"Another spot\" left answers on the form");
    return `with answers ${first.probability.toFixed(4)} (${first.used}); after start over ${second.probability.toFixed(4)} (photo only, as the CLI); same spot kept "${same.used}"; another spot used "${other.used}"`;
  });

  await check("(4) after analysis the result is on screen with the focus, and announced", async () => {
    await page.setViewportSize(PHONE);
    await page.evaluate(() => window.scrollTo(0, 0));
    await choose(page, A);
    const where = await page.evaluate(() => {
      const r = document.querySelector('[data-testid="result"]');
      const box = r.getBoundingClientRect();
      return { top: box.top, h: innerHeight, focused: r.contains(document.activeElement), focus: document.activeElement?.textContent?.trim().slice(0, 40),
        said: document.querySelector(".ss-announce").textContent };
    });
    assert(where.focused, `the focus is not in the result (it is on "${where.focus}")`);
    assert(where.top >= 0 && where.top < where.h / 2, `the result starts at y ${Math.round(where.top)} on a ${where.h} px screen`);
    assert(/risk/.test(where.said), `the announcement is not the result: ${where.said}`);
    await measureView("result");
    return `result at y ${Math.round(where.top)} of ${where.h}, focus on "${where.focus}"; announced "${where.said.slice(0, 60)}…"`;
  });

  await check("(2) a turned-down photo shown anyway has no tier colour, tier words or advice, in each tier", async () => {
    const found = new Map(); // tier -> file
    const candidates = [];
    for (const f of samples) candidates.push(f, ...(await degraded(page, f)));
    for (const f of candidates) {
      const ref = cli(f);
      if (ref.quality && ref.quality.verdict !== "ok" && !found.has(ref.risk_tier)) found.set(ref.risk_tier, { f, ref });
      if (found.size === TIERS.length) break;
    }
    const missing = TIERS.filter((t) => !found.has(t));
    assert(missing.length === 0, `no turned-down photo of tier ${missing.join(", ")} among ${candidates.length} photos`);
    const notes = [];
    for (const tier of TIERS) {
      const { f, ref } = found.get(tier);
      const got = await choose(page, f);
      agree(got, ref, path.basename(f));
      const before = await tierOnScreen(page);
      assert(before.words.length === 0 && !before.unreliable, `${tier}: before "show anyway": ${before.words.join(", ")}`);
      await page.locator('[data-testid="reveal"]').click();
      const s = await tierOnScreen(page);
      assert(s.unreliable, `${tier}: the revealed estimate is not marked unreliable`);
      assert(!s.summaryVisible && s.words.length === 0, `${tier}: tier words or advice shown: ${s.words.join(", ")}`);
      assert(s.tierClass.length === 0 && !s.bandsDiffer, `${tier}: a tier colour is shown (${s.tierClass.join(" ")}, bands differ: ${s.bandsDiffer})`);
      assert(/Unreliable/.test(s.probability), `${tier}: the probability is not marked unreliable: ${s.probability}`);
      assert(!got.dxVisible, `${tier}: lesion types are listed for a turned-down photo`);
      notes.push(`${tier}: ${path.basename(f)} (${ref.quality.verdict}${ref.quality.reason ? ` ${ref.quality.reason}` : ""}, ${(100 * ref.malignant_probability).toFixed(1)}%)`);
      if (tier === "high") await measureView("turned down");
    }
    return notes.join("; ");
  });

  await check(`(3) lesion types agree with the probability (within 10 points) or are withheld: ${samples.length} samples, ${padTest.length} PAD test photos`, async () => {
    let [consistent, withheld, worst] = [0, 0, 0];
    for (const f of [...samples, ...padTest]) {
      const got = await choose(page, f);
      if (got.verdict !== "ok") {
        assert(!got.dxVisible, `${path.basename(f)}: lesion types shown for a turned-down photo`);
        withheld++;
        continue;
      }
      if (got.withheld) {
        assert(got.items.length === 0 && got.dxVisible, `${path.basename(f)}: withheld, yet ${got.items.length} types listed`);
        withheld++;
        continue;
      }
      // The shown percentages, read back from the text, not only the data hooks.
      const mal = got.items.filter((d) => d.malignant);
      const gap = Math.abs(mal.reduce((s, d) => s + d.p, 0) - got.probability);
      const textual = mal.reduce((s, d) => s + Number(/(\d+(?:\.\d)?)%/.exec(d.text)?.[1] ?? (/under 1%/.test(d.text) ? 0.5 : NaN)), 0);
      assert(gap <= 0.1, `${path.basename(f)}: malignant types shown add up to ${(100 * (got.probability + gap)).toFixed(1)}%, the probability is ${(100 * got.probability).toFixed(1)}%`);
      assert(Math.abs(textual - 100 * got.probability) <= 10 + 0.5 * mal.length, `${path.basename(f)}: the text says ${textual}% malignant, the probability ${100 * got.probability}%`);
      worst = Math.max(worst, gap);
      consistent++;
    }
    return `${consistent} listed (largest gap ${(100 * worst).toFixed(2)} points), ${withheld} withheld or turned down`;
  });

  await check("(7) the timeline, compare view and report: plain words, each photo type's accuracy, the reminder follows the tier", async () => {
    // Two checks of one spot: a dermatoscope sample, then a phone photo with answers.
    const save = async (name) => {
      await page.getByLabel("Name of the spot").fill(name);
      await page.locator('[data-testid="save-check"]').click();
      await page.locator(".ss-save-status", { hasText: "Saved in" }).waitFor({ timeout: STEP_TIMEOUT });
    };
    const spot = "mole on the back";
    const derm = await choose(page, A);
    await save(spot);
    await page.getByRole("button", { name: "Start over" }).click();
    await answer(page, { grew: "yes", diameterMm: 7 });
    await choose(page, padTest[0]);
    await save(spot);
    await page.locator(".ss-spot-open", { hasText: spot }).click();
    await page.locator('[data-testid="timeline"]').waitFor({ timeout: STEP_TIMEOUT });
    await measureView("timeline");
    const last = cli(padTest[0], { grew: "yes", diameterMm: 7 });
    const refused = last.quality && last.quality.verdict !== "ok";
    const wantWeeks = refused ? "1" : { low: "12", moderate: "2", high: "1" }[last.risk_tier];
    const weeks = await page.getByLabel("Check again in").inputValue();
    assert(weeks === wantWeeks, `the reminder defaults to ${weeks} weeks after a ${refused ? "turned-down" : last.risk_tier} check, not ${wantWeeks}`);
    await page.getByRole("button", { name: "Compare two checks" }).click();
    await page.locator('[data-testid="compare"] canvas[data-drawn]').nth(3).waitFor({ state: "attached", timeout: STEP_TIMEOUT });
    await measureView("compare");
    await page.getByRole("button", { name: "Printable report" }).click();
    const report = page.locator('[data-testid="report"]');
    await report.locator("canvas[data-drawn]").nth(3).waitFor({ state: "attached", timeout: STEP_TIMEOUT });
    await measureView("report");
    const text = await report.innerText();
    // Field names, codes and raw values, as whole words; any snake_case or camelCase word at all.
    const internal = ["photoType", "auto", "clinical", "dermoscopic", "grew", "bleed", "itch", "undefined", "NaN", "null", "true", "false"];
    const found = [...internal.filter((w) => new RegExp(`\\b${w}\\b`).test(text)),
      ...(text.match(/\b[a-z]+_[a-z_]+\b|\b[a-z]+[A-Z][a-zA-Z]*\b/g) ?? []), ...(/\(detected, /.test(text) ? ["(detected, …)"] : [])];
    assert(found.length === 0, `the report shows internal names: ${found.join(", ")}`);
    assert(/Has it grown recently\? Yes/.test(text) && /Size across: 7 mm/.test(text), "the report does not list the answers in words");
    assert(/ROC-AUC is the chance/.test(text), "the report's accuracy figure is not explained");
    const kinds = await report.locator(".ss-report-accuracy").evaluateAll((ps) => ps.map((p) => p.dataset.kind));
    const wantKinds = [cli(A, {}).photo_type.kind, last.photo_type.kind];
    assert(kinds.join() === wantKinds.join(), `accuracy quoted for ${kinds.join(", ")}, the checks were ${wantKinds.join(", ")}`);
    const accuracy = await report.locator(".ss-report-accuracy").allInnerTexts();
    assert(/phone photos/.test(accuracy[1]) === (last.photo_type.kind === "clinical"), `the phone photo's check quotes: ${accuracy[1]}`);
    return `reminder ${weeks} weeks after ${refused ? "a turned-down" : last.risk_tier} check; accuracy quoted per check: ${kinds.join(", ")}; derm ${derm.tier}`;
  });

  await check("(5) no view is wider than the screen at 320 and 390 px", async () => {
    const bad = [];
    for (const [name, v] of Object.entries(views)) {
      for (const w of [320, 390]) if (v[w].scroll > v[w].vw) bad.push(`${name} at ${w}: ${v[w].scroll} px wide (${v[w].widest?.what} to ${v[w].widest?.right})`);
    }
    assert(Object.keys(views).length === 6, `measured ${Object.keys(views).join(", ")}, not the six views`);
    assert(bad.length === 0, bad.join("; "));
    return Object.entries(views).map(([n, v]) => `${n} ${v[320].scroll}/${v[390].scroll}`).join(", ");
  });

  await check("(6) axe-core: no violations of any impact in any view", async () => {
    const bad = Object.entries(views).flatMap(([n, v]) => v.axe.map((x) => `${n}: ${x}`));
    assert(bad.length === 0, bad.join("\n      "));
    return `${Object.keys(views).join(", ")}: 0 violations`;
  });

  await check("no console errors", async () => {
    assert(errors.length === 0, errors.join("\n"));
  });
} finally {
  await browser.close();
  await server.close();
  rmSync(tmp, { recursive: true, force: true });
}

finish("trust");
