// The benchmark workers' message loop: {type, id, ...} -> handlers[type](data), replied as
// {id, value} or {id, error}.
// Every worker also answers {type: "spin"}: spin() below, so the bench can tell how much a CPU
// slowdown reaches this thread.
export function serve(handlers) {
  handlers = { spin, ...handlers };
  self.onmessage = async ({ data }) => {
    try {
      const value = await handlers[data.type](data);
      self.postMessage({ id: data.id, value });
    } catch (err) {
      self.postMessage({ id: data.id, error: String(err?.stack ?? err) });
    }
  };
}

/** Milliseconds for a fixed amount of plain JS work on this thread (the same loop on every thread). */
export function spin() {
  const t0 = performance.now();
  let x = 0;
  for (let i = 0; i < 2e7; i++) x = (x + Math.sqrt(i)) % 1e9;
  if (x < 0) throw new Error("unreachable");
  return performance.now() - t0;
}
