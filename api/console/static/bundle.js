// An evidence bundle in the browser: check what the server prepared, then pack it (no library).
//
// Imported by sign.js for the batch record's *Download the evidence bundle*. The server
// answers every file of the bundle (base64) and the bytes the exporter signs; before the
// browser key signs them, checkPrepared makes sure they are
// "cmo-ledger/evidence-manifest/v1\n" || RFC 8785 of the bundle's own manifest.json, and
// that the manifest pins exactly the files received by their SHA-256 (the rules of
// ledger/evidence/layout.py). zip() packs the files, manifest.sig included, into a zip
// archive (stored, not compressed) under one folder, for `cmo-ledger verify-bundle`.

import { canonical, equal, fromBase64 } from "./envelope.js";

export const MANIFEST_DOMAIN = "cmo-ledger/evidence-manifest/v1\n";
export const MANIFEST_SIG = "manifest.sig";
const encoder = new TextEncoder();

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256Hex(bytes) {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

// The files (name -> bytes) once the signing bytes are those of their manifest and the
// manifest lists each of them, and nothing else, with its SHA-256; throws otherwise.
export async function checkPrepared(prepared) {
  const files = new Map();
  for (const [name, encoded] of Object.entries(prepared.files)) {
    files.set(name, fromBase64(encoded));
  }
  const manifestBytes = files.get(prepared.manifestFile);
  if (!manifestBytes || files.has(MANIFEST_SIG)) {
    throw new Error("the server's bundle has no manifest, or is signed already");
  }
  const manifest = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(manifestBytes));
  const expected = encoder.encode(MANIFEST_DOMAIN + canonical(manifest));
  if (!equal(fromBase64(prepared.signingBytes), expected)) {
    throw new Error("the server's bytes are not those of the bundle's manifest");
  }
  const listed = Object.keys(manifest.files || {}).sort();
  const received = [...files.keys()].filter((name) => name !== prepared.manifestFile).sort();
  if (listed.length !== received.length || listed.some((name, i) => name !== received[i])) {
    throw new Error("the manifest does not list exactly the files received");
  }
  for (const name of listed) {
    if ((await sha256Hex(files.get(name))) !== manifest.files[name]) {
      throw new Error(`the manifest's digest of ${name} does not match the file`);
    }
  }
  return { files: files, manifest: manifest, expected: expected };
}

// manifest.sig as the exporter writes it: party, key id, base64 signature.
export function signatureFile(party, keyId, signatureBase64) {
  const document = { key_id: keyId, party: party, signature: signatureBase64 };
  return encoder.encode(JSON.stringify(document, null, 1) + "\n");
}

// ------------------------------------------------------------------------------ zip

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) {
      c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    }
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (const byte of bytes) {
    c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}

function header(fields) {
  // fields: [size in bytes, value] little-endian
  const size = fields.reduce((total, [width]) => total + width, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const [width, value] of fields) {
    if (width === 4) {
      view.setUint32(offset, value, true);
    } else {
      view.setUint16(offset, value, true);
    }
    offset += width;
  }
  return out;
}

const UTF8_NAMES = 0x0800;
const DOS_DATE_1980 = 0x0021; // 1980-01-01: entries carry no time of their own

// A zip archive (PKWARE APPNOTE, method 0 "stored") of files (name -> bytes) under folder/.
export function zip(folder, files) {
  const parts = [];
  const central = [];
  let offset = 0;
  const names = [...files.keys()].sort();
  if (names.length > 0xfffe) {
    throw new Error("too many files for a zip archive without ZIP64");
  }
  for (const name of names) {
    const data = files.get(name);
    const path = encoder.encode(folder + "/" + name);
    const crc = crc32(data);
    const common = [
      [2, 20], [2, UTF8_NAMES], [2, 0], [2, 0], [2, DOS_DATE_1980],
      [4, crc], [4, data.length], [4, data.length], [2, path.length], [2, 0],
    ];
    const local = header([[4, 0x04034b50], ...common]);
    central.push(
      header([[4, 0x02014b50], [2, 20], ...common, [2, 0], [2, 0], [2, 0], [4, 0], [4, offset]]),
      path,
    );
    parts.push(local, path, data);
    offset += local.length + path.length + data.length;
  }
  const directorySize = central.reduce((total, part) => total + part.length, 0);
  const end = header([
    [4, 0x06054b50], [2, 0], [2, 0], [2, names.length], [2, names.length],
    [4, directorySize], [4, offset], [2, 0],
  ]);
  return new Blob([...parts, ...central, end], { type: "application/zip" });
}
