// bench/ready.mjs's two times in WebKit (issue 21): WebKitGTK's MiniBrowser driven by Debian's
// WebKitWebDriver through npm selenium-webdriver, a fresh session (empty cache) per run: the time
// to data-engine="ready", then to the first result for one sample photo. MiniBrowser needs an X
// server; run it under Xvfb:
//
//   xvfb-run -a node bench/ready-webkit.mjs [--runs N] [--root DIR]    (after ./build.sh)
//
// Not a test: the engine checks themselves are not written yet (issue 21).
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Builder, By, until } from "selenium-webdriver";
import { startServer } from "../tools/server.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const RUNS = Number(arg("--runs", 5));
const WWW = path.resolve(arg("--root", path.join(ROOT, "www")));
const DRIVER = process.env.WEBKIT_DRIVER ?? "/usr/bin/WebKitWebDriver";
const MINIBROWSER = process.env.MINIBROWSER ?? "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser";
const SAMPLES = path.resolve(process.env.SKINSCAN_SAMPLES ?? path.join(ROOT, "../shared/data/samples"));
const photo = path.join(SAMPLES, readdirSync(SAMPLES).filter((f) => /\.jpe?g$/i.test(f)).sort()[0]);

const server = await startServer({ root: WWW });
const port = 20000 + Math.floor(Math.random() * 20000);
const driver = spawn(DRIVER, [`--port=${port}`], { stdio: "ignore" });
await new Promise((r) => setTimeout(r, 1000));
const caps = { browserName: "MiniBrowser", "webkitgtk:browserOptions": { binary: MINIBROWSER, args: ["--automation"] } };
const ready = [];
const first = [];
try {
  for (let i = 0; i < RUNS; i++) {
    const d = await new Builder().usingServer(`http://127.0.0.1:${port}`).withCapabilities(caps).build();
    try {
      const t0 = Date.now();
      await d.get(`${server.origin}/`);
      await d.wait(until.elementLocated(By.css('[data-testid="app"][data-engine="ready"]')), 120_000, "not ready", 50);
      const t1 = Date.now();
      const cores = await d.executeScript("return navigator.hardwareConcurrency");
      await d.findElement(By.css('input[type="file"]')).sendKeys(photo);
      await d.wait(until.elementLocated(By.css('[data-testid="app"][data-seq]:not([data-busy])')), 120_000, "no result", 50);
      const t2 = Date.now();
      ready.push(t1 - t0);
      first.push(t2 - t1);
      console.log(`run ${i + 1}: hardwareConcurrency ${cores}, ready ${t1 - t0} ms, first result ${t2 - t1} ms after ready`);
    } finally {
      await d.quit();
    }
  }
} finally {
  driver.kill();
  await server.close();
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`WebKit median of ${RUNS} (${path.basename(photo)}): ready ${median(ready)} ms, first result ${median(first)} ms after ready`);
