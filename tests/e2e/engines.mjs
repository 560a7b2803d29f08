// The page's checks in the other engines a phone has (issue 21): Firefox (Debian's firefox-esr,
// driven by npm puppeteer-core over WebDriver BiDi) and WebKit (WebKitGTK's MiniBrowser, driven by
// Debian's WebKitWebDriver through npm selenium-webdriver, under Xvfb). Chromium keeps the whole
// suite (run.mjs, history.mjs, parallel.mjs, features.mjs); here each engine, on the same wasm
// builds and the same server:
//   1. loads the page to "ready" (time measured and printed, with the first result's);
//   2. classifies every sample photo with the CLI's tier and probability (within 1e-4);
//   3. a truncated JPEG and a text file each show an error, and a photo still works afterwards;
//   4. nothing the page fetched came from another origin (its resource timing), and the page
//      raised no Content-Security-Policy violation;
//   5. a check saved to the history survives a reload;
//   6. an encrypted export holds no spot name in clear; after delete-all, the wrong passphrase
//      imports nothing and the right one brings the spot back;
//   7. with the server stopped, a reload is served by the service worker and still classifies.
// The two drivers differ, so the checks use one small interface: script in the page, a file
// handed to an input, polling on the page's hooks (data-engine, data-seq, data-busy).
//
//   node tests/e2e/engines.mjs [firefox] [webkit]        (after ./build.sh; WebKit needs an X
//   server: build.sh runs it under xvfb-run)   SKINSCAN_ENGINES=firefox picks one.
import { mkdtempSync, readdirSync, writeFileSync, readFileSync } from "node:fs";
import { spawn } from "node:child_process";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { check, assert, finish, cli } from "./harness.mjs";
import { startServer } from "../../tools/server.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const WWW = path.join(ROOT, "www");
const SAMPLES = path.resolve(process.env.SKINSCAN_SAMPLES ?? path.join(ROOT, "../shared/data/samples"));
const TOLERANCE = 1e-4; // run.mjs's
const LOAD_TIMEOUT = Number(process.env.SKINSCAN_LOAD_TIMEOUT ?? 180_000);
const STEP_TIMEOUT = 120_000;
const FIREFOX = process.env.FIREFOX ?? "/usr/bin/firefox-esr";
const WEBKIT_DRIVER = process.env.WEBKIT_DRIVER ?? "/usr/bin/WebKitWebDriver";
const MINIBROWSER = process.env.MINIBROWSER ?? "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";

const asked = process.argv.slice(2).length ? process.argv.slice(2) : (process.env.SKINSCAN_ENGINES ?? "firefox,webkit").split(",");
const engines = asked.map((e) => e.trim()).filter((e) => e === "firefox" || e === "webkit");
const samples = readdirSync(SAMPLES).filter((f) => /\.jpe?g$/i.test(f)).sort().map((f) => path.join(SAMPLES, f));
assert(samples.length > 0, `no sample photos in ${SAMPLES}`);
const expected = new Map(samples.map((f) => [f, cli(f)]));
const tmp = mkdtempSync(path.join(os.tmpdir(), "skinscan-engines-"));
const truncated = path.join(tmp, "truncated.jpg");
writeFileSync(truncated, readFileSync(samples[0]).subarray(0, 2000));
const text = path.join(tmp, "notes.jpg");
writeFileSync(text, "this is a text file, not a photo\n");

// ------------------------------------------------------------------------------------------------
// Drivers: { name, version, go(url), js(fn, ...args) (awaits a promise), file(css, path), quit() }
async function firefox() {
  const { default: puppeteer } = await import("puppeteer-core");
  const browser = await puppeteer.launch({ browser: "firefox", executablePath: FIREFOX, headless: true, protocol: "webDriverBiDi" });
  const page = await browser.newPage();
  page.on("dialog", (d) => d.accept());
  return {
    name: "Firefox",
    version: await browser.version(),
    go: (url) => page.goto(url),
    reload: () => page.reload(),
    js: (fn, ...args) => page.evaluate(`(${fn})(...${JSON.stringify(args)})`),
    file: async (css, file) => (await page.$(css)).uploadFile(file),
    quit: () => browser.close(),
  };
}

async function webkit() {
  const { Builder, By } = await import("selenium-webdriver");
  const port = 20000 + Math.floor(Math.random() * 20000);
  const server = spawn(WEBKIT_DRIVER, [`--port=${port}`], { stdio: "ignore" });
  await new Promise((r) => setTimeout(r, 1000));
  const caps = { browserName: "MiniBrowser", "webkitgtk:browserOptions": { binary: MINIBROWSER, args: ["--automation"] } };
  let d;
  try {
    d = await new Builder().usingServer(`http://127.0.0.1:${port}`).withCapabilities(caps).build();
  } catch (err) {
    server.kill();
    throw err;
  }
  const caps2 = await d.getCapabilities();
  return {
    name: "WebKit",
    version: `${caps2.get("browserName")} ${caps2.get("browserVersion")}`,
    go: (url) => d.get(url),
    reload: () => d.navigate().refresh(),
    js: (fn, ...args) => d.executeScript(`return (${fn}).apply(null, arguments)`, ...args),
    file: async (css, file) => (await d.findElement(By.css(css))).sendKeys(file),
    quit: async () => {
      try {
        await d.quit();
      } finally {
        server.kill();
      }
    },
  };
}

/** Polls `fn` in the page until it returns something truthy; returns that. */
async function until(b, fn, what, timeout = STEP_TIMEOUT, ...args) {
  const t0 = Date.now();
  for (;;) {
    let got;
    try {
      got = await b.js(fn, ...args);
    } catch {
      got = undefined; // a navigation in flight
    }
    if (got) return got;
    if (Date.now() - t0 > timeout) throw new Error(`timed out after ${timeout / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const ready = (b) => until(b, () => !!document.querySelector('[data-testid="app"][data-engine="ready"]'), '"ready"', LOAD_TIMEOUT);

/** Hands `file` to the photo input and returns the page's answer: { error } or { tier, probability, verdict }. */
async function classify(b, file) {
  const before = Number(await b.js(() => document.querySelector('[data-testid="app"]').dataset.seq ?? 0));
  await b.file('input[type="file"]', file);
  const got = await until(
    b,
    (n) => {
      const app = document.querySelector('[data-testid="app"]');
      if (app.hasAttribute("data-busy")) return null;
      const err = document.querySelector('[data-testid="error"]');
      if (err && !err.hidden && err.offsetParent !== null && err.textContent.trim()) return { error: err.textContent.trim() };
      if (Number(app.dataset.seq ?? 0) !== n + 1) return null;
      const reveal = document.querySelector('[data-testid="reveal"]');
      if (reveal && reveal.offsetParent !== null) reveal.click();
      const tier = document.querySelector('[data-testid="risk-tier"]');
      // A turned-down photo, shown anyway, has no visible tier (issue 22): its unreliable note is.
      const unreliable = document.querySelector('[data-testid="unreliable"]');
      const shown = tier?.offsetParent !== null || (unreliable && unreliable.offsetParent !== null);
      if (!tier || !shown) return null;
      return {
        tier: tier.textContent.trim(),
        probability: Number(tier.dataset.probability),
        verdict: document.querySelector('[data-testid="quality"]')?.dataset.verdict ?? "unchecked",
      };
    },
    `the result of ${path.basename(file)}`,
    STEP_TIMEOUT,
    before,
  );
  return got;
}

function agree(got, file, what) {
  const want = expected.get(file);
  assert(!got.error, `${what}: ${got.error}`);
  assert(Math.abs(got.probability - want.malignant_probability) <= TOLERANCE, `${what}: page ${got.probability}, CLI ${want.malignant_probability}`);
  assert(got.tier === want.risk_tier, `${what}: page tier ${got.tier}, CLI ${want.risk_tier}`);
  const verdict = want.quality?.verdict ?? "unchecked";
  assert(got.verdict === verdict, `${what}: page photo check ${got.verdict}, CLI ${verdict}`);
}

/** Watches in the page: CSP violations, and the export's Blob and the import's file input (which
 * the page makes and clicks itself, so a driver could not reach its file chooser). */
function hooks() {
  if (window.__ss) return;
  window.__ss = { violations: [], blob: null, input: null };
  document.addEventListener("securitypolicyviolation", (e) => window.__ss.violations.push(`${e.violatedDirective} ${e.blockedURI}`));
  const create = URL.createObjectURL.bind(URL);
  URL.createObjectURL = (o) => {
    if (o instanceof Blob) window.__ss.blob = o;
    return create(o);
  };
  const click = HTMLInputElement.prototype.click;
  HTMLInputElement.prototype.click = function () {
    if (this.type === "file" && !this.isConnected) window.__ss.input = this;
    else click.call(this);
  };
  window.confirm = () => true;
}

async function history(b, passphrase) {
  return b.js(async (pass) => {
    document.querySelector('.ss-history-tools input[type="password"]').value = pass;
    return true;
  }, passphrase);
}

// ------------------------------------------------------------------------------------------------
for (const engine of engines) {
  console.log(`\n== ${engine}`);
  const server = await startServer({ root: WWW });
  let b;
  try {
    b = await (engine === "firefox" ? firefox() : webkit());
  } catch (err) {
    await server.close();
    await check(`${engine}: the browser starts`, () => {
      throw err;
    });
    continue;
  }
  console.log(`   ${b.version}`);
  try {
    let readyMs = 0;
    await check(`${b.name} (1) loads the page to "ready"`, async () => {
      const t0 = Date.now();
      await b.go(`${server.origin}/`);
      await ready(b);
      readyMs = Date.now() - t0;
      await b.js(hooks);
      const t1 = Date.now();
      agree(await classify(b, samples[0]), samples[0], path.basename(samples[0]));
      const first = Date.now() - t1;
      // The offline copy is made once, after the first load (checked in (7)).
      await until(b, () => !!document.querySelector('[data-testid="app"][data-offline="ready"]'), "the offline copy", LOAD_TIMEOUT);
      return `ready ${readyMs} ms, first result ${first} ms after; offline copy after ${Date.now() - t0} ms`;
    });
    await check(`${b.name} (2) every sample photo gets the CLI's tier and probability`, async () => {
      for (const f of samples) agree(await classify(b, f), f, path.basename(f));
      return `${samples.length} photos`;
    });
    await check(`${b.name} (3) bad files show an error and the page stays usable`, async () => {
      const said = [];
      for (const f of [truncated, text]) {
        const got = await classify(b, f);
        assert(got.error, `${path.basename(f)} gave a result (${got.tier}) instead of an error`);
        said.push(`"${got.error.slice(0, 60)}"`);
      }
      agree(await classify(b, samples[1]), samples[1], "a photo after the errors");
      return said.join(", ");
    });
    await check(`${b.name} (4) nothing from another origin, no CSP violation`, async () => {
      const got = await b.js(() => ({
        foreign: performance.getEntriesByType("resource").map((e) => e.name).filter((u) => !u.startsWith(location.origin) && !u.startsWith("blob:") && !u.startsWith("data:")),
        violations: window.__ss.violations,
        n: performance.getEntriesByType("resource").length,
      }));
      assert(got.foreign.length === 0, `fetched from elsewhere: ${got.foreign.join(", ")}`);
      assert(got.violations.length === 0, `CSP violations: ${got.violations.join(", ")}`);
      return `${got.n} resources, all from ${server.origin}`;
    });
    const SPOT = `engine spot ${engine}`;
    await check(`${b.name} (5) a saved check survives a reload`, async () => {
      agree(await classify(b, samples[2]), samples[2], "before saving");
      await b.js((name) => {
        const spot = [...document.querySelectorAll("label")].find((l) => l.textContent.trim() === "Name of the spot");
        document.getElementById(spot.htmlFor).value = name;
        document.querySelector('[data-testid="save-check"]').click();
        return true;
      }, SPOT);
      await until(b, () => /Saved in/.test(document.querySelector(".ss-save-status")?.textContent ?? ""), '"Saved in"');
      await b.reload();
      await ready(b);
      await until(b, () => document.querySelector('[data-testid="history"]')?.dataset.spots === "1", "one saved spot after the reload");
      const listed = await b.js(() => document.querySelector(".ss-spots").textContent);
      assert(listed.includes(SPOT), `the list after the reload: ${listed.trim().slice(0, 120)}`);
    });
    await check(`${b.name} (6) an encrypted export, delete-all, a wrong and the right passphrase`, async () => {
      await b.js(hooks);
      await history(b, "correct horse");
      await b.js(() => {
        window.__ss.blob = null;
        document.querySelector('[data-testid="export"]').click();
        return true;
      });
      const bytes = await until(b, async () => {
        const blob = window.__ss.blob;
        if (!blob) return null;
        const u = new Uint8Array(await blob.arrayBuffer());
        let s = "";
        for (const x of u) s += String.fromCharCode(x);
        return btoa(s);
      }, "the export");
      const file = Buffer.from(bytes, "base64");
      assert(file.length > 1000, `the export is ${file.length} bytes`);
      assert(!file.includes(Buffer.from(SPOT)), "the encrypted export holds the spot name in clear");
      await b.js(() => {
        document.querySelector('[data-testid="delete-all"]').click();
        return true;
      });
      await until(b, () => document.querySelector('[data-testid="history"]')?.dataset.spots === "0", "no spot after delete-all");
      const load = async (pass) => {
        await history(b, pass);
        await b.js((b64) => {
          window.__ss.input = null;
          document.querySelector(".ss-history-status").textContent = "";
          document.querySelector(".ss-history-error").textContent = "";
          document.querySelector('[data-testid="import"]').click();
          const input = window.__ss.input;
          const raw = atob(b64);
          const u = new Uint8Array(raw.length);
          for (let i = 0; i < raw.length; i++) u[i] = raw.charCodeAt(i);
          const dt = new DataTransfer();
          dt.items.add(new File([u], "history.skinscan", { type: "application/octet-stream" }));
          input.files = dt.files;
          input.dispatchEvent(new Event("change"));
          return true;
        }, bytes);
        return until(b, () => {
          const ok = document.querySelector(".ss-history-status").textContent.trim();
          const err = document.querySelector(".ss-history-error").textContent.trim();
          return ok || err ? { ok, err } : null;
        }, "the import's answer");
      };
      const wrong = await load("wrong passphrase");
      assert(/wrong passphrase/i.test(wrong.err), `the wrong passphrase said: ${wrong.err || wrong.ok}`);
      assert((await b.js(() => document.querySelector('[data-testid="history"]').dataset.spots)) === "0", "a wrong passphrase imported something");
      const right = await load("correct horse");
      assert(/Imported 1 spot/.test(right.ok), `the right passphrase said: ${right.err || right.ok}`);
      await until(b, () => document.querySelector('[data-testid="history"]')?.dataset.spots === "1", "the spot back after the import");
      return `export ${file.length} bytes; wrong passphrase: "${wrong.err.slice(0, 60)}"`;
    });
    await check(`${b.name} (7) offline: the service worker serves the page and it still classifies`, async () => {
      try {
        await until(b, () => !!document.querySelector('[data-testid="app"][data-offline="ready"]'), "the offline copy", LOAD_TIMEOUT);
      } catch (err) {
        const note = await b.js(() => document.getElementById("offline-note")?.textContent ?? "");
        throw new Error(`${err.message}; the page says: "${note}"`);
      }
      await server.close();
      await b.reload();
      await ready(b);
      agree(await classify(b, samples[3]), samples[3], "offline");
      const controlled = await b.js(() => !!navigator.serviceWorker.controller);
      assert(controlled, "the reloaded page is not controlled by the service worker");
    });
  } finally {
    await b.quit().catch(() => {});
    await server.close().catch(() => {});
  }
}
finish("engine");
