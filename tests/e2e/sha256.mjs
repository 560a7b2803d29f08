// www/sha256.js (the worker's streaming SHA-256, issue 15) against node:crypto: the empty input, the
// padding edges (55, 56, 63, 64, 65 bytes), and random data fed in pieces cut at random places; then
// its speed on a model-sized buffer. Run by `./build.sh test`; by hand: node tests/e2e/sha256.mjs
import { createHash, randomBytes } from "node:crypto";
import { Sha256 } from "../../www/sha256.js";

const want = (b) => createHash("sha256").update(b).digest("hex");
let cases = 0;
function expectSame(bytes, cuts) {
  const h = new Sha256();
  let at = 0;
  for (const c of [...cuts, bytes.length]) {
    h.update(bytes.subarray(at, c));
    at = c;
  }
  const got = h.hex();
  if (got !== want(bytes)) throw new Error(`${bytes.length} bytes cut at ${cuts.join(",")}: ${got} != ${want(bytes)}`);
  cases++;
}
for (const n of [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000]) expectSame(randomBytes(n), []);
for (let i = 0; i < 200; i++) {
  const b = randomBytes(Math.floor(Math.random() * 5000));
  const cuts = Array.from({ length: Math.floor(Math.random() * 8) }, () => Math.floor(Math.random() * (b.length + 1))).sort((x, y) => x - y);
  expectSame(b, cuts);
}
const big = randomBytes(16 << 20);
const t0 = performance.now();
const h = new Sha256();
for (let o = 0; o < big.length; o += 65536) h.update(big.subarray(o, o + 65536));
const ok = h.hex() === want(big);
const ms = performance.now() - t0;
if (!ok) throw new Error("16 MiB in 64 KiB pieces: wrong digest");
console.log(`ok    www/sha256.js matches node:crypto on ${cases + 1} inputs (16 MiB in ${ms.toFixed(0)} ms, ${(16 / (ms / 1000)).toFixed(0)} MiB/s)`);
