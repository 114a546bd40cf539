"""Evidence bundles: the layout of a batch's bundle and its offline verification.

A bundle is a directory (see ``docs/evidence.md``; its layout and manifest rules are
:mod:`ledger.evidence.layout`, imported here)::

    manifest.json        format, origin, batch, tree size, exporter, SHA-256 of every other file
    manifest.sig         the exporter's Ed25519 signature over manifest.json (party, key id)
    checkpoint.txt       the signed checkpoint every proof leads to, with its cosignatures
    notary.vkey          the notary's C2SP verifier key
    trace.json           the batch's trace: batch, agreement, terms, limits, grants, entries
    data.json            the batch's data tables: discrete results, event records, tags
    cpv.json             the CPV analyses of the batch's parameters, as of the trace
    events/NNNNNN.json   one per Merkle leaf: the event, its leaf bytes and inclusion proof;
                         the batch's events and the key events of its signers and exporter
    report.html          the same evidence for a person to read

Trust runs from the notary's key down: ``checkpoint.txt`` is signed by it, every event
file proves its inclusion under that checkpoint, the exporter's key is learnt from its
``PartyAdmitted``/``KeyAdded`` events among them, ``manifest.sig`` signs the manifest
with that key, and the manifest pins every other file by its SHA-256. So no file, not
even ``report.html``, can change without the exporter's key.

``verify_bundle(directory)`` checks all of it without a server or a database. Like
``clients.offline`` it imports only the standard library, PyNaCl and the ledger's
storage-free modules (envelopes, keys, canonical JSON, Merkle proofs, signed notes).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from clients.offline import (
    VerificationError,
    verify_checkpoint,
    verify_inclusion_against_checkpoint,
)
from ledger.domain.commitments import committed, element_commitment
from ledger.domain.formats import MAX_DECOMPRESSED_BYTES, ChunkBudget
from ledger.domain.key_history import (
    ALL_KEY_EVENTS,
    PERSON_KEY_EVENTS,
    KeyHistory,
    exit_status,
    finding,
)
from ledger.errors import LedgerError
from ledger.evidence.layout import (
    CHECKPOINT,
    CPV_FILE,
    DATA,
    EVENTS_DIR,
    FORMAT,
    MANIFEST,
    MANIFEST_DOMAIN,
    MANIFEST_SIG,
    NOTARY_VKEY,
    REPORT,
    TRACE,
    bundle_files,
    event_file,
    manifest_message,
    series_points,
    sha256_file,
)
from ledger.keys import decode_public_key, key_id
from ledger.log.envelope import Envelope, event_hash
from ledger.log.notes import (
    Checkpoint,
    NoteError,
    parse_checkpoint,
    parse_note,
    parse_vkey,
    verify_note_cosignatures,
)

__all__ = [
    "CHECKPOINT",
    "CPV_FILE",
    "DATA",
    "EVENTS_DIR",
    "FORMAT",
    "MANIFEST",
    "MANIFEST_DOMAIN",
    "MANIFEST_SIG",
    "NOTARY_VKEY",
    "REPORT",
    "TRACE",
    "BundleEvent",
    "BundleReport",
    "bundle_files",
    "decode_series",
    "event_file",
    "load_events",
    "manifest_message",
    "read_json",
    "sha256_file",
    "verify_bundle",
]

_DATA_TYPES = frozenset({"DataSubmitted", "DataCorrected"})


def read_json(path: Path) -> Any:
    """A bundle file's JSON; ``VerificationError`` naming the file otherwise."""
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise VerificationError(f"{path.name}: not readable JSON ({exc})") from exc


@dataclass(frozen=True)
class BundleEvent:
    """One ``events/NNNNNN.json``: a stored event with its leaf bytes and proof."""

    path: str
    leaf_index: int
    position: int
    role: str
    envelope: Mapping[str, Any]
    signature: str
    recorded_at: str
    leaf_bytes: bytes
    tree_size: int
    proof: tuple[bytes, ...]
    written_by: Mapping[str, Any] | None = None

    @classmethod
    def parse(cls, path: str, raw: Any) -> BundleEvent:
        """Read an event file's JSON; ``VerificationError`` naming what is malformed."""
        try:
            event = raw["event"]
            return cls(
                path=path,
                leaf_index=int(raw["leaf_index"]),
                position=int(raw["position"]),
                role=str(raw["role"]),
                envelope=dict(event["envelope"]),
                signature=str(event["signature"]),
                recorded_at=str(event["recorded_at"]),
                leaf_bytes=base64.b64decode(raw["leaf_bytes"], validate=True),
                tree_size=int(raw["proof"]["tree_size"]),
                proof=tuple(base64.b64decode(h, validate=True) for h in raw["proof"]["hashes"]),
                written_by=_written_by(event.get("written_by")),
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise VerificationError(f"{path}: malformed event file ({exc!r})") from exc

    @property
    def type(self) -> str:
        return str(self.envelope.get("type"))

    @property
    def subject(self) -> str:
        return str(self.envelope.get("subject"))

    @property
    def version(self) -> int:
        return int(self.envelope.get("version", 0))

    @property
    def payload(self) -> Mapping[str, Any]:
        payload = self.envelope.get("payload")
        return payload if isinstance(payload, dict) else {}


def load_events(directory: Path, report: BundleReport | None = None) -> list[BundleEvent]:
    """Every readable event file of a bundle, in leaf order.

    An unreadable file is a problem in ``report`` when one is given, else it raises
    ``VerificationError``.
    """
    folder = directory / EVENTS_DIR
    events = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        name = f"{EVENTS_DIR}/{path.name}"
        try:
            events.append(BundleEvent.parse(name, read_json(path)))
        except VerificationError as exc:
            if report is None:
                raise
            report.fail(f"{name}: {exc}" if not str(exc).startswith(name) else str(exc))
    return sorted(events, key=lambda e: e.leaf_index)


def decode_series(
    chunk: Mapping[str, Any], budget: ChunkBudget | None = None
) -> list[tuple[str, str, int]]:
    """The points of a continuous chunk (:func:`ledger.evidence.layout.series_points`);
    ``VerificationError`` naming the chunk when it does not decode or match its SHA-256."""
    try:
        return series_points(chunk, budget)
    except LedgerError as exc:
        raise VerificationError(f"continuous chunk {chunk.get('sha256')}: {exc}") from exc


# ------------------------------------------------------------------------- report


@dataclass
class BundleReport:
    """What verification found: ``problems`` fail the bundle, ``compromised`` lists events
    signed under a compromised key (:mod:`ledger.domain.key_history`), ``notes`` inform."""

    problems: list[str] = field(default_factory=list)
    compromised: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    events: int = 0
    checkpoint: Checkpoint | None = None
    openings_verified: int = 0
    openings_withheld: int = 0
    openings_purged: int = 0
    withheld: list[str] = field(default_factory=list)
    signed_by: str | None = None
    """The exporter whose admitted key signed the manifest, once that signature verified."""
    unchecked: int = 0
    """Rows of ``data.json`` not checked because the events carrying them were withheld."""

    @property
    def partial(self) -> bool:
        """True when something was withheld or left unchecked: never answered as OK."""
        return bool(
            self.withheld or self.unchecked or self.openings_withheld or self.openings_purged
        )

    def summary(self) -> str:
        """One line: what was verified, and what was withheld from the exporter."""
        verified = f"{self.events} events"
        if self.openings_verified:
            verified += f", {self.openings_verified} openings of confidential elements"
        held = list(self.withheld)
        if self.openings_withheld:
            held.append(f"{self.openings_withheld} openings (no confidential grant)")
        if self.openings_purged:
            held.append(f"{self.openings_purged} openings purged by their owner")
        if self.unchecked:
            held.append(f"{self.unchecked} data rows not checked")
        return f"verified {verified}; " + (
            f"withheld {', '.join(held)}" if held else "nothing withheld"
        )

    @property
    def ok(self) -> bool:
        """True when the bundle is intact (events under compromised keys aside)."""
        return not self.problems

    @property
    def exit_status(self) -> int:
        """0 clean, 1 the bundle is not intact, 2 only events signed under a compromised key."""
        return exit_status(intact=self.ok, compromised=bool(self.compromised))

    def fail(self, message: str) -> None:
        self.problems.append(message)


@dataclass
class _Context:
    directory: Path
    report: BundleReport
    manifest: Mapping[str, Any]
    events: list[BundleEvent]
    keys: dict[tuple[str, str], VerifyKey] = field(default_factory=dict)
    histories: dict[str, KeyHistory] = field(default_factory=dict)
    revoked_at_leaf: dict[tuple[str, str], int] = field(default_factory=dict)
    batch_subject: str | None = None
    verified: set[str] = field(default_factory=set)
    """Paths of the events whose leaf, proof and signature verified."""


def verify_bundle(directory: Path, *, vkey: str | None = None) -> BundleReport:
    """Check a bundle offline; ``vkey`` is the notary key the user trusts (text)."""
    report = BundleReport()
    try:
        manifest = read_json(directory / MANIFEST)
        _check_manifest(directory, manifest, report)
        notary_vkey = _notary_vkey(directory, vkey, report)
        checkpoint = _check_checkpoint(directory, manifest, notary_vkey, report)
        context = _Context(directory, report, manifest, load_events(directory, report))
    except VerificationError as exc:
        report.fail(str(exc))
        return report
    report.events = len(context.events)
    context.batch_subject = _batch_subject(context)
    _check_events(context, notary_vkey, checkpoint)
    _check_manifest_signature(context)
    _check_cosignatures(context, checkpoint)
    _check_chains(context)
    _check_trace(context)
    _check_data(context)
    _check_cpv(context)
    for item in _withheld(context):
        report.notes.append(f"withheld from the exporter: {_describe(item)}")
        report.withheld.append(_describe(item))
    return report


# ----------------------------------------------------------------------- manifest


def _check_manifest(directory: Path, manifest: Any, report: BundleReport) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise VerificationError(f"{MANIFEST}: not a {FORMAT} manifest")
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise VerificationError(f"{MANIFEST}: 'files' must map each file to its SHA-256")
    present = set(bundle_files(directory))
    for name in sorted(present - listed.keys()):
        report.fail(f"{name}: in the bundle but not listed in {MANIFEST}")
    for name, digest in sorted(listed.items()):
        if name not in present:
            report.fail(f"{name}: listed in {MANIFEST} but missing from the bundle")
        elif sha256_file(directory / name) != digest:
            report.fail(f"{name}: SHA-256 does not match {MANIFEST} (the file was changed)")


def _notary_vkey(directory: Path, trusted: str | None, report: BundleReport) -> str:
    try:
        bundled = (directory / NOTARY_VKEY).read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise VerificationError(f"{NOTARY_VKEY}: not readable ({exc})") from exc
    if trusted is None:
        report.notes.append(
            f"the notary key was taken from the bundle itself ({bundled}); "
            "pass --vkey with the key you trust to check it"
        )
        return bundled
    if trusted.strip() != bundled:
        report.fail(
            f"{NOTARY_VKEY}: the bundled notary key {bundled} is not the key given "
            f"with --vkey ({trusted.strip()})"
        )
    return trusted.strip()


def _check_checkpoint(
    directory: Path, manifest: Mapping[str, Any], vkey: str, report: BundleReport
) -> Checkpoint:
    try:
        note = (directory / CHECKPOINT).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise VerificationError(f"{CHECKPOINT}: not readable ({exc})") from exc
    try:
        checkpoint = verify_checkpoint(note, vkey, origin=manifest.get("origin"))
    except VerificationError as exc:
        report.fail(f"{CHECKPOINT}: {exc}")
        checkpoint = _unverified(note)
    if checkpoint.size != manifest.get("tree_size"):
        report.fail(
            f"{CHECKPOINT}: tree size {checkpoint.size} is not the manifest's "
            f"{manifest.get('tree_size')}"
        )
    report.checkpoint = checkpoint
    return checkpoint


def _unverified(note: str) -> Checkpoint:
    """The checkpoint of a note whose signature failed, so the proofs are still checked
    (and reported) against it."""
    try:
        return parse_checkpoint(parse_note(note)[0])
    except NoteError as exc:
        raise VerificationError(f"{CHECKPOINT}: {exc}") from exc


# ------------------------------------------------------------- manifest signature


@dataclass(frozen=True)
class _ManifestSignature:
    """``manifest.sig``: who signed the manifest, with which key, and the signature."""

    party: str
    key_id: str
    signature: bytes

    @classmethod
    def read(cls, directory: Path) -> _ManifestSignature:
        path = directory / MANIFEST_SIG
        if not path.is_file():
            raise VerificationError(
                f"{MANIFEST_SIG} is missing: nothing shows that the exporter vouches for "
                f"{MANIFEST}, so any file of the bundle may have been rewritten; ask the "
                "exporter for the bundle as cmo-ledger export-evidence wrote it"
            )
        raw = read_json(path)
        try:
            return cls(
                party=_text(raw["party"]),
                key_id=_text(raw["key_id"]),
                signature=base64.b64decode(_text(raw["signature"]), validate=True),
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise VerificationError(
                f"{MANIFEST_SIG}: expected {{party, key_id, signature (base64)}} ({exc!r}); "
                "ask the exporter for the bundle as cmo-ledger export-evidence wrote it"
            ) from exc


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _check_manifest_signature(context: _Context) -> None:
    """The manifest is signed by its exporter with a key the log admitted and never revoked
    up to the checkpoint: the key is learnt only from key events that proved their
    inclusion under the notary-signed checkpoint (:func:`_learn_key`)."""
    try:
        signed = _ManifestSignature.read(context.directory)
        problem = _manifest_signature_problem(context, signed)
    except VerificationError as exc:
        context.report.fail(str(exc))
        return
    if problem is not None:
        context.report.fail(f"{MANIFEST_SIG}: {problem}")
        return
    context.report.signed_by = f"{signed.party} (key {signed.key_id})"
    context.report.notes.append(
        f"{MANIFEST}: signed by its exporter {signed.party} with key {signed.key_id}, "
        "admitted in the log"
    )


def _manifest_signature_problem(context: _Context, signed: _ManifestSignature) -> str | None:
    exporter = context.manifest.get("exported_by")
    if signed.party != exporter:
        return f"signed by {signed.party}, but {MANIFEST} names {exporter!r} as the exporter"
    verify_key = context.keys.get((signed.party, signed.key_id))
    if verify_key is None:
        return (
            f"key {signed.key_id} of {signed.party} is not in the log as far as the bundle "
            f"shows (no PartyAdmitted or KeyAdded event for it proves its inclusion under "
            f"{CHECKPOINT}): {MANIFEST} cannot be trusted; ask {signed.party} to export the "
            "bundle again with its admitted key"
        )
    revoked_at = context.revoked_at_leaf.get((signed.party, signed.key_id))
    if revoked_at is not None:
        return (
            f"key {signed.key_id} of {signed.party} was revoked at leaf {revoked_at}, before "
            f"the checkpoint of the export: {MANIFEST} cannot be trusted; ask "
            f"{signed.party} to export the bundle again with a current key"
        )
    history = context.histories.get(signed.party)
    record = None if history is None else history.get(signed.key_id)
    if record is not None and record["purpose"] != "party":
        return (
            f"key {signed.key_id} of {signed.party} is a {record['purpose']} key, not a "
            "party key: only a party key vouches for a bundle; ask "
            f"{signed.party} to export the bundle again with its party key"
        )
    gap = _key_chain_gap(context, signed.party)
    if gap is not None:
        return gap
    try:
        verify_key.verify(manifest_message(context.manifest), signed.signature)
    except (BadSignatureError, ValueError, LedgerError):
        return (
            f"the signature over {MANIFEST} does not verify with key {signed.key_id} of "
            f"{signed.party}: {MANIFEST} was changed after the export (or the signature is "
            "not its); do not rely on any file of this bundle"
        )
    return None


def _key_chain_gap(context: _Context, party: str) -> str | None:
    """A gap in the exporter's key events, where a revocation could have been removed."""
    subjects = {
        e.subject
        for e in context.events
        if e.type == "PartyAdmitted" and e.payload.get("party") == party
    }
    versions = sorted(e.version for e in context.events if e.subject in subjects)
    missing = sorted(set(range(1, (versions or [0])[-1] + 1)) - set(versions))
    if not missing:
        return None
    return (
        f"the key events of {party} skip version(s) {', '.join(map(str, missing))}: a "
        "revocation of the key that signed the manifest may have been removed"
    )


# ------------------------------------------------------------------------- events


def _batch_subject(context: _Context) -> str | None:
    """The batch's subject, from its signed ``BatchRegistered`` event in the bundle."""
    batch = context.manifest.get("batch")
    for event in context.events:
        if event.type == "BatchRegistered" and event.payload.get("batch") == batch:
            return event.subject
    context.report.fail(f"the bundle holds no BatchRegistered event of batch {batch}")
    return None


def _notary_key(vkey: str) -> VerifyKey:
    try:
        return parse_vkey(vkey)[2]
    except NoteError as exc:
        raise VerificationError(f"{NOTARY_VKEY}: {exc}") from exc


def _check_events(context: _Context, vkey: str, checkpoint: Checkpoint) -> None:
    notary = _notary_key(vkey)
    context.keys[("notary", key_id(notary))] = notary
    _learn_revocations(context)
    origin = context.manifest.get("origin")
    for event in context.events:
        problem = _event_problem(context, event, checkpoint, origin)
        if problem is not None:
            context.report.fail(f"{event.path}: {problem}")
            continue
        context.verified.add(event.path)
        if event.type in ALL_KEY_EVENTS:
            _learn_key(context, event)


def _written_by(value: Any) -> Mapping[str, Any] | None:
    """An event file's optional ``written_by`` (R31): an object, or absent for older events."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError("written_by is not an object")
    return dict(value)


def _event_problem(
    context: _Context, event: BundleEvent, checkpoint: Checkpoint, origin: Any
) -> str | None:
    shown = {"envelope": event.envelope, "recorded_at": event.recorded_at}
    shown["signature"] = event.signature
    if event.written_by is not None:
        shown["written_by"] = dict(event.written_by)
    try:
        decoded = json.loads(event.leaf_bytes)
    except ValueError:
        return "leaf bytes are not JSON"
    if decoded != shown:
        return "leaf bytes do not decode to the event shown (envelope, signature, recorded_at)"
    if event.tree_size != checkpoint.size:
        return f"proof is to tree size {event.tree_size}, not the checkpoint's {checkpoint.size}"
    try:
        verify_inclusion_against_checkpoint(
            event.leaf_bytes, event.leaf_index, event.proof, checkpoint
        )
    except VerificationError as exc:
        return str(exc)
    if event.envelope.get("ledger") != origin:
        return f"envelope is for ledger {event.envelope.get('ledger')!r}, not {origin!r}"
    return _signature_problem(context, event)


def _signature_problem(context: _Context, event: BundleEvent) -> str | None:
    signer, key = str(event.envelope.get("signer")), str(event.envelope.get("key"))
    verify_key = context.keys.get((signer, key))
    if verify_key is None and signer == "notary":
        notary = next(k for (party, k) in context.keys if party == "notary")
        return f"signed with notary key {key}, which is not the notary key checked ({notary})"
    if verify_key is None:
        return (
            f"key {key} of {signer} is not evidenced in the bundle (no PartyAdmitted or "
            "KeyAdded event for it): its signature cannot be checked"
        )
    revoked_at = context.revoked_at_leaf.get((signer, key))
    if revoked_at is not None and event.leaf_index > revoked_at:
        return f"signed with key {key} of {signer} after it was revoked (leaf {revoked_at})"
    try:
        Envelope.parse(dict(event.envelope)).verify(verify_key, event.signature)
    except LedgerError as exc:
        return f"envelope signature by {signer} does not verify ({exc.field}: {exc})"
    _judge_compromise(context, event, signer, key)
    return None


def _judge_compromise(context: _Context, event: BundleEvent, signer: str, key: str) -> None:
    history = context.histories.get(signer)
    record = None if history is None else history.get(key)
    if history is None or record is None or record["compromised_since"] is None:
        return
    try:
        caught = history.compromised(key, str(event.envelope.get("signed_at")), event.recorded_at)
    except LedgerError:
        caught = True  # an unreadable time cannot show the signature came first
    if caught:
        said = finding(signer, key, str(record["compromised_since"]))
        context.report.compromised.append(f"{event.path}: {said}")


def _mirrored(event_type: str) -> str:
    """The party key event a key event is, or mirrors (a person's)."""
    return PERSON_KEY_EVENTS.get(event_type, event_type)


def _learn_key(context: _Context, event: BundleEvent) -> None:
    if _mirrored(event.type) == "KeyRevoked":
        return
    party = _party_of(context, event)
    if party is None:
        context.report.fail(f"{event.path}: {event.type} for a party not admitted in the bundle")
        return
    try:
        public_key = decode_public_key(str(event.payload.get("public_key")))
    except LedgerError as exc:
        context.report.fail(f"{event.path}: public_key: {exc}")
        return
    context.keys[(party, key_id(public_key))] = public_key


def _learn_revocations(context: _Context) -> None:
    """Every key's history first: a compromise reaches back before the event that records it.

    Only what the signed key events say is replayed (:class:`KeyHistory`); which keys are
    trusted to sign is learnt as events verify (:func:`_learn_key`).
    """
    for event in context.events:
        party = _party_of(context, event) if event.type in ALL_KEY_EVENTS else None
        if party is None:
            continue
        history = context.histories.setdefault(party, KeyHistory(party))
        try:
            history.apply(event.type, event.payload, event.recorded_at)
        except (KeyError, LedgerError):
            continue  # a revocation of a key the bundle never added, or a malformed key
        if _mirrored(event.type) == "KeyRevoked":
            context.revoked_at_leaf[(party, str(event.payload.get("key")))] = event.leaf_index


def _party_of(context: _Context, event: BundleEvent) -> str | None:
    """The party whose key an event adds or revokes (a person's keys are its party's)."""
    if _mirrored(event.type) == "PartyAdmitted":
        return str(event.payload.get("party"))
    for other in context.events:
        if _mirrored(other.type) == "PartyAdmitted" and other.subject == event.subject:
            return str(other.payload.get("party"))
    return None


def _check_cosignatures(context: _Context, checkpoint: Checkpoint) -> None:
    note = (context.directory / CHECKPOINT).read_text("utf-8")
    try:
        _, signatures = parse_note(note)
    except NoteError as exc:
        context.report.fail(f"{CHECKPOINT}: {exc}")
        return
    for name in sorted({s.name for s in signatures} - {checkpoint.origin}):
        keys = [(name, k) for (party, _), k in context.keys.items() if party == name]
        try:
            verified = verify_note_cosignatures(note, keys)
        except NoteError as exc:
            context.report.fail(f"{CHECKPOINT}: {exc}")
            continue
        if name not in verified:
            context.report.fail(
                f"{CHECKPOINT}: the cosignature by {name} matches no key of {name} evidenced "
                "in the bundle"
            )
        else:
            context.report.notes.append(f"{CHECKPOINT}: cosigned by {name}")


# --------------------------------------------------------------- chains and trace


def _check_chains(context: _Context) -> None:
    by_subject: dict[str, list[BundleEvent]] = {}
    for event in context.events:
        by_subject.setdefault(event.subject, []).append(event)
    withheld = {(w.get("subject"), w.get("version")) for w in _withheld(context)}
    for subject, events in by_subject.items():
        events.sort(key=lambda e: e.version)
        complete = subject == context.batch_subject
        if complete and events[0].version != 1 and (subject, 1) not in withheld:
            context.report.fail(
                f"subject {subject}: the bundle starts at version {events[0].version}"
            )
        for before, after in itertools.pairwise(events):
            _check_link(context, subject, before, after, complete, withheld)


def _check_link(
    context: _Context,
    subject: str,
    before: BundleEvent,
    after: BundleEvent,
    complete: bool,
    withheld: set[tuple[Any, Any]],
) -> None:
    if after.version == before.version + 1:
        if after.envelope.get("prev") != event_hash(before.envelope, before.signature):
            context.report.fail(
                f"{after.path}: prev does not chain to version {before.version} of {subject}"
            )
        return
    missing = [v for v in range(before.version + 1, after.version) if (subject, v) not in withheld]
    if complete and missing:
        context.report.fail(
            f"subject {subject}: version(s) {', '.join(map(str, missing))} missing between "
            f"{before.path} and {after.path} (an event was removed)"
        )


def _withheld(context: _Context) -> list[Mapping[str, Any]]:
    items = context.manifest.get("withheld", [])
    return [i for i in items if isinstance(i, dict)]


def _describe(item: Mapping[str, Any]) -> str:
    reason = item.get("reason")
    if "data" in item:
        return f"the batch's {item['data']} data ({reason})"
    if "cpv" in item:
        return f"the CPV analysis of {item['cpv']} ({reason})"
    return (
        f"{item.get('type')} version {item.get('version')} of {item.get('subject')}, "
        f"leaf {item.get('leaf_index')} ({reason})"
    )


def _check_trace(context: _Context) -> None:
    try:
        trace = read_json(context.directory / TRACE)
        entries = trace["events"]
    except (VerificationError, KeyError, TypeError) as exc:
        context.report.fail(f"{TRACE}: no list of events ({exc})")
        return
    by_leaf = {e.leaf_index: e for e in context.events}
    withheld = {w.get("leaf_index") for w in _withheld(context)}
    names = {
        (e.payload.get("party"), e.payload.get("person")): e.payload.get("printed_name")
        for e in context.events
        if e.type == "PersonAdmitted"
    }
    for entry in entries:
        leaf = entry.get("leafIndex")
        event = by_leaf.get(leaf)
        if event is None:
            if leaf not in withheld:
                context.report.fail(
                    f"{TRACE}: event at leaf {leaf} ({entry.get('type')}) is not in the bundle"
                )
            continue
        shown = (entry.get("type"), entry.get("signer"), entry.get("person"), entry.get("version"))
        signed = (event.type, event.envelope.get("signer"), event.envelope.get("person"))
        if shown != (*signed, event.version):
            context.report.fail(f"{TRACE}: entry at leaf {leaf} does not match {event.path}")
        elif entry.get("person") and entry.get("printedName") != names.get(signed[1:]):
            context.report.fail(
                f"{TRACE}: entry at leaf {leaf} names {entry.get('printedName')!r} for person "
                f"{entry.get('person')}, admitted as {names.get(signed[1:])!r}"
            )
    listed = {entry.get("leafIndex") for entry in entries}
    for event in context.events:
        if event.subject == context.batch_subject and event.leaf_index not in listed:
            context.report.fail(f"{event.path}: an event of the batch that {TRACE} does not list")


# ------------------------------------------------------------------------- data

_DISCRETE_FIELDS = {
    "parameter": "parameter",
    "value": "value",
    "unit": "unit",
    "sampledAt": "sampled_at",
    "method": "method",
}
_EVENT_FIELDS = {
    "kind": "kind",
    "startedAt": "started_at",
    "endedAt": "ended_at",
    "severity": "severity",
    "description": "description",
}


def _record_versions(
    events: Sequence[BundleEvent], batch_subject: str | None
) -> dict[str, list[Mapping[str, Any]]]:
    """Every version of every record the batch's data events carry, in log order."""
    versions: dict[str, list[Mapping[str, Any]]] = {}
    for event in events:
        if event.subject != batch_subject or event.type not in _DATA_TYPES:
            continue
        for record in event.payload.get("records", []) or []:
            versions.setdefault(str(record.get("id")), []).append(record)
    return versions


def _check_data(context: _Context) -> None:
    try:
        data = read_json(context.directory / DATA)
    except VerificationError as exc:
        context.report.fail(str(exc))
        return
    versions = _record_versions(context.events, context.batch_subject)
    # With data events withheld, record versions cannot be numbered from the payloads: a
    # row then passes when some signed payload carries it, and is noted otherwise.
    partial = any(w.get("type") in _DATA_TYPES for w in _withheld(context))
    seen: set[str] = set()
    for table, fields in (("discrete", _DISCRETE_FIELDS), ("events", _EVENT_FIELDS)):
        rows = data.get(table)
        if rows is None:
            context.report.notes.append(f"{DATA}: {table} was withheld from the exporter")
            context.report.withheld.append(f"{table} data")
            continue
        _count_openings(context, rows)
        for row in rows:
            seen.add(str(row.get("id")))
            problem = _row_problem(row, versions, fields)
            where = f"{DATA}: {table} record {row.get('id')} v{row.get('version')}"
            if problem is None:
                continue
            if partial and not _carried(row, versions, fields):
                context.report.notes.append(
                    f"{where}: not checked, the events carrying the batch's data were withheld"
                )
                context.report.unchecked += 1
            elif not partial:
                context.report.fail(f"{where}: {problem}")
    if data.get("discrete") is not None and data.get("events") is not None:
        for record_id in sorted(versions.keys() - seen):
            context.report.fail(f"{DATA}: record {record_id} of the events' payloads is missing")
    _check_tags(context, data.get("tags") or [], partial)


def _check_cpv(context: _Context) -> None:
    if not (context.directory / CPV_FILE).exists():
        context.report.notes.append(f"{CPV_FILE}: absent (exported before bundles held it)")
        return
    try:
        analyses = read_json(context.directory / CPV_FILE)
    except VerificationError as exc:
        context.report.fail(str(exc))
        return
    if not isinstance(analyses, list):
        context.report.fail(f"{CPV_FILE}: not a list of analyses")
        return
    versions = _record_versions(context.events, context.batch_subject)
    partial = any(w.get("type") in _DATA_TYPES for w in _withheld(context))
    batch = context.manifest.get("batch")
    payloads = [
        e.payload
        for e in context.events
        if not partial and e.subject == context.batch_subject and e.type in _DATA_TYPES
    ]
    for index, analysis in enumerate(analyses):
        if not isinstance(analysis, dict):
            context.report.fail(f"{CPV_FILE}: analysis {index} is not an object")
            continue
        what = f"{CPV_FILE}: {analysis.get('parameter')} / {analysis.get('baseline')}"
        if analysis.get("statistic") is not None:
            context.report.notes.append(
                f"{what}: the time outside limits of the batch's summary was not recomputed "
                "(it needs the limits as known when each chunk arrived)"
            )
        problem = _cpv_problem(analysis, batch, {} if partial else versions, payloads)
        if problem is not None:
            context.report.fail(f"{what}: {problem}")
    if analyses and partial:
        context.report.notes.append(
            f"{CPV_FILE}: the batch's own inputs were not compared with its signed data, "
            "whose events were withheld"
        )


def _cpv_problem(
    analysis: Mapping[str, Any],
    batch: Any,
    versions: Mapping[str, list[Mapping[str, Any]]],
    payloads: Sequence[Mapping[str, Any]] = (),
) -> str | None:
    """Why an analysis does not hold together: its digest is not that of its inputs, or
    an input of this batch is not the batch's current signed value or summary of its
    signed chunks (``versions``, ``payloads`` empty: not compared)."""
    # The statistics package (numpy, scipy) loads only for a bundle that holds analyses.
    from ledger.cpv.evidence import analysis_inputs, signed_summaries, summary_problem
    from ledger.cpv.inputs import CpvInput, inputs_digest

    try:
        rows = analysis_inputs(analysis)
        digest = inputs_digest(rows)
    except (KeyError, TypeError, LedgerError) as exc:
        return f"its inputs cannot be read ({exc})"
    if digest != analysis.get("inputsDigest"):
        return f"inputsDigest {analysis.get('inputsDigest')!r} is not its inputs' digest {digest}"
    own = [r for r in rows if r.batch == batch and not isinstance(r, CpvInput)]
    from_chunks = signed_summaries(payloads) if own and payloads else {}
    for summary in own if payloads else []:
        problem = summary_problem(summary, from_chunks)
        if problem is not None:
            return problem
    for row in (r for r in rows if versions and r.batch == batch and isinstance(r, CpvInput)):
        history = versions.get(row.record_id)
        signed = history[-1] if history else None
        if signed is None or signed.get("parameter") != analysis.get("parameter"):
            return f"result {row.record_id} of batch {batch} is in no signed event of the bundle"
        if signed.get("value") != row.value:
            return (
                f"result {row.record_id} of batch {batch} is charted as {row.value!r}, "
                f"its current signed value is {signed.get('value')!r}"
            )
    return None


def _carried(
    row: Mapping[str, Any],
    versions: Mapping[str, list[Mapping[str, Any]]],
    fields: Mapping[str, str],
) -> bool:
    return any(
        all(row.get(shown) == record.get(member) for shown, member in fields.items())
        for record in versions.get(str(row.get("id")), [])
    )


def _row_problem(
    row: Mapping[str, Any],
    versions: Mapping[str, list[Mapping[str, Any]]],
    fields: Mapping[str, str],
) -> str | None:
    history = versions.get(str(row.get("id")), [])
    version = row.get("version")
    if not isinstance(version, int) or not 1 <= version <= len(history):
        return "no event of the bundle carries this version"
    record = history[version - 1]
    for shown, member in fields.items():
        if row.get(shown) != record.get(member):
            signed = record.get(member)
            return f"{shown} {row.get(shown)!r} does not match the signed payload ({signed!r})"
    for item in row.get("confidential") or []:
        problem = _opening_problem(item, record.get(item.get("element")))
        if problem is not None:
            return problem
    expected = "current" if version == len(history) else "superseded"
    if row.get("status") != expected:
        return f"status {row.get('status')!r}, but the signed payloads make it {expected!r}"
    return None


def _opening_problem(item: Mapping[str, Any], signed: Any) -> str | None:
    """What is wrong with a confidential element shown in ``data.json``, if anything.

    A committed element must show the commitment the envelope signed, and an opening
    (value and salt) that opens it; an element signed in clear must show that value."""
    element, value = item.get("element"), item.get("value")
    commitment = committed(signed)
    if commitment is None:
        if value is not None and value != signed:
            return f"confidential {element} does not match the signed payload"
        return None
    if item.get("commitment") != commitment:
        return f"confidential {element}: the commitment shown is not the one signed"
    if value is None:
        return None
    salt = item.get("salt")
    try:
        opened = isinstance(salt, str) and element_commitment(bytes.fromhex(salt), value)
    except ValueError:
        opened = False
    if opened != commitment:
        return f"confidential {element}: the opening does not open the signed commitment"
    return None


def _count_openings(context: _Context, rows: Sequence[Mapping[str, Any]]) -> None:
    report = context.report
    for row in rows:
        for item in row.get("confidential") or []:
            if item.get("commitment") is None:
                continue
            if item.get("purged"):
                report.openings_purged += 1
            elif item.get("value") is None:
                report.openings_withheld += 1
            else:
                report.openings_verified += 1


def _tag_points(context: _Context) -> dict[str, list[tuple[str, str, int]]]:
    """Points of each tag from the current chunks of the batch's verified data events.

    An event that failed verification is never decompressed; each submission gets the
    ledger's allowance of uncompressed bytes, as its rule gave it when it was stored.
    """
    chunks: dict[str, list[tuple[Mapping[str, Any], ChunkBudget]]] = {}
    superseded: set[str] = set()
    for event in context.events:
        if event.subject != context.batch_subject or event.type not in _DATA_TYPES:
            continue
        if event.path not in context.verified:
            continue
        budget = ChunkBudget(MAX_DECOMPRESSED_BYTES)
        superseded.update(str(s) for s in event.payload.get("supersedes_chunks", []) or [])
        for series in event.payload.get("series", []) or []:
            found = chunks.setdefault(str(series.get("tag")), [])
            found.extend((chunk, budget) for chunk in series.get("chunks", []))
    points: dict[str, list[tuple[str, str, int]]] = {}
    for tag, tag_chunks in chunks.items():
        current = [(c, b) for c, b in tag_chunks if c.get("sha256") not in superseded]
        points[tag] = sorted(p for c, b in current for p in decode_series(c, b))
    return points


def _check_tags(context: _Context, tags: Sequence[Mapping[str, Any]], partial: bool) -> None:
    try:
        points = _tag_points(context)
    except (VerificationError, ValueError) as exc:
        context.report.fail(f"{DATA}: continuous data: {exc}")
        return
    for tag in tags:
        found = points.get(str(tag.get("tag")), [])
        expected = {
            "points": len(found),
            "first": found[0][0] if found else None,
            "last": found[-1][0] if found else None,
        }
        shown = {name: tag.get(name) for name in expected}
        if partial and shown != expected:
            context.report.unchecked += 1
            context.report.notes.append(
                f"{DATA}: tag {tag.get('tag')} not checked, the events carrying the batch's "
                "data were withheld"
            )
        elif shown != expected:
            context.report.fail(
                f"{DATA}: tag {tag.get('tag')} shows {shown}, the signed chunks hold {expected}"
            )
