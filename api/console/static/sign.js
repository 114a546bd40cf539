// Signing in the browser with a key that never leaves it (WebCrypto Ed25519, no library).
//
// Loaded as <script type="module" src="/console/static/sign.js">. The key pair is made
// with crypto.subtle.generateKey({name: "Ed25519"}); its private half is at once sealed
// under a PIN the person chooses (AES-GCM, key from PBKDF2-SHA-256 of the PIN with a random
// salt) and only the sealed bytes are kept, in IndexedDB ("cmo-ledger-console", store
// "keys", one per party) with the public key. Signing needs both components: this browser
// profile (possession) and the PIN (knowledge); a wrong PIN leaves the key sealed and
// sends nothing. Its public key, "ed25519:<base64>", is enrolled with
// `cmo-ledger key enrol-browser --public-key ... --key <party keystore>` (a KeyAdded
// signed by the party key).
//
//   #generate-key          (browser-key page) makes a new pair sealed under #new-pin
//                          (typed twice, #new-pin-again) and shows how to enrol it
//   form.sign-action       shown once the key is enrolled, with a PIN field; on submit:
//     1. the PIN unseals the private key (imported not extractable, for this signing);
//     2. POST /console/sign/prepare {action, publicKey, data-* fields, reason}: the
//        unsigned envelope and its signing bytes;
//     3. the bytes must be "cmo-ledger/envelope/v1\n" || RFC 8785 of that envelope,
//        recomputed here: the browser signs only what it shows;
//     4. crypto.subtle.sign("Ed25519", private key, bytes);
//     5. POST /console/sign/submit {envelope, signature}: relayed to submitEvent.
//   The outcome goes to the form's output.sign-outcome (data-state signed / refused).
//   form.evidence-download (batch record) with a PIN field; on submit:
//     1. the PIN unseals the private key, as above;
//     2. POST /console/evidence/prepare {batch, publicKey}: every file of the batch's
//        evidence bundle, as export-evidence builds it for this party, and the bytes the
//        exporter signs;
//     3. bundle.js checks those bytes are the domain || RFC 8785 of the bundle's own
//        manifest.json, and that the manifest pins exactly the files received;
//     4. the browser key signs them; manifest.sig is added and the bundle is saved as
//        <batch>-evidence.zip (data-state saved / refused).
//
// Requests carry the session cookie and the page's CSRF token (x-csrf-token).

import { MANIFEST_SIG, checkPrepared, signatureFile, zip } from "./bundle.js";
import { ENVELOPE_DOMAIN, canonical, equal, fromBase64, toBase64 } from "./envelope.js";

const DB_NAME = "cmo-ledger-console";
const STORE = "keys";
const encoder = new TextEncoder();
const PIN_MIN = 6;
const PIN_ITERATIONS = 600000;

function meta(name) {
  const found = document.querySelector(`meta[name="${name}"]`);
  return found ? found.getAttribute("content") : "";
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

async function store(party, entry) {
  const db = await openDb();
  return new Promise((resolve, reject) => {
    const writing = db.transaction(STORE, "readwrite");
    writing.objectStore(STORE).put(entry, party);
    writing.oncomplete = () => resolve();
    writing.onerror = () => reject(writing.error);
  });
}

async function publicKeyText(entry) {
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", entry.publicKey));
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

async function describe(entry) {
  const publicKey = await publicKeyText(entry);
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

async function pinKey(pin, salt, iterations) {
  const material = await crypto.subtle.importKey("raw", encoder.encode(pin), "PBKDF2", false, [
    "deriveKey",
  ]);
  return crypto.subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt: salt, iterations: iterations },
    material,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

async function generate(party, pin, again) {
  if (pin.length < PIN_MIN) {
    throw new Error(`choose a PIN of at least ${PIN_MIN} characters`);
  }
  if (pin !== again) {
    throw new Error("the two PINs differ: type the same PIN twice");
  }
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const secret = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealing = await pinKey(pin, salt, PIN_ITERATIONS);
  const ciphertext = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv: iv }, sealing, secret),
  );
  secret.fill(0);
  const entry = {
    publicKey: pair.publicKey,
    sealed: { salt: salt, iv: iv, iterations: PIN_ITERATIONS, ciphertext: ciphertext },
  };
  await store(party, entry);
  return entry;
}

async function unseal(entry, pin) {
  const sealed = entry.sealed;
  let secret = null;
  try {
    const key = await pinKey(pin, sealed.salt, sealed.iterations);
    secret = await crypto.subtle.decrypt({ name: "AES-GCM", iv: sealed.iv }, key, sealed.ciphertext);
  } catch (error) {
    throw new Error("wrong PIN: the browser key stays sealed and nothing was sent");
  }
  try {
    return await crypto.subtle.importKey("pkcs8", secret, { name: "Ed25519" }, false, ["sign"]);
  } finally {
    new Uint8Array(secret).fill(0);
  }
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

// The form's outcome reporter and the browser key unsealed with the form's PIN (cleared
// once read); the key is null when no PIN was entered, which is reported.
async function unsealFromForm(form, entry, busy) {
  const outcome = form.querySelector("output.sign-outcome");
  const report = (state, text) => {
    outcome.dataset.state = state;
    outcome.textContent = text;
  };
  const pin = form.querySelector('[name="pin"]');
  if (!pin || pin.value === "") {
    report("refused", "refused: enter the browser key's PIN (pin)");
    return { report: report, privateKey: null };
  }
  report("busy", busy);
  try {
    return { report: report, privateKey: await unseal(entry, pin.value) };
  } finally {
    pin.value = "";
  }
}

async function signAction(form, entry, publicKey) {
  const { report, privateKey } = await unsealFromForm(form, entry, "signing...");
  if (privateKey === null) {
    return;
  }
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
    await crypto.subtle.sign({ name: "Ed25519" }, privateKey, bytes),
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

// --------------------------------------------------------------- evidence bundle

function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

async function downloadEvidence(form, entry, publicKey) {
  const { report, privateKey } = await unsealFromForm(form, entry, "building the bundle...");
  if (privateKey === null) {
    return;
  }
  const prepared = await post("/console/evidence/prepare", {
    batch: form.dataset.batch,
    publicKey: publicKey,
  });
  if (!prepared.ok) {
    report("refused", "refused: " + refusal(prepared.data));
    return;
  }
  const answer = prepared.data;
  const checked = await checkPrepared(answer);
  if (answer.exporter !== meta("party") || checked.manifest.exported_by !== answer.exporter) {
    report("refused", "refused: the bundle is not exported by the party signed in");
    return;
  }
  const signature = new Uint8Array(
    await crypto.subtle.sign({ name: "Ed25519" }, privateKey, checked.expected),
  );
  checked.files.set(MANIFEST_SIG, signatureFile(answer.exporter, answer.keyId, toBase64(signature)));
  save(zip(answer.name, checked.files), answer.name + ".zip");
  report(
    "saved",
    `saved ${answer.name}.zip: ${checked.files.size} files, manifest signed by ` +
      `${answer.exporter} with browser key ${answer.keyId}`,
  );
}

function addPinField(form) {
  const label = document.createElement("label");
  label.textContent = "PIN ";
  const input = document.createElement("input");
  input.type = "password";
  input.name = "pin";
  input.autocomplete = "off";
  input.size = 10;
  label.appendChild(input);
  form.insertBefore(label, form.querySelector('button[type="submit"]'));
}

async function start() {
  const party = meta("party");
  if (!party) {
    return;
  }
  let entry = await stored(party);
  if (entry && !entry.sealed) {
    // A key from before keys were sealed under a PIN: it signs no more from here.
    show("key-state", "this browser's key has no PIN: generate a new one and enrol it");
    entry = null;
  }
  let described = entry ? await describe(entry) : null;
  const button = document.getElementById("generate-key");
  if (button) {
    button.addEventListener("click", async () => {
      const pin = document.getElementById("new-pin");
      const again = document.getElementById("new-pin-again");
      try {
        entry = await generate(party, pin ? pin.value : "", again ? again.value : "");
        described = await describe(entry);
      } catch (error) {
        show("key-state", "refused: " + error.message);
      } finally {
        for (const field of [pin, again]) {
          if (field) {
            field.value = "";
          }
        }
      }
    });
  }
  const forms = document.querySelectorAll("form.sign-action");
  const downloads = document.querySelectorAll("form.evidence-download");
  if (forms.length === 0 && downloads.length === 0) {
    return;
  }
  const enrolled = described !== null && described.state === "enrolled";
  for (const note of document.querySelectorAll(".sign-unavailable")) {
    note.hidden = enrolled;
  }
  for (const form of downloads) {
    addPinField(form);
    form.hidden = !enrolled;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      downloadEvidence(form, entry, described.publicKey).catch((error) => {
        const outcome = form.querySelector("output.sign-outcome");
        outcome.dataset.state = "refused";
        outcome.textContent = "refused: " + (error.message || error);
      });
    });
  }
  for (const form of forms) {
    addPinField(form);
    form.hidden = !enrolled;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      signAction(form, entry, described.publicKey).catch((error) => {
        const outcome = form.querySelector("output.sign-outcome");
        outcome.dataset.state = "refused";
        outcome.textContent = "refused: " + (error.message || error);
      });
    });
  }
  document.body.dataset.signing = enrolled ? "ready" : "unavailable";
}

start().catch((error) => {
  document.body.dataset.signing = "failed";
  show("key-state", "failed: " + error);
});
