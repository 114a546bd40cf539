// In-browser verification of one event of the log, with WebCrypto only (no library).
//
// Loaded as <script type="module" src="/console/static/verify.js">; every button with
// class "verify" and a data-leaf attribute checks that leaf when clicked:
//
//   checkpoint  GET /checkpoint (C2SP signed note) verifies with the notary key from
//               { ledger { notaryKey } } (Ed25519; key ID = SHA-256(name 0x0A 0x01 pk)[:4])
//   leaf        event(leafIndex) answers the leaf bytes; leaf hash = SHA-256(0x00 || bytes)
//               (RFC 9162); the leaf holds the envelope and signature the API answered
//   inclusion   the inclusion proof for the checkpoint's size folds to its root
//               (RFC 9162 section 2.1.3.2; node = SHA-256(0x01 || left || right))
//   key         the event that admitted the signer's key (its PartyAdmitted or KeyAdded)
//               is itself in the log: its leaf holds the envelope answered and its own
//               inclusion proof folds to the same checkpoint's root; the key is read from
//               that checked envelope (the notary's key is the notary key itself)
//   signature   the envelope's Ed25519 signature over "cmo-ledger/envelope/v1\n" ||
//               RFC 8785 bytes, with that key; key and signature are not run when the
//               signer's key events are withheld
//
// GraphQL requests go over the console session: the cookie and the page's CSRF token
// (x-csrf-token, as graphiql-init.js sends it).

import { ENVELOPE_DOMAIN, canonical, equal, fromBase64 } from "./envelope.js";

const KEY_ID_DOMAIN = "cmo-ledger/key/v1\n";
const encoder = new TextEncoder();

class CheckFailed extends Error {
  constructor(check, message) {
    super(message);
    this.check = check;
  }
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
}

async function graphql(query, variables) {
  const response = await fetch("/graphql", {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json", "x-csrf-token": csrfToken() },
    body: JSON.stringify({ query: query, variables: variables || {} }),
  });
  return response.json();
}

function concat(...parts) {
  const size = parts.reduce((total, part) => total + part.length, 0);
  const out = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

async function ed25519Verifies(publicKey, signature, message) {
  const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, [
    "verify",
  ]);
  return crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
}

// ------------------------------------------------------------------- checkpoint

function parseVkey(text) {
  // name+<hex key ID>+<base64>: the base64 may hold '+' too.
  const match = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(text.trim());
  if (match === null) {
    throw new CheckFailed("checkpoint", "the notary key is not a C2SP verifier key");
  }
  const parts = match.slice(1);
  const raw = fromBase64(parts[2]);
  if (raw.length !== 33 || raw[0] !== 0x01) {
    throw new CheckFailed("checkpoint", "the notary key is not an Ed25519 key");
  }
  return { name: parts[0], keyId: parts[1], publicKey: raw.slice(1) };
}

async function verifyCheckpoint(note, vkey) {
  const split = note.indexOf("\n\n");
  if (split < 0) {
    throw new CheckFailed("checkpoint", "the checkpoint is not a signed note");
  }
  const body = note.slice(0, split + 1);
  const lines = body.slice(0, -1).split("\n");
  if (lines.length < 3 || !/^(0|[1-9][0-9]*)$/.test(lines[1])) {
    throw new CheckFailed("checkpoint", "the checkpoint's text is malformed");
  }
  const material = concat(encoder.encode(vkey.name + "\n"), new Uint8Array([0x01]), vkey.publicKey);
  const keyId = (await sha256(material)).slice(0, 4);
  if (hex(keyId) !== vkey.keyId.toLowerCase()) {
    throw new CheckFailed("checkpoint", "the notary key's ID does not match its key");
  }
  let verified = false;
  for (const line of note.slice(split + 2).split("\n")) {
    if (!line.startsWith("\u2014 ")) {
      continue;
    }
    const [name, encoded] = line.slice(2).split(" ");
    if (name !== vkey.name || encoded === undefined) {
      continue;
    }
    const raw = fromBase64(encoded);
    if (raw.length !== 68 || !equal(raw.slice(0, 4), keyId)) {
      continue; // a cosignature, or another key of the same name
    }
    if (!(await ed25519Verifies(vkey.publicKey, raw.slice(4), encoder.encode(body)))) {
      throw new CheckFailed("checkpoint", "the notary's signature does not verify");
    }
    verified = true;
  }
  if (!verified) {
    throw new CheckFailed("checkpoint", "no signature by the notary key");
  }
  return { origin: lines[0], size: Number(lines[1]), root: fromBase64(lines[2]) };
}

// -------------------------------------------------------------------- inclusion

async function nodeHash(left, right) {
  return sha256(concat(new Uint8Array([0x01]), left, right));
}

// RFC 9162 section 2.1.3.2, as ledger/log/merkle.py verify_inclusion.
async function rootFromProof(leafHash, index, size, proof) {
  if (index >= size) {
    return null;
  }
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) {
      return null;
    }
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      while (fn !== 0 && fn % 2 === 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}

// -------------------------------------------------------------------- signature

const PARTY_EVENTS = `
query($after: String) {
  auditTrail(filter: {type: "PartyAdmitted"}, first: 200, after: $after) {
    edges { node { subject event { envelope } } } pageInfo { hasNextPage endCursor }
  }
}`;
const KEY_EVENTS = `
query($s: ID!) {
  auditTrail(filter: {subject: $s}, first: 200) {
    edges { node { type leafIndex event { envelope } } }
  }
}`;
const KEY_EVENT_TYPES = ["PartyAdmitted", "KeyAdded"];

async function keyIdOf(publicKey) {
  return hex(await sha256(concat(encoder.encode(KEY_ID_DOMAIN), publicKey))).slice(0, 32);
}

// The public key an admitting envelope adds when its key id is keyId, else null.
async function addedKey(envelope, keyId) {
  const text = envelope && KEY_EVENT_TYPES.includes(envelope.type) && envelope.payload.public_key;
  if (typeof text !== "string" || !text.startsWith("ed25519:")) {
    return null;
  }
  const publicKey = fromBase64(text.slice("ed25519:".length));
  return (await keyIdOf(publicKey)) === keyId ? publicKey : null;
}

// The leaf of the event that admitted the signer's key of id keyId, from its key events
// as the API answers them: { notary: true } for the notary, null when not readable.
async function keyEventLeaf(signer, keyId, notary) {
  if (signer === "notary") {
    return (await keyIdOf(notary.publicKey)) === keyId ? { notary: true } : null;
  }
  let subject = null;
  let after = null;
  while (subject === null) {
    const answer = await graphql(PARTY_EVENTS, { after: after });
    const trail = answer.data && answer.data.auditTrail;
    if (!trail) {
      return null;
    }
    for (const edge of trail.edges) {
      const event = edge.node.event;
      if (event && event.envelope.payload.party === signer) {
        subject = edge.node.subject;
      }
    }
    if (!trail.pageInfo.hasNextPage) {
      break;
    }
    after = trail.pageInfo.endCursor;
  }
  if (subject === null) {
    return null;
  }
  const answer = await graphql(KEY_EVENTS, { s: subject });
  const edges = (answer.data && answer.data.auditTrail && answer.data.auditTrail.edges) || [];
  for (const edge of edges) {
    const event = edge.node.event;
    if (event && (await addedKey(event.envelope, keyId)) !== null) {
      return { notary: false, leaf: edge.node.leafIndex, subject: subject };
    }
  }
  return null;
}

// ------------------------------------------------------------------------ check

const EVENT = `
query($leaf: Int!, $size: Int!) {
  event(leafIndex: $leaf) {
    leafIndex signer key envelope signature leafBytes
    inclusionProof(treeSize: $size) { leafIndex treeSize hashes }
  }
}`;

// The event of leaf `leaf` as the API answers it with its proof for the checkpoint's size.
async function fetchEvent(leaf, checkpoint, check) {
  const answer = await graphql(EVENT, { leaf: leaf, size: checkpoint.size });
  const event = answer.data && answer.data.event;
  if (!event) {
    const why = answer.errors && answer.errors.length ? answer.errors[0].message : "no event";
    throw new CheckFailed(check, why);
  }
  return event;
}

// The leaf hash of an answered event, once its leaf bytes hold its envelope and signature.
async function checkLeaf(event, check) {
  const leafBytes = fromBase64(event.leafBytes);
  const leafHash = await sha256(concat(new Uint8Array([0x00]), leafBytes));
  let stored;
  try {
    stored = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(leafBytes));
  } catch (error) {
    throw new CheckFailed(check, "the leaf bytes are not JSON");
  }
  if (
    stored.signature !== event.signature ||
    canonical(stored.envelope) !== canonical(event.envelope)
  ) {
    throw new CheckFailed(check, "the leaf does not hold the envelope answered");
  }
  return leafHash;
}

// Checks that the event's proof folds from leafHash to the checkpoint's root; its length.
async function checkInclusion(event, leaf, leafHash, checkpoint, check) {
  const proof = event.inclusionProof;
  if (!proof || proof.leafIndex !== leaf || proof.treeSize !== checkpoint.size) {
    throw new CheckFailed(check, "no inclusion proof for the checkpoint's tree size");
  }
  const hashes = proof.hashes.map(fromBase64);
  const root = await rootFromProof(leafHash, leaf, checkpoint.size, hashes);
  if (root === null || !equal(root, checkpoint.root)) {
    throw new CheckFailed(check, "the proof does not lead to the checkpoint's root");
  }
  return hashes.length;
}

// The signer's public key, once the event that admitted it is shown included under the
// checkpoint (leaf and proof checked as the event's own); null when not readable.
async function admittedKey(event, checkpoint, notary, report) {
  const found = await keyEventLeaf(event.signer, event.key, notary);
  if (found === null) {
    return null;
  }
  if (found.notary) {
    report("key", "ok", "the notary key, from the notary's verifier key");
    return notary.publicKey;
  }
  const admitting = await fetchEvent(found.leaf, checkpoint, "key");
  const leafHash = await checkLeaf(admitting, "key");
  await checkInclusion(admitting, found.leaf, leafHash, checkpoint, "key");
  const publicKey = await addedKey(admitting.envelope, event.key);
  if (publicKey === null || admitting.envelope.subject !== found.subject) {
    throw new CheckFailed("key", "leaf " + found.leaf + " does not admit key " + event.key);
  }
  report(
    "key",
    "ok",
    "key " + event.key + " added by " + admitting.envelope.type + " at leaf " + found.leaf +
      ", included under the same checkpoint",
  );
  return publicKey;
}

// Runs every check of one leaf; reports each step to report(check, state, detail).
// Throws CheckFailed naming the failing check; answers the checks not run.
export async function verifyLeaf(leaf, report) {
  const answered = await graphql("{ ledger { notaryKey } }");
  if (!answered.data) {
    throw new CheckFailed("checkpoint", "the notary key could not be read");
  }
  const notary = parseVkey(answered.data.ledger.notaryKey);
  const response = await fetch("/checkpoint", { credentials: "same-origin" });
  if (!response.ok) {
    throw new CheckFailed("checkpoint", "no signed checkpoint (HTTP " + response.status + ")");
  }
  const checkpoint = await verifyCheckpoint(await response.text(), notary);
  report("checkpoint", "ok", "tree size " + checkpoint.size + ", signed by " + notary.name);

  const event = await fetchEvent(leaf, checkpoint, "leaf");
  const leafHash = await checkLeaf(event, "leaf");
  report("leaf", "ok", "leaf hash " + hex(leafHash).slice(0, 16) + "…");

  const length = await checkInclusion(event, leaf, leafHash, checkpoint, "inclusion");
  report("inclusion", "ok", length + " hashes to the signed root");

  const publicKey = await admittedKey(event, checkpoint, notary, report);
  if (publicKey === null) {
    const why = "not run: the key events of " + event.signer + " are not readable";
    report("key", "skipped", why);
    report("signature", "skipped", why);
    return ["key", "signature"];
  }
  const message = encoder.encode(ENVELOPE_DOMAIN + canonical(event.envelope));
  if (!(await ed25519Verifies(publicKey, fromBase64(event.signature), message))) {
    throw new CheckFailed("signature", "the envelope's signature does not verify");
  }
  report("signature", "ok", "by " + event.signer + " with key " + event.key);
  return [];
}

async function run(button) {
  const leaf = Number(button.dataset.leaf);
  const verdict =
    (button.dataset.detail && document.getElementById("verdict")) ||
    button.parentElement.querySelector(".verdict");
  const list = button.dataset.detail ? document.getElementById(button.dataset.detail) : null;
  if (list) {
    list.replaceChildren();
  }
  const report = (check, state, detail) => {
    if (list) {
      const item = document.createElement("li");
      item.className = state;
      item.textContent = check + ": " + (state === "ok" ? "ok, " : "") + detail;
      list.appendChild(item);
    }
  };
  button.disabled = true;
  verdict.className = "verdict";
  verdict.textContent = "checking…";
  try {
    const skipped = await verifyLeaf(leaf, report);
    verdict.textContent = skipped.length
      ? "verified (checkpoint, leaf, inclusion; not run: " + skipped.join(", ") + ")"
      : "verified";
    verdict.classList.add("ok");
  } catch (error) {
    const check = error instanceof CheckFailed ? error.check : "error";
    report(check, "bad", error.message);
    verdict.textContent = "failed: " + check + " (" + error.message + ")";
    verdict.classList.add("bad");
  } finally {
    button.disabled = false;
  }
}

for (const button of document.querySelectorAll("button.verify[data-leaf]")) {
  button.addEventListener("click", () => run(button));
}
