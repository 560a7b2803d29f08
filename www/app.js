// The SkinScan page: mounts the shared UI (ui.js) and, once the classifier is ready, registers the
// service worker that keeps the app and its models available offline.
import { mountHistory } from "./history-ui.js";
import { mountUI } from "./ui.js";

const { root, engine, handleFile } = mountUI(document.getElementById("app"));
// Saved checks (issue 14): stored on this device only, and only when the user asks.
mountHistory(root, { engine });

// A photo dropped anywhere on the page is for the checker (instead of the browser opening it).
document.addEventListener("dragover", (e) => {
  if (e.dataTransfer?.types?.includes("Files")) e.preventDefault();
});
document.addEventListener("drop", (e) => {
  const file = e.dataTransfer?.files?.[0];
  if (!file || e.defaultPrevented) return;
  e.preventDefault();
  handleFile(file);
});

engine.then(async () => {
  // After the first load, so the service worker's precache finds everything in the HTTP cache
  // instead of competing with the first download.
  if (!("serviceWorker" in navigator) || !window.isSecureContext) return;
  const note = document.getElementById("offline-note");
  try {
    await navigator.serviceWorker.register("sw.js", { scope: "./", type: "module" });
    await navigator.serviceWorker.ready; // resolves once the app and models are cached
    root.dataset.offline = "ready";
    if (note) note.textContent = "Ready to work offline on this device.";
  } catch (err) {
    // Offline use is a convenience; the page works without it.
    if (note) note.textContent = `Offline use is unavailable here (${err.message}).`;
  }
}, () => {});
