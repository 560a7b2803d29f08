// The feature check (issue 21, www/features.js), in headless Chromium against server.mjs: each
// feature the page needs is removed before the page's scripts run (page.addInitScript), and the
// page must say in words what is missing and which browsers work. Without a classifier feature
// (wasm SIMD, module workers) nothing loads and the photo buttons are off; without a saving
// feature (IndexedDB, crypto.subtle) the classifier still becomes ready and saving is left out.
// A control run with nothing removed shows no notice. Run by `./build.sh test`; by hand (after
// ./build.sh): `node tests/e2e/features.mjs`.
import { chromium } from "playwright-core";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "../../tools/server.mjs";
import { assert, check, finish } from "./harness.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const server = await startServer({ root: path.join(ROOT, "www") });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic"],
});
console.log(`feature-check e2e: ${browser.version()} · ${server.origin}`);

// Each removal runs in the page before any of its scripts, as a browser without the feature would be.
const REMOVE = {
  // Any module with the SIMD prefix (0xfd) fails validation: both the page's probe and relaxedSimd().
  "wasm-simd": () => {
    const validate = WebAssembly.validate;
    WebAssembly.validate = (bytes) => (new Uint8Array(bytes.buffer ?? bytes).includes(0xfd) ? false : validate(bytes));
  },
  // A Worker that knows no `type` option, as browsers without module workers are.
  "module-worker": () => {
    const Real = Worker;
    window.Worker = function Worker(url) {
      return new Real(url);
    };
  },
  indexeddb: () => Object.defineProperty(window, "indexedDB", { get: () => undefined, configurable: true }),
  webcrypto: () => Object.defineProperty(Crypto.prototype, "subtle", { get: () => undefined, configurable: true }),
};
const BLOCKS = { "wasm-simd": true, "module-worker": true, indexeddb: false, webcrypto: false };
const WORDS = { "wasm-simd": /WebAssembly SIMD/, "module-worker": /module workers/, indexeddb: /IndexedDB/, webcrypto: /crypto\.subtle/ };

async function open(remove) {
  const context = await browser.newContext();
  const foreign = [];
  context.on("request", (r) => !r.url().startsWith(`${server.origin}/`) && foreign.push(r.url()));
  const page = await context.newPage();
  if (remove) await page.addInitScript(REMOVE[remove]);
  await page.goto(`${server.origin}/`);
  const app = page.getByTestId("app");
  // Either the classifier becomes ready, or the load is refused.
  await page.waitForFunction(() => ["ready", "unsupported", "failed"].includes(document.querySelector("[data-testid=app]")?.dataset.engine), null, { timeout: 60_000 });
  const state = {
    engine: await app.getAttribute("data-engine"),
    notice: (await page.getByTestId("unsupported").isVisible()) ? await page.getByTestId("unsupported").innerText() : "",
    error: (await page.getByTestId("error").isVisible()) ? await page.getByTestId("error").innerText() : "",
    chooseDisabled: await page.locator(".ss-choose").isDisabled(),
    saveSection: await page.locator(".ss-history").count(),
  };
  await context.close();
  assert(!foreign.length, `requests left the origin: ${foreign.join(", ")}`);
  return state;
}

await check("nothing removed: no notice, the classifier is ready", async () => {
  const s = await open(null);
  assert(s.engine === "ready", `engine ${s.engine}`);
  assert(!s.notice, `a notice shows: ${s.notice}`);
  assert(s.saveSection > 0, "the saved-checks section is missing");
});

for (const id of Object.keys(REMOVE)) {
  await check(`without ${id}: the page says what is missing and which browsers work`, async () => {
    const s = await open(id);
    assert(WORDS[id].test(s.notice), `notice does not name the feature: "${s.notice}"`);
    assert(/Chrome, Edge, Firefox or Safari/.test(s.notice), `notice names no working browsers: "${s.notice}"`);
    if (BLOCKS[id]) {
      assert(s.engine === "unsupported", `engine ${s.engine}, want unsupported`);
      assert(/cannot run SkinScan/.test(s.notice), `notice: "${s.notice}"`);
      assert(s.chooseDisabled, "the photo button is still enabled");
      assert(!s.error, `a later failure shows too: ${s.error}`);
    } else {
      assert(s.engine === "ready", `engine ${s.engine}: checking a photo must still work`);
      assert(/cannot be saved/.test(s.notice) && /still works/.test(s.notice), `notice: "${s.notice}"`);
      assert(s.saveSection === 0, "saving is offered although it cannot work");
    }
    return s.notice.slice(0, 90) + "…";
  });
}

await browser.close();
await server.close();
finish("feature-check");
