// The history's user interface (issue 14): "Save this check on this device" under a result, the
// list of saved spots, and the export, import and delete controls. The views of one spot (timeline,
// compare, report, reminder) are in history-views.js; storage is history.js.
//
// app.js mounts it on the page; the <skin-scan> widget only when the host page asks (history attribute).
// It learns about results from ui.js's "skinscan:result" event and saves nothing unless asked.
import { missingFeatures } from "./features.js";
import * as store from "./history.js";
import { download, openSpot } from "./history-views.js";

let mounts = 0;

/**
 * Add the history to a mounted UI.
 * @param {HTMLElement} root the `.skinscan` element mountUI returned
 * @param {{engine: Promise<{manifest: object, modelVersion: string}>}} options
 */
export function mountHistory(root, { engine }) {
  // No IndexedDB or crypto.subtle: ui.js's notice already says saving is off (features.js).
  if (missingFeatures().some((m) => m.for === "saving")) return { section: null, save: null, refresh: () => {} };
  const n = ++mounts;
  const ctx = {
    root, id: (name) => `skinscan-history${n}-${name}`,
    info: engine.then((e) => e, () => ({ manifest: null, modelVersion: null })),
    refresh: null, say: null,
  };
  const section = historySection(ctx);
  const save = savePanel(ctx);
  root.querySelector(".ss-reset")?.before(save);
  root.append(section);
  ctx.refresh();
  return { section, save, refresh: ctx.refresh };
}

// ------------------------------------------------------------------------------------------------
// Save panel: shown with each result, saves only when its button is pressed.
function savePanel(ctx) {
  const { id } = ctx;
  const form = document.createElement("form");
  form.className = "ss-save";
  form.setAttribute("aria-labelledby", id("save-h"));
  form.innerHTML = `
    <h3 class="ss-h" id="${id("save-h")}">Save this check on this device</h3>
    <p class="ss-hint">Keeps a small copy of the photo, this result and your answers in this browser's
      storage on this device, and nowhere else, until you delete them. Nothing is saved unless you press Save.</p>
    <div class="ss-save-fields">
      <div class="ss-field">
        <label for="${id("spot")}">Name of the spot</label>
        <input id="${id("spot")}" name="spot" required maxlength="80" autocomplete="off"
               placeholder="e.g. mole on left shoulder" list="${id("spot-names")}">
        <datalist id="${id("spot-names")}"></datalist>
      </div>
      <div class="ss-field">
        <label for="${id("site")}">Where on the body</label>
        <select id="${id("site")}" name="site"><option value="">Not given</option></select>
      </div>
    </div>
    <button type="submit" data-testid="save-check">Save this check on this device</button>
    <p class="ss-save-status" role="status" aria-live="polite"></p>`;
  const spot = form.elements.spot;
  const site = form.elements.site;
  const status = form.querySelector(".ss-save-status");
  let current = null;
  ctx.info.then(({ manifest }) => {
    const values = manifest?.tabular?.features?.find((f) => f.name === "site")?.values ?? [];
    for (const v of values) site.append(new Option(v.charAt(0).toUpperCase() + v.slice(1), v));
  });
  ctx.root.addEventListener("skinscan:result", (e) => {
    current = e.detail;
    status.textContent = "";
    form.querySelector("button").disabled = false;
    if (current.answers?.site) site.value = current.answers.site;
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!current) return;
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await store.saveCheck({ spot: spot.value, site: site.value, answers: current.answers }, current.result, current.file);
      status.textContent = `Saved in “${spot.value.trim()}” on this device.`;
      ctx.refresh();
    } catch (err) {
      button.disabled = false;
      status.textContent = `Not saved: ${err.message}`;
    }
  });
  ctx.spotNames = form.querySelector("datalist");
  return form;
}

// ------------------------------------------------------------------------------------------------
// The list of spots and the tools that act on everything.
function historySection(ctx) {
  const { id } = ctx;
  const section = document.createElement("section");
  section.className = "ss-history";
  section.dataset.testid = "history";
  section.setAttribute("aria-labelledby", id("h"));
  section.innerHTML = `
    <h2 class="ss-history-title" id="${id("h")}">Saved spots on this device</h2>
    <p class="ss-hint">Saved checks stay in this browser on this device (its IndexedDB storage for this site):
      never uploaded, no account, no cookie. “Delete everything” removes them all.</p>
    <p class="ss-history-empty">No saved checks yet.</p>
    <ul class="ss-spots" aria-label="Saved spots"></ul>
    <div class="ss-history-tools" role="group" aria-label="Export, import and delete">
      <div class="ss-field">
        <label for="${id("pass")}">Passphrase for export or import (optional)</label>
        <input id="${id("pass")}" type="password" autocomplete="new-password">
      </div>
      <div class="ss-buttons">
        <button type="button" class="ss-secondary" data-testid="export">Export everything</button>
        <button type="button" class="ss-secondary" data-testid="import">Import a file</button>
        <button type="button" class="ss-danger" data-testid="delete-all">Delete everything</button>
      </div>
    </div>
    <p class="ss-history-status" role="status" aria-live="polite"></p>
    <p class="ss-history-error" role="alert" hidden></p>
    <div class="ss-spot-host"></div>`;
  const status = section.querySelector(".ss-history-status");
  const error = section.querySelector(".ss-history-error");
  ctx.say = (text, failed = false) => {
    status.textContent = failed ? "" : text;
    error.textContent = failed ? text : "";
    error.hidden = !failed;
  };
  ctx.refresh = () => listSpots(ctx, section);
  wireTools(ctx, section);
  return section;
}

async function listSpots(ctx, section) {
  let list;
  try {
    list = await store.spots();
  } catch (err) {
    return ctx.say(err.message, true);
  }
  const ul = section.querySelector(".ss-spots");
  const items = await Promise.all(list.map(async (s) => {
    const checks = await store.checks(s.id);
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "ss-spot-open";
    button.dataset.spotId = s.id;
    const last = checks.at(-1);
    button.textContent = `${s.name}${s.site ? ` (${s.site})` : ""}: ${checks.length} check${checks.length === 1 ? "" : "s"}` +
      (last ? `, last ${last.date.slice(0, 10)}` : "");
    button.addEventListener("click", () => openSpot(ctx, section.querySelector(".ss-spot-host"), s.id));
    li.append(button);
    return li;
  }));
  ul.replaceChildren(...items);
  section.querySelector(".ss-history-empty").hidden = items.length > 0;
  ctx.spotNames?.replaceChildren(...list.map((s) => new Option(s.name)));
  section.dataset.spots = String(list.length);
}

function wireTools(ctx, section) {
  const pass = () => section.querySelector('input[type="password"]').value;
  section.querySelector('[data-testid="export"]').addEventListener("click", async () => {
    try {
      const blob = await store.exportAll({ passphrase: pass() });
      const day = new Date().toISOString().slice(0, 10);
      download(ctx.root, `skinscan-history-${day}.skinscan`, URL.createObjectURL(blob));
      ctx.say(`Exported ${pass() ? "and encrypted " : ""}everything to one file (${Math.ceil(blob.size / 1024)} kB).`);
    } catch (err) {
      ctx.say(`Export failed: ${err.message}`, true);
    }
  });
  section.querySelector('[data-testid="import"]').addEventListener("click", () => {
    // Made on demand and never attached: the page keeps exactly one file input (the photo's).
    const input = document.createElement("input");
    input.type = "file";
    input.accept = ".skinscan,application/octet-stream";
    input.addEventListener("change", async () => {
      const file = input.files?.[0];
      if (!file) return;
      try {
        const got = await store.importAll(file, { passphrase: pass() });
        ctx.say(`Imported ${got.spots} spot${got.spots === 1 ? "" : "s"} and ${got.checks} check${got.checks === 1 ? "" : "s"}.`);
      } catch (err) {
        ctx.say(`Nothing was imported. ${err.message}`, true);
      }
      ctx.refresh();
    });
    input.click();
  });
  section.querySelector('[data-testid="delete-all"]').addEventListener("click", async () => {
    if (!confirm("Delete every saved spot, check and photo from this device? This cannot be undone.")) return;
    try {
      await store.deleteAll();
      section.querySelector(".ss-spot-host").replaceChildren();
      ctx.say("Deleted everything SkinScan had saved on this device.");
    } catch (err) {
      ctx.say(`Could not delete: ${err.message}`, true);
    }
    ctx.refresh();
  });
}
