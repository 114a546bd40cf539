// What the console's scripts share about the ledger's signed bytes (no library).
//
// Imported by sign.js (signing in the browser) and verify.js (verifying in the browser):
// the envelope's domain prefix, RFC 8785 canonical JSON for the ledger's JSON domain
// (strings, integers, booleans, null, arrays, objects: ECMAScript's JSON serialisation of
// primitives, keys sorted by UTF-16 units) and base64 to and from bytes.

export const ENVELOPE_DOMAIN = "cmo-ledger/envelope/v1\n";

export function canonical(value) {
  if (value === null || typeof value !== "object") {
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    return "[" + value.map(canonical).join(",") + "]";
  }
  const keys = Object.keys(value).sort();
  return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
}

export function fromBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) {
    bytes[i] = binary.charCodeAt(i);
  }
  return bytes;
}

export function toBase64(bytes) {
  let binary = "";
  for (const byte of bytes) {
    binary += String.fromCharCode(byte);
  }
  return btoa(binary);
}

export function equal(a, b) {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
