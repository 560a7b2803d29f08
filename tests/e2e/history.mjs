// Browser tests for the saved history (issue 14), in headless Debian Chromium via playwright-core,
// against server.mjs on loopback. Run by `./build.sh test` after run.mjs; by hand (after ./build.sh):
//
//   SKINSCAN_BIN=$CARGO_TARGET_DIR/debug/skinscan CHROMIUM=/usr/bin/chromium node tests/e2e/history.mjs
//
// Each "Must show" of the issue is one check below, numbered as there:
//  1. two checks of one spot (two sample photos) survive a reload; the timeline shows the CLI's tiers
//     and probabilities;
//  2. the compare view shows both photos, their heatmaps and the change in probability and tier;
//  3. the report holds every field; Chromium's page.pdf text has the tier, the dates and the model version;
//  4. export, delete-all, import restores identical records (photo bytes and results); an encrypted
//     export with the wrong passphrase imports nothing;
//  5. delete-all leaves no SkinScan database in IndexedDB (read directly, not through history.js);
//  6. a tampered (one byte flipped) or truncated export is refused and the stored history is unchanged;
//  7. no request to another origin all session; none while classifying, saving, comparing, printing
//     or exporting;
//  8. the widget without the opt-in attribute stores nothing (and offers history with it).
// Also: keyboard navigation through every new view, axe-core (from node_modules, served by our own
// server) with no serious or critical violations, a model-version change marked, the .ics reminder,
// and a full device (quota) refused with nothing half-written. SKINSCAN_SCREENSHOTS=DIR saves the
// README's screenshots of the timeline, the compare view and the report.
import { chromium } from "playwright-core";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { compact, pdfText } from "./pdftext.mjs";
import { startServer } from "../../tools/server.mjs";
import { assert, check, cli, finish } from "./harness.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const SAMPLES = path.resolve(process.env.SKINSCAN_SAMPLES ?? path.join(ROOT, "../shared/data/samples"));
const SHOTS = process.env.SKINSCAN_SCREENSHOTS;
const LOAD_TIMEOUT = 180_000;
const STEP_TIMEOUT = 60_000;
const SPOT = "mole on left shoulder";
const SITE = "upper extremity";


const samples = readdirSync(SAMPLES).filter((f) => /\.jpe?g$/i.test(f)).sort().map((f) => path.join(SAMPLES, f));
const want = new Map(samples.map((f) => [f, cli(f)]));
// Two photos that pass the photo check, with different tiers where the samples allow.
const good = samples.filter((f) => want.get(f).quality?.verdict !== "retake" && want.get(f).quality?.verdict !== "not_a_lesion");
assert(good.length >= 2, "need two sample photos that pass the photo check");
const first = good[0];
const second = good.find((f) => want.get(f).risk_tier !== want.get(first).risk_tier) ?? good[1];

const server = await startServer({ root: path.join(ROOT, "www"), mounts: { "/__axe/": path.join(ROOT, "node_modules/axe-core") } });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic"],
});
console.log(`history e2e: ${browser.version()} · ${server.origin} · ${path.basename(first)} then ${path.basename(second)}`);

const seen = []; // every request the browser made: {url, foreign}
const errors = [];
function observe(context) {
  context.on("request", (r) => seen.push({ url: r.url(), foreign: !r.url().startsWith(`${server.origin}/`) }));
  context.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  context.on("weberror", (e) => errors.push(String(e.error()?.message ?? e.error())));
}

/** Run `action`; fail if the browser or the server saw any request meanwhile (privacy, issue 4). */
async function quietly(what, action) {
  const [b, s] = [seen.length, server.log.length];
  const value = await action();
  const extra = [...seen.slice(b).map((r) => r.url), ...server.log.slice(s).map((r) => r.url)];
  assert(extra.length === 0, `requests while ${what}: ${extra.join(", ")}`);
  return value;
}

/** Everything in SkinScan's IndexedDB, read with the raw API (not history.js); null when there is no database. */
function readDatabase(page) {
  return page.evaluate(async () => {
    if (!(await indexedDB.databases()).some((d) => d.name === "skinscan-history")) return null;
    const db = await new Promise((res, rej) => {
      const r = indexedDB.open("skinscan-history");
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    const out = {};
    for (const name of db.objectStoreNames) {
      out[name] = await new Promise((res) => {
        const r = db.transaction(name).objectStore(name).getAll();
        r.onsuccess = () => res(r.result);
      });
    }
    db.close();
    const hex = (buf) => [...new Uint8Array(buf)].map((x) => x.toString(16).padStart(2, "0")).join("");
    for (const c of out.checks ?? []) c.photo = { ...c.photo, bytes: hex(c.photo.bytes) };
    return JSON.stringify(out);
  });
}

/** Classify `file` on the page (no request meanwhile) and return the shown tier and probability. */
async function classify(page, file) {
  const app = page.locator('[data-testid="app"]').first();
  const before = Number((await app.getAttribute("data-seq")) ?? 0);
  return quietly("classifying", async () => {
    await page.locator('input[type="file"]').setInputFiles(file);
    await page.locator(`[data-testid="app"][data-seq="${before + 1}"]:not([data-busy])`).waitFor({ state: "attached", timeout: STEP_TIMEOUT });
    const tier = page.locator('[data-testid="risk-tier"]');
    return { tier: (await tier.textContent()).trim(), probability: Number(await tier.getAttribute("data-probability")) };
  });
}

async function save(page, name, site) {
  await page.getByLabel("Name of the spot").fill(name);
  await page.getByLabel("Where on the body").selectOption(site);
  await quietly("saving", async () => {
    await page.locator('[data-testid="save-check"]').click();
    await page.locator(".ss-save-status", { hasText: "Saved in" }).waitFor({ timeout: STEP_TIMEOUT });
  });
}

/** Reload, and wait for the classifier and the list of saved spots. */
async function reload(page, spots) {
  await page.reload();
  await page.locator('[data-testid="app"][data-engine="ready"]').waitFor({ state: "attached", timeout: LOAD_TIMEOUT });
  await page.locator(`[data-testid="history"][data-spots="${spots}"]`).waitFor({ state: "attached", timeout: STEP_TIMEOUT });
}

async function openSpot(page, name) {
  await page.locator(".ss-spot-open", { hasText: name }).click();
  await page.locator('[data-testid="timeline"]').waitFor({ timeout: STEP_TIMEOUT });
}

/** The timeline's rows: {tier, probability, date, text}. */
function timelineRows(page) {
  return page.locator('[data-testid="timeline"] tbody tr').evaluateAll((rows) =>
    rows.map((r) => ({ tier: r.dataset.tier, probability: Number(r.dataset.probability), date: r.dataset.date, text: r.textContent })));
}

function near(a, b) {
  return Math.abs(a - b) <= 1e-4;
}
const TIER_LABEL = { low: "Low risk", moderate: "Moderate risk", high: "High risk" };

/** Pick a file for the page's next file chooser (the import button), then click `button`. */
async function chooseFile(page, button, file) {
  const [chooser] = await Promise.all([page.waitForEvent("filechooser"), page.locator(`[data-testid="${button}"]`).click()]);
  await chooser.setFiles(file);
}

async function importFile(page, buffer, passphrase = "") {
  await page.getByLabel("Passphrase for export or import (optional)").fill(passphrase);
  const status = page.locator(".ss-history-status");
  const alert = page.locator(".ss-history-error");
  await status.evaluate((n) => (n.textContent = ""));
  await alert.evaluate((n) => (n.textContent = ""));
  await chooseFile(page, "import", { name: "history.skinscan", mimeType: "application/octet-stream", buffer });
  await page.waitForFunction(() => document.querySelector(".ss-history-status").textContent || document.querySelector(".ss-history-error").textContent, null, { timeout: STEP_TIMEOUT });
  return { ok: (await status.textContent()).trim(), error: (await alert.textContent()).trim() };
}

async function exportFile(page, passphrase = "") {
  await page.getByLabel("Passphrase for export or import (optional)").fill(passphrase);
  return quietly("exporting", async () => {
    const [download] = await Promise.all([page.waitForEvent("download"), page.locator('[data-testid="export"]').click()]);
    return readFileSync(await download.path());
  });
}

async function deleteEverything(page) {
  page.once("dialog", (d) => d.accept());
  await page.locator('[data-testid="delete-all"]').click();
  await page.locator(".ss-history-status", { hasText: "Deleted everything" }).waitFor({ timeout: STEP_TIMEOUT });
}

/** axe-core, served by our server, on the page as it is now: serious and critical violations. */
async function axe(page) {
  if (!(await page.evaluate(() => "axe" in window))) await page.addScriptTag({ url: `${server.origin}/__axe/axe.min.js` });
  const found = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ["violations"] })).violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" | ")}`));
  return found;
}

/** Press Tab until the focused element (inside shadow roots too) matches `selector`; returns the count. */
async function tabTo(page, selector, key = "Tab", max = 120) {
  for (let i = 1; i <= max; i++) {
    await page.keyboard.press(key);
    const hit = await page.evaluate((sel) => {
      let a = document.activeElement;
      while (a?.shadowRoot?.activeElement) a = a.shadowRoot.activeElement;
      return !!a?.matches(sel);
    }, selector);
    if (hit) return i;
  }
  throw new Error(`${key} never reached ${selector}`);
}

try {
  // No service worker here: its precache and the browser's own update checks of /sw.js would land
  // in the request-free windows below at moments of the browser's choosing. run.mjs tests it, and
  // offline use, with the same files (sw.js precaches the history modules too).
  const context = await browser.newContext({ serviceWorkers: "block" });
  observe(context);
  const page = await context.newPage(); // Playwright dismisses a confirm() no check expects
  await page.goto(`${server.origin}/`);
  await page.locator('[data-testid="app"][data-engine="ready"]').waitFor({ state: "attached", timeout: LOAD_TIMEOUT });
  const modelVersion = JSON.parse(readFileSync(path.join(ROOT, "models/manifest.json"), "utf8")).model_version;
  const pages = []; // the dates the report must show

  await check("nothing is stored until the user presses Save", async () => {
    await classify(page, first);
    assert((await readDatabase(page)) === null, "a SkinScan database exists before anything was saved");
    return "no SkinScan database after loading the page and a classification";
  });

  await check("(1) two checks of one spot survive a reload, with the CLI's tiers and probabilities", async () => {
    for (const file of [first, second]) {
      const shown = await classify(page, file);
      assert(near(shown.probability, want.get(file).malignant_probability), `page ${shown.probability} vs CLI ${want.get(file).malignant_probability}`);
      await save(page, SPOT, SITE);
    }
    await reload(page, 1);
    await openSpot(page, SPOT);
    const rows = await timelineRows(page);
    assert(rows.length === 2, `the timeline has ${rows.length} rows`);
    rows.forEach((row, i) => {
      const ref = want.get([first, second][i]);
      assert(row.tier === ref.risk_tier, `row ${i + 1}: tier ${row.tier}, CLI ${ref.risk_tier}`);
      assert(near(row.probability, ref.malignant_probability), `row ${i + 1}: ${row.probability}, CLI ${ref.malignant_probability}`);
      assert(row.text.includes(TIER_LABEL[ref.risk_tier]) && row.text.includes(`${(100 * ref.malignant_probability).toFixed(1)}%`), `row ${i + 1} shows "${row.text}"`);
      pages.push(row.date.slice(0, 10));
    });
    const dots = await page.locator('[data-testid="timeline"] svg circle').count();
    assert(dots === 2, `the chart has ${dots} points`);
    if (SHOTS) await page.locator('[data-testid="timeline"]').screenshot({ path: path.join(SHOTS, "history-timeline.png") });
    return rows.map((r) => `${r.tier} ${r.probability.toFixed(4)}`).join(" -> ");
  });

  await check("(2) the compare view shows both photos, their heatmaps and the change", async () => {
    const delta = want.get(second).malignant_probability - want.get(first).malignant_probability;
    await quietly("comparing", async () => {
      await page.getByRole("button", { name: "Compare two checks" }).click();
      await page.locator('[data-testid="compare"] canvas[data-drawn]').nth(3).waitFor({ state: "attached", timeout: STEP_TIMEOUT });
    });
    const canvases = await page.locator('[data-testid="compare"] canvas').evaluateAll((cs) => cs.map((c) => {
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let sum = 0;
      for (let i = 0; i < d.length; i += 4) sum += d[i] + d[i + 1] + d[i + 2];
      return { w: c.width, h: c.height, shown: c.getBoundingClientRect().width, sum, kind: c.className };
    }));
    assert(canvases.length === 4, `${canvases.length} canvases (want 2 photos + 2 heatmaps)`);
    assert(canvases.every((c) => c.sum > 0 && c.w === canvases[0].w && c.shown === canvases[0].shown), `empty or unequal images: ${JSON.stringify(canvases)}`);
    assert(canvases[0].sum !== canvases[2].sum, "the two photos are the same picture");
    assert(canvases[0].sum !== canvases[1].sum, "the heatmap is not drawn over the photo");
    const change = page.locator('[data-testid="compare"] .ss-change');
    assert(near(Number(await change.getAttribute("data-delta")), delta), `delta ${await change.getAttribute("data-delta")}, CLI ${delta}`);
    const text = await change.textContent();
    assert(text.includes(`${(100 * want.get(first).malignant_probability).toFixed(1)}%`) && text.includes(`${Math.abs(100 * delta).toFixed(1)} percentage points`), `change text: ${text}`);
    if (SHOTS) await page.locator('[data-testid="compare"]').screenshot({ path: path.join(SHOTS, "history-compare.png") });
    return text.trim();
  });

  await check("(3) the report holds every field, and Chromium's PDF of it has the tier, dates and model version", async () => {
    await page.getByRole("button", { name: "Printable report" }).click();
    const report = page.locator('[data-testid="report"]');
    await report.locator("canvas[data-drawn]").nth(3).waitFor({ state: "attached", timeout: STEP_TIMEOUT });
    const text = await report.textContent();
    const needs = [SPOT, SITE, modelVersion, "ROC-AUC", "not a medical device", "Answers given", "Photo check", "Most likely", ...pages,
      ...[first, second].flatMap((f) => [TIER_LABEL[want.get(f).risk_tier], `${(100 * want.get(f).malignant_probability).toFixed(1)}%`])];
    const missing = needs.filter((n) => !text.includes(n));
    assert(missing.length === 0, `the report lacks: ${missing.join(", ")}`);
    assert((await report.locator("canvas.ss-check-photo").count()) === 2 && (await report.locator("canvas.ss-check-heatmap").count()) === 2, "the report lacks photos or heatmaps");
    const pdf = await quietly("printing", () => page.pdf({ format: "A4", printBackground: true }));
    const printed = compact(pdfText(pdf));
    const lacks = [modelVersion, ...pages, TIER_LABEL[want.get(first).risk_tier], SPOT].filter((n) => !printed.includes(compact(n)));
    assert(lacks.length === 0, `the PDF's text lacks: ${lacks.join(", ")} (it has: ${printed.slice(0, 300)})`);
    assert(!printed.includes(compact("Drop a photo of the spot")), "the PDF prints the checker too, not the report alone");
    if (SHOTS) await report.screenshot({ path: path.join(SHOTS, "history-report.png") });
    return `${pdf.length} byte PDF; its text has ${[modelVersion, ...pages].join(", ")}`;
  });

  await check("the .ics reminder is a calendar event N weeks ahead", async () => {
    await page.getByLabel("Check again in").selectOption("4");
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download reminder (.ics)" }).click()]);
    const ics = readFileSync(await download.path(), "utf8");
    const due = new Date();
    due.setDate(due.getDate() + 28);
    const ymd = `${due.getFullYear()}${String(due.getMonth() + 1).padStart(2, "0")}${String(due.getDate()).padStart(2, "0")}`;
    assert(/^BEGIN:VCALENDAR\r\n/.test(ics) && ics.includes("BEGIN:VEVENT") && ics.includes(`DTSTART;VALUE=DATE:${ymd}`), `not the event wanted:\n${ics}`);
    assert(ics.includes(SPOT), "the reminder does not name the spot");
    return `${download.suggestedFilename()}: DTSTART ${ymd}`;
  });

  const stored = await readDatabase(page);
  let plainExport;
  await check("(4) export, delete-all, import restores identical records; a wrong passphrase imports nothing", async () => {
    plainExport = await exportFile(page);
    await deleteEverything(page);
    assert((await readDatabase(page)) === null, "delete-all left the database");
    const got = await importFile(page, plainExport);
    assert(got.ok.includes("Imported 1 spot and 2 checks"), `import said: ${got.ok || got.error}`);
    const restored = await readDatabase(page);
    assert(restored === stored, "the restored records differ from the saved ones");
    assert(JSON.parse(restored).checks.every((c) => c.photo.bytes.length > 1000), "photo bytes missing");

    const secret = await exportFile(page, "correct horse battery staple");
    assert(!secret.includes(Buffer.from(SPOT)), "the encrypted export holds the spot name in clear");
    await deleteEverything(page);
    const wrong = await importFile(page, secret, "wrong passphrase");
    assert(/wrong passphrase/i.test(wrong.error), `wrong passphrase said: ${wrong.error || wrong.ok}`);
    const after = await readDatabase(page);
    assert(after === null || (JSON.parse(after).spots.length === 0 && JSON.parse(after).checks.length === 0), "a wrong passphrase imported something");
    const right = await importFile(page, secret, "correct horse battery staple");
    assert(right.ok.includes("Imported"), `right passphrase said: ${right.error}`);
    assert((await readDatabase(page)) === stored, "the decrypted import differs from the saved records");
    return `plain ${plainExport.length} bytes, encrypted ${secret.length} bytes; wrong passphrase: "${wrong.error}"`;
  });

  await check("(6) a tampered or truncated export is refused and the history is unchanged", async () => {
    const notes = [];
    const variants = [
      ["truncated to half", plainExport.subarray(0, Math.floor(plainExport.length / 2))],
      ["truncated by one byte", plainExport.subarray(0, plainExport.length - 1)],
      ["a JPEG, not an export", readFileSync(first)],
    ];
    for (const at of [Math.floor(plainExport.length / 2), 17, plainExport.length - 1]) {
      const bad = Buffer.from(plainExport);
      bad[at] ^= 0x01;
      variants.push([`byte ${at} flipped`, bad]);
    }
    for (const [what, bytes] of variants) {
      const got = await importFile(page, bytes);
      assert(got.error && !got.ok, `${what}: accepted (${got.ok})`);
      assert((await readDatabase(page)) === stored, `${what}: the stored history changed`);
      notes.push(`${what}: "${got.error.replace("Nothing was imported. ", "")}"`);
    }
    return notes.join("; ");
  });

  await check("a check made by another model version is marked in the timeline and the compare view", async () => {
    await page.evaluate(async ([spot, version]) => {
      const history = await import("./history.js");
      const [s] = (await history.spots()).filter((x) => x.name === spot);
      const [last] = (await history.checks(s.id)).slice(-1);
      const photo = new Blob([last.photo.bytes], { type: last.photo.type });
      await history.saveCheck({ spotId: s.id, date: "2020-01-02T03:04:05Z" }, { ...last.result, model_version: version }, photo);
    }, [SPOT, "skinscan-2020.01.01-older"]);
    await reload(page, 1);
    await openSpot(page, SPOT);
    const rows = await timelineRows(page);
    assert(rows.length === 3 && rows[0].date.startsWith("2020-01-02"), "the older check is not first");
    assert(/older model/.test(rows[0].text) && !/older model/.test(rows[1].text), "the older model is not marked (or marked wrongly)");
    await page.getByRole("button", { name: "Compare two checks" }).click();
    await page.getByLabel("Earlier check").selectOption({ index: 0 });
    const note = page.locator('[data-testid="model-changed"]');
    assert(/not a change in the spot/.test(await note.textContent()), "the compare view does not warn about the model change");
    const id = await page.evaluate(() => document.querySelector('[data-testid="timeline"] tbody tr').dataset.checkId);
    await page.evaluate((checkId) => import("./history.js").then((h) => h.deleteCheck(checkId)), id);
    assert((await readDatabase(page)) === stored, "deleting the extra check did not restore the previous records");
    return (await note.textContent()).trim();
  });

  await check("keyboard: every new control is reached with Tab and works with Enter", async () => {
    await reload(page, 1);
    await classify(page, first);
    await page.evaluate(() => document.activeElement?.blur());
    const steps = [];
    for (const stop of ['[data-testid="save-check"]', ".ss-spot-open", '[data-testid="export"]', '[data-testid="import"]', '[data-testid="delete-all"]']) {
      steps.push(await tabTo(page, stop));
    }
    steps.push(await tabTo(page, ".ss-spot-open", "Shift+Tab"));
    await page.keyboard.press("Enter");
    await page.locator('[data-testid="timeline"]').waitFor({ timeout: STEP_TIMEOUT });
    steps.push(await tabTo(page, ".ss-open-compare"));
    await page.keyboard.press("Enter");
    await page.locator('[data-testid="compare"]').waitFor({ timeout: STEP_TIMEOUT });
    steps.push(await tabTo(page, ".ss-compare-a"), await tabTo(page, ".ss-compare .ss-close"));
    await page.keyboard.press("Enter");
    assert((await page.locator('[data-testid="compare"]').count()) === 0, "Enter on Close did not close the compare view");
    steps.push(await tabTo(page, ".ss-open-report"));
    await page.keyboard.press("Enter");
    await page.locator('[data-testid="report"]').waitFor({ timeout: STEP_TIMEOUT });
    steps.push(await tabTo(page, ".ss-report .ss-print"), await tabTo(page, ".ss-report .ss-close"));
    await page.keyboard.press("Enter");
    assert((await page.locator('[data-testid="report"]').count()) === 0, "Enter on Close did not close the report");
    return `Tab presses between stops: ${steps.join(", ")}`;
  });

  await check("axe-core: no serious or critical violations on the main page, timeline, compare view and report", async () => {
    const found = [];
    await reload(page, 1);
    found.push(...(await axe(page)).map((v) => `main page: ${v}`));
    await classify(page, first);
    await openSpot(page, SPOT);
    found.push(...(await axe(page)).map((v) => `result, save and timeline: ${v}`));
    await page.getByRole("button", { name: "Compare two checks" }).click();
    await page.locator('[data-testid="compare"] canvas[data-drawn]').nth(3).waitFor({ state: "attached", timeout: STEP_TIMEOUT });
    found.push(...(await axe(page)).map((v) => `compare: ${v}`));
    await page.getByRole("button", { name: "Printable report" }).click();
    await page.locator('[data-testid="report"] canvas[data-drawn]').nth(3).waitFor({ state: "attached", timeout: STEP_TIMEOUT });
    found.push(...(await axe(page)).map((v) => `report: ${v}`));
    assert(found.length === 0, found.join("\n      "));
    return "4 views";
  });

  await check("a full device: saving is refused with a clear message and nothing is half-written", async () => {
    // Chromium's DevTools quota override does not reach IndexedDB commits, so the browser's own
    // error is raised where a full disk raises it: by the write of the check, after its spot's write
    // in the same transaction. The spot must not be left behind.
    await page.evaluate(() => {
      const add = IDBObjectStore.prototype.add;
      IDBObjectStore.prototype.add = function full() {
        IDBObjectStore.prototype.add = add;
        throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
      };
    });
    await page.getByLabel("Name of the spot").fill("a second spot");
    await page.locator('[data-testid="save-check"]').click();
    await page.waitForFunction(() => document.querySelector(".ss-save-status").textContent, null, { timeout: STEP_TIMEOUT });
    const text = await page.locator(".ss-save-status").textContent();
    assert(/^Not saved: .*no storage space/.test(text), `the user was told: ${text}`);
    assert((await readDatabase(page)) === stored, "a failed save changed the stored history");
    assert(await page.locator('[data-testid="save-check"]').isEnabled(), "the save button stays disabled after the failure");
    return text.trim();
  });

  await check("(5) delete-all leaves no SkinScan data in IndexedDB", async () => {
    await deleteEverything(page);
    const names = await page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
    assert(!names.includes("skinscan-history"), `databases left: ${names.join(", ")}`);
    assert((await page.locator('[data-testid="history"]').getAttribute("data-spots")) === "0", "the list still shows spots");
    return `IndexedDB databases: [${names.join(", ")}]`;
  });

  await context.close();

  await check("(8) the widget without the opt-in attribute stores nothing; with it, it offers history", async () => {
    const ctx = await browser.newContext();
    observe(ctx);
    const p = await ctx.newPage();
    await p.goto(`${server.origin}/embed.html`);
    await p.locator('skin-scan [data-testid="app"][data-engine="ready"]').waitFor({ state: "attached", timeout: LOAD_TIMEOUT });
    const b = seen.length;
    await p.locator('skin-scan input[type="file"]').setInputFiles(first);
    await p.locator('skin-scan [data-testid="app"][data-seq="1"]:not([data-busy])').waitFor({ state: "attached", timeout: STEP_TIMEOUT });
    assert((await p.locator('skin-scan [data-testid="save-check"]').count()) === 0, "the widget offers saving without the opt-in");
    const state = await p.evaluate(async () => ({ dbs: (await indexedDB.databases()).map((d) => d.name), local: localStorage.length, session: sessionStorage.length, caches: await caches.keys(), cookie: document.cookie }));
    assert(state.dbs.length === 0 && state.local === 0 && state.session === 0 && state.caches.length === 0 && !state.cookie, `the widget stored something: ${JSON.stringify(state)}`);
    assert(!seen.slice(b).some((r) => r.url.includes("history")), "the widget loaded the history modules without the opt-in");
    await p.evaluate(() => {
      const w = document.createElement("skin-scan");
      w.setAttribute("history", "");
      document.querySelector("main").append(w);
    });
    await p.locator('skin-scan[history] [data-testid="save-check"]').waitFor({ state: "attached", timeout: LOAD_TIMEOUT });
    assert((await p.evaluate(async () => (await indexedDB.databases()).length)) === 0, "opting in alone stored something");
    await ctx.close();
    return `after a classification: ${JSON.stringify(state)}; <skin-scan history> shows the save control`;
  });

  await check("(7) no request left the page's origin in the whole session", async () => {
    const foreign = seen.filter((r) => r.foreign);
    assert(foreign.length === 0, `requests to other origins: ${foreign.map((r) => r.url).join(", ")}`);
    return `${seen.length} requests, all to ${server.origin}; none while classifying, saving, comparing, printing or exporting`;
  });

  await check("no console errors", async () => {
    assert(errors.length === 0, errors.join("\n"));
  });
} finally {
  await browser.close();
  await server.close();
}

finish("history");
