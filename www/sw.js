// Service worker: keeps the app, the wasm and the models on this device so the page works offline
// after one visit. It caches application files only, never photos or answers (those never leave
// the page's memory).
//
// Strategy: network first, cache as fallback, for same-origin GETs. Online you always get the
// current build (HTTP revalidation makes unchanged files a cheap 304); offline the last good copy.
//
// A module service worker (app.js registers it with type "module"), so that it reads the default
// models and the wasm build from choices.js, as the page and its worker do.
import { defaultModels, wasmFile } from "./choices.js";

const CACHE = "skinscan-app-v1";
const CORE = [
  "./", "index.html", "embed.html", "app.js", "ui.js", "ui-markup.js", "ui-render.js", "questions.js", "diagnoses.js", "choices.js", "features.js",
  "skinscan.js", "worker.js", "sha256.js", "widget.js", "history.js", "history-ui.js", "history-views.js", "style.css",
  "icons/icon.svg", "pkg/skinscan.js",
  wasmFile(), // the build this browser will load
  "models/manifest.json",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(CORE);
      // The model files are whatever the manifest names as defaults: read it rather than list them here.
      const manifest = await (await cache.match("models/manifest.json")).json();
      const { image, tabular } = defaultModels(manifest);
      await cache.addAll([image, tabular].map((m) => new URL(m.file, new URL("models/", self.registration.scope)).href));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET" || new URL(req.url).origin !== self.location.origin) return;
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      try {
        const res = await fetch(req);
        if (res.ok && res.status === 200 && res.type === "basic") {
          event.waitUntil(cache.put(req, res.clone()));
        }
        return res;
      } catch (err) {
        const hit = (await cache.match(req, { ignoreSearch: true })) ??
          (req.mode === "navigate" ? await cache.match("index.html") : undefined);
        if (hit) return hit;
        throw err;
      }
    })(),
  );
});
