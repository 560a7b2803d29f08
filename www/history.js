// SkinScan history (issue 14): spots and the checks saved for them, kept in IndexedDB in this
// page's origin and nowhere else. Usable without the UI:
//
//   import * as history from "./history.js";
//   const id = await history.saveCheck({ spot: "mole on left shoulder", site: "upper extremity" }, result, photo);
//   const [spot] = await history.spots();
//   const list = await history.checks(spot.id);          // oldest first
//   const file = await history.exportAll({ passphrase }); // a Blob; passphrase optional
//   await history.importAll(file, { passphrase });        // rejects with a message naming the problem
//   await history.deleteCheck(id); await history.deleteSpot(spot.id); await history.deleteAll();
//
// Nothing here runs unless called: the page saves only when the user asks. Every write is one
// IndexedDB transaction, so a failure (a bad import, a full disk) leaves the stored data unchanged.

const DB_NAME = "skinscan-history";
const DB_VERSION = 1;
/** Long side of the stored copy of the photo, in pixels (issue 14: "e.g. 512 px long side, JPEG"). */
export const PHOTO_LONG_SIDE = 512;
const PHOTO_QUALITY = 0.9;

/** Export files start with these 16 bytes; FORMAT is the layout version after them. */
const MAGIC = "SKINSCAN-HISTORY";
const FORMAT = 1;
const HEADER_BYTES = 16 + 1 + 1 + 8; // magic, format, flags, body length (u64)
const DIGEST_BYTES = 32; // SHA-256 of everything before it, at the end of the file
const FLAG_ENCRYPTED = 1;
/** PBKDF2-SHA-256 iterations for new exports: OWASP's 2023 figure for PBKDF2-HMAC-SHA256. */
export const PBKDF2_ITERATIONS = 600_000;
const MIN_ITERATIONS = 100_000; // refuse weaker files rather than derive a key cheaply
const MAX_ITERATIONS = 10_000_000; // and absurd ones that would hang the page

/** Raised when the device has no room left: nothing was written. */
export class QuotaError extends Error {
  constructor() {
    super("This device has no storage space left for SkinScan, so nothing was saved. Free some space, or export your history and delete old checks, then try again.");
    this.name = "QuotaError";
  }
}

// ------------------------------------------------------------------------------------------------
// IndexedDB plumbing
let opening = null;

function open() {
  opening ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains("spots")) db.createObjectStore("spots", { keyPath: "id" });
      if (!db.objectStoreNames.contains("checks")) {
        db.createObjectStore("checks", { keyPath: "id" }).createIndex("spotId", "spotId");
      }
    };
    req.onsuccess = () => {
      const db = req.result;
      // Another tab deleting everything (deleteAll) must not wait on this connection.
      db.onversionchange = () => forget(db);
      db.onclose = () => forget(db);
      resolve(db);
    };
    req.onerror = () => reject(storageError(req.error));
    req.onblocked = () => reject(new Error("SkinScan's storage is being upgraded in another tab; close it and try again."));
  });
  opening.catch(() => (opening = null));
  return opening;
}

function forget(db) {
  db.close();
  opening = null;
}

/** Run `work(stores)` in one transaction; resolves with work's value once the transaction commits. */
async function transact(mode, work) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(["spots", "checks"], mode);
    let value;
    let failure = null;
    tx.oncomplete = () => resolve(value);
    tx.onabort = () => reject(failure?.name === "QuotaExceededError" ? new QuotaError() : failure ?? storageError(tx.error));
    tx.onerror = (e) => e.preventDefault(); // reported once, by onabort
    try {
      value = work({ spots: tx.objectStore("spots"), checks: tx.objectStore("checks") }, (err) => {
        failure = err;
        tx.abort();
      });
    } catch (err) {
      failure = err;
      tx.abort();
    }
  });
}

function storageError(err) {
  if (err?.name === "QuotaExceededError") return new QuotaError();
  return new Error(`SkinScan could not use this browser's storage: ${err?.message ?? err ?? "unknown error"}`);
}

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(storageError(req.error));
  });
}

/** Whether the database exists: reading must not create it (after deleteAll, nothing may be left). */
async function exists() {
  if (opening || !indexedDB.databases) return true;
  return (await indexedDB.databases()).some((d) => d.name === DB_NAME);
}

async function readAll(store, query) {
  if (!(await exists())) return [];
  const db = await open();
  const tx = db.transaction([store], "readonly");
  const source = query === undefined ? tx.objectStore(store) : tx.objectStore(store).index("spotId");
  return request(source.getAll(query));
}

function newId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `${prefix}-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

// ------------------------------------------------------------------------------------------------
// Reading

/**
 * Every spot, most recently checked first.
 * @returns {Promise<Array<{id: string, name: string, site: string, created: string, updated: string}>>}
 */
export async function spots() {
  const list = await readAll("spots");
  return list.sort((a, b) => (b.updated ?? "").localeCompare(a.updated ?? "") || a.name.localeCompare(b.name));
}

/**
 * The checks of one spot, oldest first. Each is {id, spotId, date (ISO 8601), result (what
 * skinscan.js classify() returned, whole), answers, modelVersion, photo: {type, width, height, bytes: ArrayBuffer}}.
 */
export async function checks(spotId) {
  const list = await readAll("checks", String(spotId));
  return list.sort((a, b) => a.date.localeCompare(b.date) || a.id.localeCompare(b.id));
}

// ------------------------------------------------------------------------------------------------
// Writing

/**
 * Save one check in the spot named `spot` (created if no spot has that name), on the user's request.
 * @param {{spot: string, site?: string, spotId?: string, answers?: object, date?: Date|string}} where
 *   spotId picks an existing spot instead of the name; answers are the details given with the photo.
 * @param {object} result what skinscan.js classify() returned; stored whole
 * @param {Blob} photoBlob the photo; a copy at most PHOTO_LONG_SIDE px on its long side is stored (JPEG)
 * @returns {Promise<string>} the new check's id
 */
export async function saveCheck(where, result, photoBlob) {
  const name = String(where?.spot ?? "").trim();
  if (!name && !where?.spotId) throw new Error("Give the spot a name, for example “mole on left shoulder”.");
  if (!result || typeof result !== "object") throw new Error("There is no result to save.");
  const photo = await downscale(photoBlob);
  const date = new Date(where.date ?? Date.now()).toISOString();
  const check = {
    id: newId("check"), spotId: null, date, result: structuredClone(result), answers: { ...(where.answers ?? {}) },
    modelVersion: result.model_version ?? null, photo,
  };
  return transact("readwrite", (stores, fail) => {
    const done = (spot) => {
      try {
        check.spotId = spot.id;
        stores.spots.put({ ...spot, updated: date > (spot.updated ?? "") ? date : spot.updated });
        stores.checks.add(check);
      } catch (err) {
        fail(err); // e.g. QuotaExceededError thrown by add(): the spot's put is rolled back too
      }
    };
    if (where.spotId) {
      request(stores.spots.get(String(where.spotId))).then((s) => (s ? done(s) : fail(new Error("That spot no longer exists."))));
    } else {
      request(stores.spots.getAll()).then((all) => {
        const same = all.find((s) => s.name.toLocaleLowerCase() === name.toLocaleLowerCase());
        done(same ?? { id: newId("spot"), name, site: String(where.site ?? ""), created: date, updated: date });
      });
    }
    return check.id;
  });
}

/** The photo as a JPEG at most PHOTO_LONG_SIDE px on its long side, decoded and drawn on this device. */
async function downscale(blob) {
  if (!(blob instanceof Blob)) throw new Error("saveCheck needs the photo as a Blob or File.");
  let bmp;
  try {
    bmp = await createImageBitmap(blob);
  } catch {
    throw new Error("This browser cannot read the photo to store a copy of it.");
  }
  const scale = Math.min(1, PHOTO_LONG_SIDE / Math.max(bmp.width, bmp.height));
  const width = Math.max(1, Math.round(bmp.width * scale));
  const height = Math.max(1, Math.round(bmp.height * scale));
  const canvas = new OffscreenCanvas(width, height);
  canvas.getContext("2d").drawImage(bmp, 0, 0, width, height);
  bmp.close();
  const jpeg = await canvas.convertToBlob({ type: "image/jpeg", quality: PHOTO_QUALITY });
  return { type: "image/jpeg", width, height, bytes: await jpeg.arrayBuffer() };
}

/** Delete one check; its spot stays (with its other checks). */
export function deleteCheck(id) {
  return transact("readwrite", (stores) => void stores.checks.delete(String(id)));
}

/** Delete one spot and all its checks, in one transaction. */
export function deleteSpot(id) {
  return transact("readwrite", (stores) => {
    stores.spots.delete(String(id));
    stores.checks.index("spotId").openKeyCursor(IDBKeyRange.only(String(id))).onsuccess = (e) => {
      const cursor = e.target.result;
      if (!cursor) return;
      stores.checks.delete(cursor.primaryKey);
      cursor.continue();
    };
  });
}

/** Delete everything SkinScan stored: the whole database goes, so IndexedDB holds no SkinScan data. */
export async function deleteAll() {
  if (opening) forget(await opening.catch(() => ({ close() {} })));
  await new Promise((resolve, reject) => {
    const req = indexedDB.deleteDatabase(DB_NAME);
    req.onsuccess = () => resolve();
    req.onerror = () => reject(storageError(req.error));
    // Another tab holds it open: its versionchange handler closes it, then this succeeds.
  });
}

// ------------------------------------------------------------------------------------------------
// Export and import

/**
 * Everything stored (spots, checks, photo bytes) in one file: a versioned binary container whose
 * last 32 bytes are the SHA-256 of the rest, so a damaged or truncated file is refused. With a
 * passphrase the body is AES-256-GCM encrypted under a PBKDF2-SHA-256 key (salt and iteration
 * count in the file), which also makes any change to it detectable without the passphrase.
 * @param {{passphrase?: string}} [options]
 * @returns {Promise<Blob>} application/octet-stream; the page names it skinscan-history-DATE.skinscan
 */
export async function exportAll({ passphrase } = {}) {
  const [spotList, checkList] = await Promise.all([readAll("spots"), readAll("checks")]);
  const payload = {
    app: "skinscan", exported: new Date().toISOString(), spots: spotList,
    checks: checkList.map((c) => ({ ...c, photo: { ...c.photo, bytes: toBase64(c.photo.bytes) } })),
  };
  const plain = new TextEncoder().encode(JSON.stringify(payload));
  const encrypted = typeof passphrase === "string" && passphrase !== "";
  const body = encrypted ? await encrypt(plain, passphrase) : plain;
  const header = new Uint8Array(HEADER_BYTES);
  header.set(new TextEncoder().encode(MAGIC), 0);
  const view = new DataView(header.buffer);
  view.setUint8(16, FORMAT);
  view.setUint8(17, encrypted ? FLAG_ENCRYPTED : 0);
  view.setBigUint64(18, BigInt(body.byteLength));
  const digest = await crypto.subtle.digest("SHA-256", await new Blob([header, body]).arrayBuffer());
  return new Blob([header, body, digest], { type: "application/octet-stream" });
}

/**
 * Restore an export: its spots and checks are added, replacing stored ones with the same ids, in
 * one transaction. Rejects, with nothing changed, for a foreign, truncated, damaged or newer-format
 * file, a missing or wrong passphrase, or a full device (QuotaError).
 * @param {Blob|ArrayBuffer} blob
 * @param {{passphrase?: string}} [options]
 * @returns {Promise<{spots: number, checks: number}>} how many records were restored
 */
export async function importAll(blob, { passphrase } = {}) {
  const bytes = new Uint8Array(blob instanceof Blob ? await blob.arrayBuffer() : blob);
  const { flags, body } = await unwrap(bytes);
  let plain = body;
  if (flags & FLAG_ENCRYPTED) {
    if (typeof passphrase !== "string" || passphrase === "") {
      throw new Error("This export is encrypted: enter its passphrase to import it.");
    }
    plain = await decrypt(body, passphrase);
  }
  const data = parsePayload(plain);
  await transact("readwrite", (stores) => {
    for (const s of data.spots) stores.spots.put(s);
    for (const c of data.checks) stores.checks.put(c);
  });
  return { spots: data.spots.length, checks: data.checks.length };
}

/** Check the container (magic, format, length, SHA-256) and return its flags and body. */
async function unwrap(bytes) {
  const foreign = "This is not a SkinScan history export.";
  if (bytes.length < 16 || new TextDecoder().decode(bytes.subarray(0, 16)) !== MAGIC) throw new Error(foreign);
  if (bytes.length < HEADER_BYTES) throw new Error("This export is truncated: it ends inside its header.");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const format = view.getUint8(16);
  const want = HEADER_BYTES + Number(view.getBigUint64(18)) + DIGEST_BYTES;
  if (bytes.length < want) throw new Error(`This export is truncated: it has ${bytes.length} of its ${want} bytes.`);
  const end = bytes.length - DIGEST_BYTES;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes.subarray(0, end)));
  if (bytes.length !== want || !digest.every((b, i) => b === bytes[end + i])) {
    throw new Error("This export is damaged or was changed: its integrity check (SHA-256) failed.");
  }
  if (format !== FORMAT) throw new Error(`This export was made by a newer SkinScan (format ${format}); update SkinScan to import it.`);
  return { flags: view.getUint8(17), body: bytes.subarray(HEADER_BYTES, end) };
}

/** The payload's JSON, checked record by record before anything is written. */
function parsePayload(plain) {
  let data;
  try {
    data = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plain));
  } catch {
    throw new Error("This export's contents are not readable.");
  }
  const bad = (what) => new Error(`This export's contents are invalid: ${what}.`);
  if (data?.app !== "skinscan" || !Array.isArray(data.spots) || !Array.isArray(data.checks)) throw bad("no spots or checks");
  const spotIds = new Set();
  for (const s of data.spots) {
    if (typeof s?.id !== "string" || typeof s.name !== "string") throw bad("a spot without an id or name");
    spotIds.add(s.id);
  }
  const checkList = data.checks.map((c) => {
    if (typeof c?.id !== "string" || !spotIds.has(c.spotId)) throw bad("a check without an id or spot");
    if (typeof c.date !== "string" || Number.isNaN(Date.parse(c.date))) throw bad(`check ${c.id} has no valid date`);
    if (!c.result || typeof c.result !== "object") throw bad(`check ${c.id} has no result`);
    if (typeof c.photo?.bytes !== "string") throw bad(`check ${c.id} has no photo`);
    return { ...c, photo: { ...c.photo, bytes: fromBase64(c.photo.bytes) } };
  });
  return { spots: data.spots, checks: checkList };
}

async function deriveKey(passphrase, salt, iterations) {
  const material = await crypto.subtle.importKey("raw", new TextEncoder().encode(passphrase), "PBKDF2", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations }, material, { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"],
  );
}

/** salt (16) | iterations (u32) | iv (12) | AES-GCM ciphertext with its 16-byte tag. */
async function encrypt(plain, passphrase) {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const key = await deriveKey(passphrase, salt, PBKDF2_ITERATIONS);
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, plain));
  const out = new Uint8Array(32 + sealed.length);
  out.set(salt, 0);
  new DataView(out.buffer).setUint32(16, PBKDF2_ITERATIONS);
  out.set(iv, 20);
  out.set(sealed, 32);
  return out;
}

async function decrypt(body, passphrase) {
  if (body.length < 32 + 16) throw new Error("This encrypted export is too short to hold anything.");
  const iterations = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(16);
  if (iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
    throw new Error(`This encrypted export uses ${iterations} PBKDF2 iterations, outside ${MIN_ITERATIONS}–${MAX_ITERATIONS}.`);
  }
  const key = await deriveKey(passphrase, body.slice(0, 16), iterations);
  try {
    return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: body.slice(20, 32) }, key, body.slice(32)));
  } catch {
    throw new Error("Wrong passphrase: this export could not be decrypted.");
  }
}

function toBase64(buffer) {
  const bytes = new Uint8Array(buffer);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function fromBase64(text) {
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0)).buffer;
  } catch {
    throw new Error("This export's contents are invalid: a photo is not base64.");
  }
}
