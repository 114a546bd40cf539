// Signing in the browser with a key that never leaves it (WebCrypto Ed25519, no library).
//
// Loaded as <script type="module" src="/console/static/sign.js">. The key pair is made
// with crypto.subtle.generateKey({name: "Ed25519"}, false, ["sign", "verify"]): the
// private key is not extractable; the pair is kept in IndexedDB ("cmo-ledger-console",
// store "keys", one pair per party). Its public key, "ed25519:<base64>", is enrolled with
// `cmo-ledger key enrol-browser --public-key ... --key <party keystore>` (a KeyAdded
// signed by the party key).
//
//   #generate-key          (browser-key page) makes a new pair and shows how to enrol it
//   form.sign-action       shown once the key is enrolled; on submit:
//     1. POST /console/sign/prepare {action, publicKey, data-* fields, reason}: the
//        unsigned envelope and its signing bytes;
//     2. the bytes must be "cmo-ledger/envelope/v1\n" || RFC 8785 of that envelope,
//        recomputed here: the browser signs only what it shows;
//     3. crypto.subtle.sign("Ed25519", private key, bytes);
//     4. POST /console/sign/submit {envelope, signature}: relayed to submitEvent.
//   The outcome goes to the form's output.sign-outcome (data-state signed / refused).
//
// Requests carry the session cookie and the page's CSRF token (x-csrf-token).

const ENVELOPE_DOMAIN = "cmo-ledger/envelope/v1\n";
const DB_NAME = "cmo-ledger-console";
const STORE = "keys";
const encoder = new TextEncoder();

function meta(name) {
  const found = document.querySelector(`meta[name="${name}"]`);
  return found ? found.getAttribute("content") : "";
}

function toBase64(bytes) {
  let binary = "";
  for (const byte of bytes) {
    binary += String.fromCharCode(byte);
  }
  return btoa(binary);
}

function fromBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) {
    bytes[i] = binary.charCodeAt(i);
  }
  return bytes;
}

function equal(a, b) {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

// RFC 8785 for the ledger's JSON (no floats): as verify.js.
function canonical(value) {
  if (value === null || typeof value !== "object") {
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    return "[" + value.map(canonical).join(",") + "]";
  }
  const keys = Object.keys(value).sort();
  return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
}

// ------------------------------------------------------------------- IndexedDB

function openDb() {
  return new Promise((resolve, reject) => {
    const opening = indexedDB.open(DB_NAME, 1);
    opening.onupgradeneeded = () => opening.result.createObjectStore(STORE);
    opening.onsuccess = () => resolve(opening.result);
    opening.onerror = () => reject(opening.error);
  });
}

async function stored(party) {
  const db = await openDb();
  return new Promise((resolve, reject) => {
    const reading = db.transaction(STORE, "readonly").objectStore(STORE).get(party);
    reading.onsuccess = () => resolve(reading.result || null);
    reading.onerror = () => reject(reading.error);
  });
}

async function store(party, pair) {
  const db = await openDb();
  return new Promise((resolve, reject) => {
    const writing = db.transaction(STORE, "readwrite");
    writing.objectStore(STORE).put(pair, party);
    writing.oncomplete = () => resolve();
    writing.onerror = () => reject(writing.error);
  });
}

async function publicKeyText(pair) {
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return "ed25519:" + toBase64(raw);
}

// ------------------------------------------------------------------------ server

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json", "x-csrf-token": meta("csrf-token") },
    body: JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    data = { errors: [{ code: "HTTP_" + response.status, field: null, message: String(error) }] };
  }
  return { ok: response.ok, data: data };
}

function refusal(data) {
  const first = (data && data.errors && data.errors[0]) || {};
  const where = first.field ? ` (${first.field})` : "";
  return `${first.code || "REFUSED"}${where}: ${first.message || "refused"}`;
}

async function keyState(publicKey) {
  const answer = await post("/console/sign/key", { publicKey: publicKey });
  return answer.ok ? answer.data : { state: "unknown", detail: refusal(answer.data) };
}

// ------------------------------------------------------------------ the key page

function show(id, text) {
  const element = document.getElementById(id);
  if (element) {
    element.textContent = text;
  }
}

async function describe(pair) {
  const publicKey = await publicKeyText(pair);
  const state = await keyState(publicKey);
  show("public-key", publicKey);
  show("key-id", state.keyId || "");
  show("enrol-command", `cmo-ledger key enrol-browser --public-key ${publicKey} --key <party keystore>`);
  show("key-state", state.state + (state.detail ? `: ${state.detail}` : ""));
  const details = document.getElementById("key-details");
  if (details) {
    details.hidden = false;
  }
  return { publicKey: publicKey, state: state.state };
}

async function generate(party) {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
  await store(party, pair);
  return pair;
}

// --------------------------------------------------------------------- signing

function fields(form) {
  const body = { action: form.dataset.action };
  for (const name of ["agreement", "parameter", "revision", "batch", "enhancement"]) {
    if (form.dataset[name] !== undefined) {
      body[name] = form.dataset[name];
    }
  }
  if (form.dataset.records !== undefined) {
    body.records = form.dataset.records.split(",").filter((r) => r !== "");
  }
  const reason = form.querySelector('[name="reason"]');
  if (reason && reason.value.trim() !== "") {
    body.reason = reason.value.trim();
  }
  return body;
}

async function signAction(form, pair, publicKey) {
  const outcome = form.querySelector("output.sign-outcome");
  const report = (state, text) => {
    outcome.dataset.state = state;
    outcome.textContent = text;
  };
  report("busy", "signing...");
  const prepared = await post("/console/sign/prepare", { ...fields(form), publicKey: publicKey });
  if (!prepared.ok) {
    report("refused", "refused: " + refusal(prepared.data));
    return;
  }
  const envelope = prepared.data.envelope;
  const bytes = fromBase64(prepared.data.signingBytes);
  const expected = encoder.encode(ENVELOPE_DOMAIN + canonical(envelope));
  if (!equal(bytes, expected)) {
    report("refused", "refused: the server's bytes are not those of the envelope shown");
    return;
  }
  const signature = new Uint8Array(
    await crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey, bytes),
  );
  const submitted = await post("/console/sign/submit", {
    envelope: envelope,
    signature: toBase64(signature),
  });
  if (!submitted.ok) {
    report("refused", "refused: " + refusal(submitted.data));
    return;
  }
  const event = submitted.data.event;
  report(
    "signed",
    `signed: ${event.type} (${event.meaning}) by ${event.signer} with browser key ${event.key}, ` +
      `log position ${submitted.data.position}`,
  );
  const shown = form.querySelector("pre.sign-envelope");
  if (shown) {
    shown.textContent = JSON.stringify(envelope, null, 1);
  }
  for (const button of form.querySelectorAll("button")) {
    button.disabled = true;
  }
}

async function start() {
  const party = meta("party");
  if (!party) {
    return;
  }
  let pair = await stored(party);
  let described = pair ? await describe(pair) : null;
  const button = document.getElementById("generate-key");
  if (button) {
    button.addEventListener("click", async () => {
      pair = await generate(party);
      described = await describe(pair);
    });
  }
  const forms = document.querySelectorAll("form.sign-action");
  if (forms.length === 0) {
    return;
  }
  if (described === null) {
    described = pair ? await describe(pair) : null;
  }
  const enrolled = described !== null && described.state === "enrolled";
  for (const note of document.querySelectorAll(".sign-unavailable")) {
    note.hidden = enrolled;
  }
  for (const form of forms) {
    form.hidden = !enrolled;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      signAction(form, pair, described.publicKey).catch((error) => {
        const outcome = form.querySelector("output.sign-outcome");
        outcome.dataset.state = "refused";
        outcome.textContent = "refused: " + error;
      });
    });
  }
  document.body.dataset.signing = enrolled ? "ready" : "unavailable";
}

start().catch((error) => {
  document.body.dataset.signing = "failed";
  show("key-state", "failed: " + error);
});
