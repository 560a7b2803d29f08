// The text of a PDF that Chromium's page.pdf() wrote, for the report test (issue 14), with no PDF
// library: Chromium (Skia) writes Flate-compressed content streams that show glyph codes through
// fonts with a ToUnicode CMap, so decoding those maps and the Tj/TJ operators recovers the text.
// Not a general PDF reader: it is enough for Skia's output, and a test fails if it finds nothing.
import { inflateSync } from "node:zlib";

/** All objects: number -> {dict, stream (inflated Buffer or null)}. */
function objects(pdf) {
  const text = pdf.toString("latin1");
  const out = new Map();
  for (const m of text.matchAll(/(\d+) 0 obj\s*([\s\S]*?)endobj/g)) {
    const body = m[2];
    const s = body.indexOf("stream");
    let stream = null;
    if (s >= 0) {
      const start = s + 6 + (body[s + 6] === "\r" ? 2 : 1);
      const raw = Buffer.from(body.slice(start, body.lastIndexOf("endstream")), "latin1");
      try {
        stream = /FlateDecode/.test(body.slice(0, s)) ? inflateSync(raw) : raw;
      } catch {
        stream = null;
      }
    }
    out.set(Number(m[1]), { dict: s >= 0 ? body.slice(0, s) : body, stream });
  }
  return out;
}

/** A ToUnicode CMap's bfchar and bfrange entries as code -> string. */
function cmap(source) {
  const map = new Map();
  const utf16 = (hex) => String.fromCharCode(...hex.match(/.{4}/g).map((h) => parseInt(h, 16)));
  for (const block of source.matchAll(/beginbfchar([\s\S]*?)endbfchar/g)) {
    for (const [, code, uni] of block[1].matchAll(/<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>/g)) map.set(parseInt(code, 16), utf16(uni));
  }
  for (const block of source.matchAll(/beginbfrange([\s\S]*?)endbfrange/g)) {
    for (const [, lo, hi, dst] of block[1].matchAll(/<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>/g)) {
      const base = parseInt(dst, 16);
      for (let c = parseInt(lo, 16); c <= parseInt(hi, 16); c++) map.set(c, String.fromCharCode(base + c - parseInt(lo, 16)));
    }
  }
  return map;
}

/**
 * The text of every page's content. Skia moves the pen inside words (kerning) as well as between
 * them, so a space is added at every move: compare with whitespace removed (see `compact`).
 */
export function pdfText(pdf) {
  const objs = objects(pdf);
  const fontMaps = new Map(); // font object number -> cmap
  for (const [n, o] of objs) {
    const ref = o.dict.match(/\/ToUnicode (\d+) 0 R/);
    if (ref && objs.get(Number(ref[1]))?.stream) fontMaps.set(n, cmap(objs.get(Number(ref[1])).stream.toString("latin1")));
  }
  const names = new Map(); // resource name -> cmap (Skia names fonts uniquely per document)
  for (const o of objs.values()) {
    for (const [, name, n] of o.dict.matchAll(/\/(\w+) (\d+) 0 R/g)) if (fontMaps.has(Number(n))) names.set(name, fontMaps.get(Number(n)));
  }
  let text = "";
  for (const o of objs.values()) {
    if (!o.stream || !/\bBT\b/.test(o.stream.toString("latin1"))) continue;
    let map = null;
    const ops = o.stream.toString("latin1").matchAll(/\/(\w+)\s+[\d.]+\s+Tf|(\[[^\]]*\])\s*TJ|<([0-9a-fA-F]*)>\s*Tj|\b(T\*|Td|TD|Tm|ET)\b/g);
    for (const [, font, array, single, move] of ops) {
      if (font) map = names.get(font) ?? null;
      else if (move) text += " ";
      else for (const hex of array ? [...array.matchAll(/<([0-9a-fA-F]*)>/g)].map((x) => x[1]) : [single]) text += decode(hex, map);
    }
  }
  return text.replace(/\s+/g, " ");
}

function decode(hex, map) {
  if (!map) return "";
  const width = [...map.keys()].some((k) => k > 0xff) || hex.length % 4 === 0 ? 4 : 2;
  let out = "";
  for (let i = 0; i + width <= hex.length; i += width) out += map.get(parseInt(hex.slice(i, i + width), 16)) ?? "";
  return out;
}

/** The text with all whitespace removed and ligatures (ﬀ, ﬁ) split (NFKC): what a test should compare. */
export function compact(text) {
  return text.normalize("NFKC").replace(/\s+/g, "");
}
