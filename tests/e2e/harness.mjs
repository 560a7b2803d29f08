// The browser tests' tiny harness (run.mjs, history.mjs, parallel.mjs): each check runs, prints ok
// or FAIL with its time and note, and finish() exits non-zero if any failed.
const failures = [];

export async function check(name, fn) {
  const t0 = Date.now();
  try {
    const note = await fn();
    console.log(`ok    ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)${note ? ` — ${note}` : ""}`);
  } catch (err) {
    failures.push(name);
    console.log(`FAIL  ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n      ${String(err?.stack ?? err).split("\n").slice(0, 6).join("\n      ")}`);
  }
}

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}

/** Ends the run: `label` names the checks in the summary ("browser", "history"...). */
export function finish(label) {
  if (failures.length) {
    console.log(`\n${failures.length} ${label} check(s) failed: ${failures.join("; ")}`);
    process.exit(1);
  }
  console.log(`\nall ${label} checks passed`);
}
