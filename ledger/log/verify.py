"""Whole-ledger verification from the raw stored rows, trusting nothing already derived.

For every row of the events table, in position order, :func:`verify_ledger` checks:

* the stored state decodes to an envelope, a signature and ``recorded_at``;
* the topic is the registered topic of the envelope's event type, the envelope names this
  ledger, and the row's originator id and version are the envelope's subject and version;
* ``version`` follows the subject's previous event, ``prev`` is that event's hash, and
  only an event type that creates a subject starts one;
* the Ed25519 signature verifies, and the key belonged to the signer and was valid at
  ``signed_at`` (key history is replayed from ``PartyAdmitted``/``KeyAdded``/
  ``KeyRevoked`` as they come); a signature at or after a key's ``compromised_since`` is
  a warning, not a failure;
* the leaf recomputed from the row is the stored tree's leaf for that position, and the
  stored tree's nodes are the nodes recomputed from all leaves;
* every stored checkpoint is signed by the notary's key and its root is the root
  recomputed over its first ``size`` leaves; every stored cosignature verifies.

Each finding is a :class:`Problem` naming the position and the leaf index. Decoding,
hashing and signature checks run in worker processes, a chunk of rows at a time; the
checks that need the log's order (chains, key history, the tree) run in the caller.
"""

from __future__ import annotations

import binascii
import gc
import hashlib
import multiprocessing
import os
import re
import uuid
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
from eventsourcing.utils import get_topic
from nacl.bindings import crypto_sign_open
from nacl.exceptions import CryptoError
from nacl.signing import VerifyKey
from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from ledger.canonical import FOUR_BYTE_UTF8, canonical_bytes, has_float
from ledger.domain.key_history import compromised, exit_status, finding
from ledger.domain.parties import NOTARY
from ledger.errors import LedgerError
from ledger.keys import decode_public_key, key_id
from ledger.log.checkpoints import CHECKPOINTS, COSIGNATURES
from ledger.log.envelope import ENVELOPE_DOMAIN, REQUIRED_MEMBERS
from ledger.log.mapper import LEAF_HEAD
from ledger.log.merkle import (
    EMPTY_ROOT,
    Coord,
    complete_nodes_after_append,
    right_edge_after_append,
    root_from_nodes,
)
from ledger.log.merkle import leaf_hash as hash_leaf
from ledger.log.notes import (
    NoteError,
    cosigner_key_id,
    parse_checkpoint,
    parse_note,
    verify_cosignature,
    verify_note,
)
from ledger.log.tree import LEAVES, NODES
from ledger.runtime import collector_paused
from ledger.timeutil import format_utc

if TYPE_CHECKING:
    from ledger.application import Ledger

try:
    # PyNaCl's compiled libsodium binding, for :class:`_Opener`.
    import nacl._sodium as _sodium
except ImportError:  # pragma: no cover - every PyNaCl wheel has it
    _sodium = None  # type: ignore[assignment]

__all__ = [
    "CHUNK_SIZE",
    "Checked",
    "Problem",
    "Report",
    "RowContext",
    "check_rows",
    "verify_ledger",
]

#: Rows per page read and per chunk handed to a worker.
CHUNK_SIZE = 1000
_MMAP_BYTES = 1 << 30

Row = tuple[int, Any, Any, Any, bytes]
"""A raw event row as the driver returns it: position, originator id, version, topic, state."""

# Signature states a worker reports.
SIGNATURE_OK, SIGNATURE_BAD, SIGNATURE_UNKNOWN_KEY, SIGNATURE_MALFORMED = 1, 0, -1, -2

_KEY_EVENTS = frozenset({"PartyAdmitted", "KeyAdded", "KeyRevoked"})
_REQUIRED = frozenset(REQUIRED_MEMBERS)
_ALLOWED = _REQUIRED | {"reason"}
_TEXT_MEMBERS = ("ledger", "type", "subject", "signer", "key", "signed_at", "meaning")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]00:00)", re.ASCII)
_LEAF_PREFIX = b"\x00"  # RFC 6962: a leaf hash is SHA-256(0x00 || leaf bytes)
_LEAF_HEAD = _LEAF_PREFIX + LEAF_HEAD
_RECORDED_HEAD = b',"recorded_at":"'
_SIGNATURE_HEAD = b'","signature":"'
_SIGNATURE_MEMBER = b',"signature":"'
_FIRST = -(2**63)
COMPROMISED_SEVERITY = "compromised"


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: where (position and leaf index, when known) and what."""

    position: int | None
    leaf_index: int | None
    message: str
    severity: str = "error"
    """``error`` (the log is not intact) or ``compromised`` (signed under a compromised key)."""

    def __str__(self) -> str:
        if self.position is not None and self.leaf_index is not None:
            where = f"position {self.position} (leaf {self.leaf_index}): "
        elif self.position is not None:
            where = f"position {self.position}: "
        elif self.leaf_index is not None:
            where = f"leaf {self.leaf_index}: "
        else:
            where = ""
        return f"{where}{self.message}"


@dataclass
class Report:
    """What a verification found."""

    events: int = 0
    checkpoints: int = 0
    stored_leaves: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        """Problems that make the ledger fail verification."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def compromised(self) -> list[Problem]:
        """Events signed under a compromised key (the log itself may still be intact)."""
        return [p for p in self.problems if p.severity == COMPROMISED_SEVERITY]

    @property
    def ok(self) -> bool:
        """True when the log is intact (events under compromised keys aside)."""
        return not self.errors

    @property
    def exit_status(self) -> int:
        """0 clean, 1 the log is not intact, 2 only events signed under a compromised key."""
        return exit_status(intact=self.ok, compromised=bool(self.compromised))


class Checked(NamedTuple):
    """What a worker learns from one row, without knowing the rest of the log.

    Workers send these fields as plain tuples, in this order. ``type`` is ``None`` when
    the row does not hold an event; ``errors`` are what the row shows on its own (its
    topic, ledger, subject and version); ``payload`` is kept only for key events stored
    under their registered topic.
    """

    position: int
    subject: str
    leaf_hash: bytes
    errors: tuple[str, ...]
    type: str | None = None
    envelope_subject: str = ""
    envelope_version: int = 0
    prev: str | None = None
    event_hash: str = ""
    signer: str = ""
    key: str = ""
    signed_at: str = ""
    signed_time: float | None = None
    signature: int = SIGNATURE_BAD
    recorded_at: str = ""
    payload: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RowContext:
    """What checking a row needs: raw public keys by key id, the ledger's origin, and the
    registered topic of each event type."""

    keys: Mapping[str, bytes]
    origin: str
    topics: Mapping[str, str]


# ------------------------------------------------------------------ per-row checks


def check_rows(rows: Sequence[Row], context: RowContext) -> list[Checked]:
    """Decode, hash and check the signature of each row."""
    opener = _Opener()
    return [Checked._make(_check_row(row, context, opener)) for row in rows]


def _check_row(row: Row, context: RowContext, opener: _Opener) -> tuple[Any, ...]:
    """The fields of :class:`Checked` for one row, as a plain tuple.

    A state in leaf form is checked on its own bytes: the signature over the envelope's
    slice, the leaf hash over the state. That takes the state being exactly what the
    ledger's encoder writes for the event it holds: the envelope's bytes are orjson's
    sorted compact form of the envelope they decode to, which is ``canonical_bytes`` for
    the JSON an append admits (no floats; characters beyond the BMP go the slow way).
    Floats are not looked for: one that an append never admitted is signed over the
    stored bytes or not at all. Anything else goes through :func:`_check_decoded`,
    which says what is wrong.
    """
    originator, state = row[1], row[4]
    subject = originator.hex() if type(originator) is bytes else _hex(originator)
    if state[:12] != LEAF_HEAD:
        return _check_decoded(row, subject, context, opener)
    try:
        document = orjson.loads(state)
        envelope = document["envelope"]
        recorded_at = document["recorded_at"]
        signature = document["signature"]
        tail = b"".join(
            (_RECORDED_HEAD, recorded_at.encode(), _SIGNATURE_HEAD, signature.encode(), b'"}')
        )
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeEncodeError):
        return _check_decoded(row, subject, context, opener)
    signed = state[12 : len(state) - len(tail)]
    if (
        len(document) != 3
        or type(envelope) is not dict
        or not state.endswith(tail)
        or '"' in recorded_at
        or "\\" in recorded_at
        or not _shape_ok(envelope)
        or orjson.dumps(envelope, option=orjson.OPT_SORT_KEYS) != signed
        or not (signed.isascii() or FOUR_BYTE_UTF8.search(signed) is None)
    ):
        return _check_decoded(row, subject, context, opener)
    return _checked(
        row,
        subject,
        context,
        opener,
        envelope,
        signed,
        signature,
        recorded_at,
        _LEAF_PREFIX + state,
        b"".join((LEAF_HEAD, signed, _SIGNATURE_MEMBER, signature.encode(), b'"}')),
    )


def _check_decoded(row: Row, subject: str, context: RowContext, opener: _Opener) -> tuple[Any, ...]:
    """Any other state: decoded, then canonicalised to find the signed bytes and the leaf."""
    state = row[4]
    try:
        document = orjson.loads(state)
        envelope = document["envelope"]
        signature = document["signature"]
        recorded_at = document["recorded_at"]
    except (ValueError, TypeError, KeyError) as exc:
        return _broken(row, subject, f"stored state does not decode to an event: {exc!r}")
    if type(envelope) is not dict or type(signature) is not str or type(recorded_at) is not str:
        return _broken(
            row, subject, "stored state does not hold an envelope, a signature and recorded_at"
        )
    if not _shape_ok(envelope):
        return _broken(row, subject, f"envelope is malformed: {_shape_error(envelope)}")
    try:
        # The shape check leaves only the payload and a reason to hold a float.
        float_free = not has_float(envelope["payload"]) and not has_float(envelope.get("reason"))
        canonical = canonical_bytes(envelope, float_free=float_free)
        signature_json = encode_basestring(signature).encode("utf-8")
        recorded_json = encode_basestring(recorded_at).encode("utf-8")
    except (LedgerError, UnicodeEncodeError) as exc:
        return _broken(row, subject, f"envelope cannot be canonicalised: {exc}")
    # RFC 8785 sorts members, so these are the canonical forms of {envelope, recorded_at,
    # signature} (the leaf) and {envelope, signature} (the event hash).
    tail = b',"signature":' + signature_json + b"}"
    leaf = b"".join((_LEAF_HEAD, canonical, b',"recorded_at":', recorded_json, tail))
    # Only the library's older JSON form (which has a timestamp) is not the leaf itself.
    not_leaf = "timestamp" not in document and bytes(state) != leaf[1:]
    if state[:12] == LEAF_HEAD:
        leaf = _LEAF_PREFIX + bytes(state)  # what the tree hashed
    return _checked(
        row,
        subject,
        context,
        opener,
        envelope,
        canonical,
        signature,
        recorded_at,
        leaf,
        b"".join((LEAF_HEAD, canonical, tail)),
        ("stored state is not the canonical leaf of its event",) if not_leaf else (),
    )


def _checked(
    row: Row,
    subject: str,
    context: RowContext,
    opener: _Opener,
    envelope: dict[str, Any],
    signed: bytes,
    signature: str,
    recorded_at: str,
    leaf: bytes,
    hashed: bytes,
    form_errors: tuple[str, ...] = (),
) -> tuple[Any, ...]:
    """The fields of :class:`Checked` for a decoded event: ``signed`` are the envelope's
    signed bytes, ``leaf`` the hash input of its leaf (0x00 first), ``hashed`` that of
    its event hash."""
    position, _, stored_version, topic, _ = row
    event_type = envelope["type"]
    if type(topic) is not str:
        topic = _text(topic)
    registered = context.topics.get(event_type)
    errors = _identity_errors(envelope, subject, stored_version, topic, registered, context.origin)
    signed_at = envelope["signed_at"]
    return (
        position,
        subject,
        hashlib.sha256(leaf).digest(),
        errors + form_errors if form_errors else errors,
        event_type,
        envelope["subject"],
        envelope["version"],
        envelope["prev"],
        hashlib.sha256(hashed).hexdigest(),
        envelope["signer"],
        envelope["key"],
        signed_at,
        _timestamp(signed_at),
        opener.check(context.keys.get(envelope["key"]), signed, signature),
        recorded_at,
        envelope["payload"] if event_type in _KEY_EVENTS and topic == registered else None,
    )


def _broken(row: Row, subject: str, message: str) -> tuple[Any, ...]:
    # A row that cannot be read is still a leaf: hash its raw state so the tree has a place.
    return tuple(Checked(row[0], subject, hash_leaf(bytes(row[4])), (message,)))


def _identity_errors(
    envelope: dict[str, Any],
    subject: str,
    stored_version: Any,
    topic: str,
    registered: str | None,
    origin: str,
) -> tuple[str, ...]:
    """What the row's own columns say against its envelope: topic, ledger, subject, version."""
    event_type, ledger = envelope["type"], envelope["ledger"]
    envelope_subject, version = envelope["subject"], envelope["version"]
    if (
        topic == registered
        and ledger == origin
        and len(envelope_subject) == 36
        and envelope_subject.replace("-", "") == subject
        and version == stored_version
    ):
        return ()
    errors = []
    if registered is None:
        errors.append(f"unknown event type {event_type!r}")
    elif topic != registered:
        errors.append(f"topic {topic!r} is not the topic of {event_type} ({registered})")
    if ledger != origin:
        errors.append(f"envelope is for ledger {ledger!r}, not {origin!r}")
    if len(envelope_subject) != 36 or envelope_subject.replace("-", "") != subject:
        errors.append(
            f"stored originator id {subject} is not the envelope's subject {envelope_subject}"
        )
    if version != stored_version:
        errors.append(f"stored version {stored_version} is not the envelope's version {version}")
    return tuple(errors)


def _shape_ok(envelope: dict[str, Any]) -> bool:
    members = envelope.keys()
    if not (_REQUIRED <= members <= _ALLOWED):
        return False
    for name in _TEXT_MEMBERS:
        if type(envelope[name]) is not str:
            return False
    prev = envelope["prev"]
    return (
        type(envelope["version"]) is int
        and (prev is None or type(prev) is str)
        and type(envelope["payload"]) is dict
    )


def _shape_error(envelope: dict[str, Any]) -> str:
    unknown = sorted(set(envelope) - _ALLOWED)
    if unknown:
        return f"unknown member {unknown[0]!r}"
    missing = sorted(_REQUIRED - set(envelope))
    if missing:
        return f"missing {missing[0]!r}"
    for name in _TEXT_MEMBERS:
        if type(envelope[name]) is not str:
            return f"{name!r} is not a string"
    if type(envelope["version"]) is not int:
        return "'version' is not an integer"
    if type(envelope["payload"]) is not dict:
        return "'payload' is not an object"
    return "'prev' is neither null nor a string"


class _Opener:
    """Ed25519 checks of envelopes, as ``crypto_sign_open`` makes them.

    PyNaCl offers no detached verification; its ``crypto_sign_open`` allocates and fills
    a buffer for the opened message on every call. Here libsodium's own function is
    called with one buffer kept for all rows of a chunk, which is the same check.
    """

    def __init__(self) -> None:
        self.size = 0
        self.buffer: Any = None
        self.length: Any = None if _sodium is None else _sodium.ffi.new("unsigned long long *")

    def check(self, public_key: bytes | None, canonical: bytes, signature: str) -> int:
        """The signature state of base64 ``signature`` over the envelope ``canonical``."""
        if public_key is None or len(public_key) != 32:  # libsodium reads 32 bytes
            return SIGNATURE_UNKNOWN_KEY
        try:
            raw = binascii.a2b_base64(signature, strict_mode=True)
        except (binascii.Error, ValueError):
            return SIGNATURE_MALFORMED
        if len(raw) != 64:
            return SIGNATURE_MALFORMED
        signed = b"".join((raw, ENVELOPE_DOMAIN, canonical))
        if _sodium is None:
            try:
                crypto_sign_open(signed, public_key)
            except CryptoError:
                return SIGNATURE_BAD
            return SIGNATURE_OK
        if len(signed) > self.size:
            self.size = max(len(signed), 2 * self.size, 4096)
            self.buffer = _sodium.ffi.new("unsigned char[]", self.size)
        opened = _sodium.lib.crypto_sign_open(
            self.buffer, self.length, signed, len(signed), public_key
        )
        return SIGNATURE_OK if opened == 0 else SIGNATURE_BAD


def _timestamp(text: str) -> float | None:
    """An RFC 3339 UTC time (see :func:`_parse_time`) as a POSIX timestamp, or ``None``."""
    if not _TIME.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


# ------------------------------------------------------------------- worker pool

_worker_context = RowContext({}, "", {})

# Workers only decode, hash and verify: they never touch the inherited database
# connections or locks, so forking (fast, and no re-import of ``__main__``) is safe.
_START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def _init_worker(context: RowContext) -> None:
    global _worker_context
    _worker_context = context
    gc.disable()  # see ledger.runtime.collector_paused; a worker lives for one pass


def _check_in_worker(rows: Sequence[Row]) -> list[tuple[Any, ...]]:
    context, opener = _worker_context, _Opener()
    return [_check_row(row, context, opener) for row in rows]


class _Runner:
    """Checks rows a chunk at a time, in order: inline, or in worker processes.

    Chunks come back as plain tuples in :class:`Checked` order, which pickle faster.
    """

    def __init__(self, workers: int, context: RowContext) -> None:
        self.context = context
        self.pool: Any = None
        self.window = 2 * workers + 2
        if workers > 1:
            mp = multiprocessing.get_context(_START_METHOD)
            self.pool = mp.Pool(workers, initializer=_init_worker, initargs=(context,))

    def run(self, chunks: Iterator[list[Row]]) -> Iterator[list[tuple[Any, ...]]]:
        if self.pool is None:
            context, opener = self.context, _Opener()
            for chunk in chunks:
                yield [_check_row(row, context, opener) for row in chunk]
            return
        pending: deque[Any] = deque()
        for chunk in chunks:
            pending.append(self.pool.apply_async(_check_in_worker, (chunk,)))
            # A bounded window: rows are read only a little ahead of the workers.
            if len(pending) >= self.window:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()


# ------------------------------------------------------------------------ findings


class _Findings:
    """Problems found so far, and the positions that failed."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.failed: set[int] = set()

    def error(self, position: int | None, index: int | None, message: str) -> None:
        self.problems.append(Problem(position, index, message))
        if position is not None:
            self.failed.add(position)

    def compromised(self, position: int | None, index: int | None, message: str) -> None:
        self.problems.append(Problem(position, index, message, COMPROMISED_SEVERITY))


# ---------------------------------------------------------------- the log's order


@dataclass
class _Key:
    """A party key as the log has registered it so far."""

    party: str
    public_key: VerifyKey
    added_at: datetime
    position: int
    trusted: bool
    # The earliest signed_at (a POSIX timestamp) the clock skew allows for this key.
    earliest: float = float("-inf")
    revoked_at: datetime | None = None
    revoked_position: int | None = None
    compromised_since: datetime | None = None
    # When it signed, when the ledger recorded it, where and at which leaf, until revoked.
    signed: tuple[array[float], array[float], array[int], array[int]] = field(
        default_factory=lambda: (array("d"), array("d"), array("q"), array("q"))
    )


@dataclass(slots=True)
class _Subject:
    version: int
    event_hash: str
    aggregate: str
    party: str | None = None


@dataclass(frozen=True, slots=True)
class _Spec:
    topic: str
    creates: bool
    aggregate: str


def _specs() -> dict[str, _Spec]:
    from ledger.domain.catalogue import registered_types

    return {
        spec.type: _Spec(
            get_topic(getattr(spec.aggregate, spec.type)), spec.creates, spec.aggregate.__name__
        )
        for spec in registered_types()
    }


_NO_KEYS: Mapping[str, _Key] = {}


class _LogCheck:
    """Checks that need the log's order: chains, signers and their keys.

    Each event takes a short path when nothing about it is wrong; anything else goes
    through the checks that say what is wrong.
    """

    def __init__(self, ledger: Ledger, findings: _Findings) -> None:
        identity = ledger.identity
        self.origin = identity.origin
        self.notary_key_id = identity.notary_key_id
        self.skew = timedelta(seconds=ledger.settings.max_clock_skew)
        self.specs = _specs()
        self.found = findings
        self.subjects: dict[str, _Subject] = {}
        self.keys: dict[str, dict[str, _Key]] = {}

    def events(self, chunk: Sequence[tuple[Any, ...]], first_index: int) -> None:
        """Check a chunk of :class:`Checked` tuples; ``first_index`` is its first leaf index."""
        error, specs, subjects = self.found.error, self.specs, self.subjects
        for index, row in enumerate(chunk, first_index):
            position, subject, _, errors, kind, _, version, prev, digest = row[:9]
            for message in errors:
                error(position, index, message)
            if kind is None:
                continue  # not an event: its one finding is all there is to say
            spec = specs.get(kind)
            current = subjects.get(subject)
            if (
                current is not None
                and spec is not None
                and version == current.version + 1
                and prev == current.event_hash
                and not spec.creates
                and spec.aggregate == current.aggregate
            ):
                current.version, current.event_hash = version, digest
            else:
                self._chain(Checked._make(row), index, spec)
            signer, key, _, signed_time, signature, recorded_at, payload = row[9:]
            if signature != SIGNATURE_OK or not self._valid_key(
                signer, key, signed_time, recorded_at, position, index
            ):
                self._signature(Checked._make(row), index)
            if payload is not None:
                self._key_history(Checked._make(row), index)

    def _valid_key(
        self,
        signer: str,
        key: str,
        signed_time: float | None,
        recorded_at: str,
        position: int,
        index: int,
    ) -> bool:
        """True, with the signature recorded, when the key was the signer's and valid."""
        if signer == NOTARY:
            return key == self.notary_key_id
        found = self.keys.get(signer, _NO_KEYS).get(key)
        if (
            found is None
            or not found.trusted
            or found.revoked_at is not None
            or signed_time is None
            or signed_time < found.earliest
        ):
            return False
        _remember(found, signed_time, recorded_at, position, index)
        return True

    def _chain(self, c: Checked, index: int, spec: _Spec | None) -> None:
        error, position = self.found.error, c.position
        current = self.subjects.get(c.subject)
        if current is None:
            if c.envelope_version != 1 or c.prev is not None:
                error(
                    position,
                    index,
                    f"first event of subject {c.envelope_subject} has version "
                    f"{c.envelope_version} and prev {c.prev}; expected version 1 and no prev",
                )
            if spec is not None and not spec.creates:
                error(position, index, f"{c.type} cannot start a subject")
            aggregate = "?" if spec is None else spec.aggregate
            self.subjects[c.subject] = _Subject(c.envelope_version, c.event_hash, aggregate)
            return
        if c.envelope_version != current.version + 1:
            error(
                position,
                index,
                f"version {c.envelope_version} follows version {current.version} of subject "
                f"{c.envelope_subject}",
            )
        if c.prev != current.event_hash:
            error(
                position,
                index,
                f"prev is not the hash of version {current.version} of {c.envelope_subject}",
            )
        if spec is not None and (spec.creates or spec.aggregate != current.aggregate):
            error(position, index, f"{c.type} does not apply to a {current.aggregate} subject")
        current.version, current.event_hash = c.envelope_version, c.event_hash

    def _signature(self, c: Checked, index: int) -> None:
        error, position = self.found.error, c.position
        if c.signature == SIGNATURE_MALFORMED:
            error(position, index, "signature is not base64 of 64 bytes")
        elif c.signature == SIGNATURE_BAD:
            error(position, index, f"signature does not verify with key {c.key}")
        elif c.signature == SIGNATURE_UNKNOWN_KEY:
            error(position, index, f"key {c.key} was never registered on this ledger")
        if c.signer == NOTARY:
            if c.key != self.notary_key_id:
                error(position, index, f"key {c.key} is not the notary's key")
            return
        key = self.keys.get(c.signer, {}).get(c.key)
        if key is None:
            self._unknown_key(c, index)
            return
        if c.signed_time is None:
            error(position, index, f"signed_at {c.signed_at!r} is not an RFC 3339 UTC time")
            return
        self._key_valid(c, index, key, c.signed_time)

    def _unknown_key(self, c: Checked, index: int) -> None:
        if c.signer not in self.keys:
            self.found.error(c.position, index, f"signer {c.signer!r} is not an admitted party")
            return
        owners = [party for party, keys in self.keys.items() if c.key in keys]
        whose = f" (it is a key of {owners[0]})" if owners else ""
        self.found.error(c.position, index, f"key {c.key} is not a key of {c.signer}{whose}")

    def _key_valid(self, c: Checked, index: int, key: _Key, signed_time: float) -> None:
        error, position = self.found.error, c.position
        if not key.trusted:
            error(
                position,
                index,
                f"key {c.key} was registered by the event at position {key.position}, "
                "which fails verification",
            )
        if key.revoked_at is not None:
            error(
                position,
                index,
                f"key {c.key} of {c.signer} was revoked at position {key.revoked_position}",
            )
            return
        if signed_time < key.earliest:
            error(position, index, f"signed at {c.signed_at}, before key {c.key} was added")
        _remember(key, signed_time, c.recorded_at, position, index)

    def _key_history(self, c: Checked, index: int) -> None:
        payload = c.payload or {}
        at = _parse_time(c.recorded_at)
        if at is None:
            self.found.error(c.position, index, f"recorded_at {c.recorded_at!r} is not UTC")
            return
        trusted = c.position not in self.found.failed
        try:
            if c.type == "PartyAdmitted":
                party = str(payload["party"])
                self.subjects[c.subject].party = party
                self.keys.setdefault(party, {})
                self._add_key(party, payload["public_key"], at, c.position, trusted)
                return
            party_of = self.subjects[c.subject].party
            if party_of is None:
                return  # already reported: not a party subject
            if c.type == "KeyAdded":
                self._add_key(party_of, payload["public_key"], at, c.position, trusted)
            else:
                self._revoke(party_of, payload, at, c.position, index)
        except (KeyError, TypeError, LedgerError) as exc:
            self.found.error(c.position, index, f"{c.type} payload cannot be applied: {exc}")

    def _add_key(self, party: str, public_key: Any, at: datetime, position: int, ok: bool) -> None:
        verify_key = decode_public_key(public_key)
        try:
            # Timestamps order exactly as the datetimes do (microseconds stay distinct).
            earliest = (at - self.skew).timestamp()
        except OverflowError:
            earliest = float("-inf")  # no time can be earlier than that
        key = _Key(party, verify_key, at, position, ok, earliest)
        self.keys[party][key_id(verify_key)] = key

    def _revoke(
        self, party: str, payload: Mapping[str, Any], at: datetime, position: int, index: int
    ) -> None:
        kid = str(payload["key"])
        key = self.keys[party].get(kid)
        if key is None:
            self.found.error(position, index, f"KeyRevoked names key {kid}, not a key of {party}")
            return
        raw_since = payload.get("compromised_since")
        since = at if raw_since is None else _parse_time(raw_since)
        if since is None:
            self.found.error(position, index, f"compromised_since {raw_since!r} is not UTC")
            since = at
        key.revoked_at, key.revoked_position, key.compromised_since = at, position, since
        limit = since.timestamp()
        said = finding(party, kid, format_utc(since))
        for signed_at, recorded, signed_position, signed_index in zip(*key.signed, strict=True):
            if compromised(signed_at, recorded, limit):
                self.found.compromised(
                    signed_position, signed_index, f"{said} (revoked at position {position})"
                )
        key.signed = (array("d"), array("d"), array("q"), array("q"))


def _remember(key: _Key, signed_time: float, recorded_at: str, position: int, index: int) -> None:
    """Keep what a later revocation needs to judge this signature by the compromise rule."""
    times, recorded, positions, indexes = key.signed
    times.append(signed_time)
    recorded.append(_timestamp(recorded_at) or float("inf"))
    positions.append(position)
    indexes.append(index)


def _parse_time(text: object) -> datetime | None:
    """An RFC 3339 UTC time, or ``None``."""
    if not isinstance(text, str) or not _TIME.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return None


# ------------------------------------------------------------------------ the tree


class _TreeCheck:
    """The tree recomputed from the rows, against the stored tree and the checkpoints."""

    def __init__(
        self, conn: Connection, findings: _Findings, ledger: Ledger, tables: set[str]
    ) -> None:
        self.conn = conn
        self.found = findings
        self.origin = ledger.identity.origin
        self.notary_key = decode_public_key(ledger.identity.notary_public_key)
        self.has_tree = {LEAVES.name, NODES.name} <= tables
        self.has_checkpoints = {CHECKPOINTS.name, COSIGNATURES.name} <= tables
        self.sql = _TreeSql(conn)
        # The recomputed tree: its size and right edge (the nodes of root_coords(size)).
        self.size = 0
        self.frontier: dict[Coord, bytes] = {}
        # The stored tree, and what comparing it with the rows found so far.
        self.stored_size, self.stored_last = self.sql.stored_extent() if self.has_tree else (0, 0)
        self.last_position = _FIRST
        self.offset = 0
        self.moved = 0
        self.previous: list[tuple[int, int, bytes]] = []  # the stored leaves of the last chunk
        self.first_bad_leaf: int | None = None
        self.bad_nodes: list[Coord] = []
        # Signed checkpoints, consumed in size order as the tree grows.
        self.checkpoints = _checkpoint_rows(conn) if self.has_checkpoints else iter(())
        self.next_checkpoint = next(self.checkpoints, None)
        self.checked_checkpoints = 0
        self.first_bad_checkpoint: int | None = None
        self.later_bad_checkpoints: list[int] = []

    def add(self, chunk: Sequence[tuple[Any, ...]]) -> None:
        """Compare a chunk's leaves (:class:`Checked` tuples) with the stored tree, then grow
        the recomputed tree."""
        positions = [c[0] for c in chunk]
        hashes = [c[2] for c in chunk]
        if self.has_tree:
            self._compare_leaves(positions, hashes, self.size)
        self._grow(hashes)
        self.last_position = positions[-1]

    # ------------------------------------------------------------ stored leaves

    def _compare_leaves(self, positions: list[int], hashes: list[bytes], first_index: int) -> None:
        stored = self.sql.leaves(self.last_position, positions[-1])
        first_stored = first_index + self.offset
        indexes = range(first_stored, first_stored + len(positions))
        expected = list(zip(positions, indexes, hashes, strict=True))
        if stored == expected:
            # Every leaf where the stored tree has it: nothing to report.
            self.moved = 0
            self.previous = stored
            return
        self._compare_leaves_one_by_one(positions, hashes, first_index, stored)

    def _compare_leaves_one_by_one(
        self,
        positions: list[int],
        leaf_hashes: list[bytes],
        first_index: int,
        stored: list[tuple[int, int, bytes]],
    ) -> None:
        stored = [(position, index, bytes(value)) for position, index, value in stored]
        hashes = {value: position for position, _, value in stored}
        previous = {bytes(value): position for position, _, value in self.previous}
        j = 0
        for offset, (position, leaf_hash) in enumerate(zip(positions, leaf_hashes, strict=True)):
            index = first_index + offset
            while j < len(stored) and stored[j][0] < position:
                self._deleted(*stored[j])
                j += 1
            if j < len(stored) and stored[j][0] == position:
                was = hashes.get(leaf_hash, previous.get(leaf_hash))
                self._compare_leaf(position, leaf_hash, index, stored[j][1], stored[j][2], was)
                j += 1
            elif position <= self.stored_last:
                self._trouble(index)
                self.found.error(position, index, "this event is not in the stored tree (inserted)")
                self.offset -= 1
        for row in stored[j:]:
            self._deleted(*row)
        self.previous = stored

    def _deleted(self, position: int, index: int, _: bytes) -> None:
        self._trouble(index)
        self.found.error(
            position, index, "the stored tree has an event here the log lacks (deleted)"
        )
        self.offset += 1

    def _compare_leaf(
        self,
        position: int,
        leaf_hash: bytes,
        index: int,
        stored_index: int,
        stored: bytes,
        was: int | None,
    ) -> None:
        """``was`` is where the stored tree has a leaf of this hash, if anywhere nearby."""
        if stored == leaf_hash:
            self.moved = 0
        else:
            self._trouble(index)
            if was is None:
                self.found.error(
                    position, index, "leaf differs from the stored tree: the event was changed"
                )
            elif position - was != self.moved:
                self.moved = position - was
                self.found.error(
                    position, index, f"this event was at position {was} in the stored tree (moved)"
                )
        if stored_index - index != self.offset:
            self.offset = stored_index - index
            self._trouble(index)
            self.found.error(
                position, index, f"the stored tree has this event at leaf {stored_index}"
            )

    def _trouble(self, index: int) -> None:
        if self.first_bad_leaf is None or index < self.first_bad_leaf:
            self.first_bad_leaf = index

    # --------------------------------------------------------- recomputed tree

    def _grow(self, hashes: list[bytes]) -> None:
        start = 0
        while True:
            self._checkpoints_at_size()
            if start == len(hashes):
                return
            stop = len(hashes)
            if self.next_checkpoint is not None:
                stop = min(stop, start + self.next_checkpoint[0] - self.size)
            self._append(hashes[start:stop])
            start = stop

    def _append(self, hashes: list[bytes]) -> None:
        before = self.size
        nodes = complete_nodes_after_append(before, hashes, self.frontier)
        self.size += len(hashes)
        self.frontier = right_edge_after_append(before, self.size, nodes, self.frontier)
        if self.has_tree:
            self._compare_nodes(nodes[len(hashes) :], before)

    def _compare_nodes(self, nodes: list[tuple[int, int, bytes]], size_before: int) -> None:
        """``nodes``: the interior nodes that appending to ``size_before`` completed, in
        (level, index) order, as ``complete_nodes_after_append`` gives them."""
        if not nodes:
            return
        rows = self.sql.nodes(size_before, self.size)
        if self.first_bad_leaf is None and self.size <= self.stored_size and rows == nodes:
            return  # all stored, all equal
        stored = {(level, index): bytes(value) for level, index, value in rows}
        for level, index, value in nodes:
            end = (index + 1) << level
            if end > self.stored_size:
                continue  # the stored tree has not reached this node yet
            if self.first_bad_leaf is not None and end > self.first_bad_leaf:
                continue  # explained by a leaf already reported
            if stored.get((level, index)) != value:
                self.bad_nodes.append((level, index))

    # ------------------------------------------------------------- checkpoints

    def _checkpoints_at_size(self) -> None:
        while self.next_checkpoint is not None and self.next_checkpoint[0] <= self.size:
            self._check_checkpoint(*self.next_checkpoint)
            self.next_checkpoint = next(self.checkpoints, None)

    def _check_checkpoint(self, size: int, root: bytes, note: str, signed_at: str) -> None:
        """The notary's signature, the stored columns, and the root over ``size`` leaves."""
        self.checked_checkpoints += 1
        where = f"checkpoint {size} (signed {signed_at})"
        try:
            checkpoint = parse_checkpoint(verify_note(note, [(self.origin, self.notary_key)]))
        except NoteError as exc:
            self.found.error(None, None, f"{where}: not signed by the notary's key: {exc}")
            return
        if (checkpoint.origin, checkpoint.size, checkpoint.root_hash) != (self.origin, size, root):
            self.found.error(None, None, f"{where}: the stored size or root is not what was signed")
        recomputed = root_from_nodes(size, self.frontier) if size else EMPTY_ROOT
        if recomputed == checkpoint.root_hash:
            return
        if self.first_bad_checkpoint is None:
            self.first_bad_checkpoint = size
            self.found.error(
                None, None, f"{where}: its root is not the root of the log's first {size} events"
            )
        else:
            self.later_bad_checkpoints.append(size)

    def finish(self, keys: Mapping[str, Mapping[str, _Key]]) -> None:
        """Report what only the end of the log shows, then check the cosignatures."""
        if self.has_tree:
            for row in self.sql.leaves(self.last_position, None):
                self._deleted(*row)
        self._checkpoints_beyond_the_log()
        if self.later_bad_checkpoints:
            sizes = self.later_bad_checkpoints
            self.found.error(
                None,
                None,
                f"{len(sizes)} later checkpoints (sizes {sizes[0]} to {sizes[-1]}) do not match "
                "the log either",
            )
        if self.bad_nodes:
            level, index = self.bad_nodes[0]
            self.found.error(
                None,
                index << level,
                f"{len(self.bad_nodes)} stored tree nodes differ from the tree recomputed from "
                f"the log, the first at level {level}, index {index}",
            )
        if self.has_checkpoints:
            self._check_cosignatures(keys)

    def _checkpoints_beyond_the_log(self) -> None:
        while self.next_checkpoint is not None:
            size = self.next_checkpoint[0]
            self.checked_checkpoints += 1
            self.found.error(
                None,
                None,
                f"checkpoint {size}: covers {size} events, the log holds {self.size} (deleted)",
            )
            self.next_checkpoint = next(self.checkpoints, None)

    def _check_cosignatures(self, keys: Mapping[str, Mapping[str, _Key]]) -> None:
        query = select(
            COSIGNATURES.c.size, COSIGNATURES.c.witness, COSIGNATURES.c.line, CHECKPOINTS.c.note
        ).join(CHECKPOINTS, CHECKPOINTS.c.size == COSIGNATURES.c.size)
        for size, witness, line, note in self.conn.execute(query.order_by(COSIGNATURES.c.size)):
            problem = _cosignature_problem(str(line), str(note), witness, keys.get(witness, {}))
            if problem is not None:
                self.found.error(
                    None, None, f"checkpoint {size}: the cosignature by {witness} {problem}"
                )


def _cosignature_problem(
    line: str, note: str, witness: str, keys: Mapping[str, _Key]
) -> str | None:
    try:
        body, _ = parse_note(note)
        _, (signature,) = parse_note(body + "\n" + line)
    except (NoteError, ValueError) as exc:
        return f"is malformed: {exc}"
    for key in keys.values():
        if cosigner_key_id(witness, key.public_key) != signature.key_id:
            continue
        try:
            timestamp = verify_cosignature(line, body, witness, key.public_key)
        except NoteError:
            return "does not verify"
        at = datetime.fromtimestamp(timestamp, UTC)
        if compromised(at, at, key.compromised_since):
            since = format_utc(key.compromised_since) if key.compromised_since else ""
            return f"is {finding(witness, key_id(key.public_key), since)}"
        return None
    return "is not by a key of that party"


# ------------------------------------------------------------------------ reading


class _TreeSql:
    """Raw reads of the stored tree (the driver's tuples, no per-row processing)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        quote = conn.dialect.identifier_preparer.format_table
        self.mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        self.leaves_table, self.nodes_table = quote(LEAVES), quote(NODES)
        self.nodes_sql = (
            f"SELECT level, idx, hash FROM {self.nodes_table} WHERE level = {self.mark} "
            f"AND idx BETWEEN {self.mark} AND {self.mark} ORDER BY idx"
        )

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, tuple(params))
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def stored_extent(self) -> tuple[int, int]:
        """The stored tree's size and the position of its last leaf."""
        rows = self._rows(
            f"SELECT leaf_index, position FROM {self.leaves_table} "
            f"ORDER BY leaf_index DESC LIMIT {self.mark}",
            (1,),
        )
        return (0, 0) if not rows else (int(rows[0][0]) + 1, int(rows[0][1]))

    def leaves(self, after: int, until: int | None) -> list[tuple[int, int, bytes]]:
        """Stored ``(position, leaf index, hash)`` for positions in ``(after, until]``."""
        sql = (
            f"SELECT position, leaf_index, leaf_hash FROM {self.leaves_table} "
            f"WHERE position > {self.mark}"
        )
        params: list[Any] = [after]
        if until is not None:
            sql += f" AND position <= {self.mark}"
            params.append(until)
        # Drivers give the hashes as bytes; only a mismatch needs them as keys.
        return self._rows(sql + " ORDER BY position", params)

    def nodes(self, size_before: int, size_after: int) -> list[tuple[int, int, bytes]]:
        """The stored interior nodes that growing the tree from ``size_before`` to
        ``size_after`` leaves completes, in (level, index) order."""
        # A query per level reads the primary key in order; one query with OR sorts.
        rows: list[tuple[int, int, bytes]] = []
        level = 1
        while (first := size_before >> level) < (end := size_after >> level):
            rows += self._rows(self.nodes_sql, (level, first, end - 1))
            level += 1
        return rows


def _checkpoint_rows(conn: Connection) -> Iterator[tuple[int, bytes, str, str]]:
    """Stored checkpoints by size, a page at a time."""
    after = -1
    columns = (CHECKPOINTS.c.size, CHECKPOINTS.c.root, CHECKPOINTS.c.note, CHECKPOINTS.c.signed_at)
    while True:
        query = select(*columns).where(CHECKPOINTS.c.size > after).order_by(CHECKPOINTS.c.size)
        rows = [
            (int(s), bytes(r), str(n), str(t)) for s, r, n, t in conn.execute(query.limit(1000))
        ]
        if not rows:
            return
        yield from rows
        after = rows[-1][0]


class _EventSql:
    """Raw reads of the events table."""

    def __init__(self, conn: Connection, ledger: Ledger) -> None:
        self.conn = conn
        table = ledger.storage.events_table
        name = conn.dialect.identifier_preparer.format_table(table)
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        # The state as bytes even where a tampered SQLite row holds text.
        blob = "BYTEA" if conn.dialect.name == "postgresql" else "BLOB"
        columns = f"id, originator_id, originator_version, topic, CAST(state AS {blob})"
        self.page_sql = f"SELECT {columns} FROM {name} WHERE id > {mark} ORDER BY id LIMIT {mark}"
        self.count_sql = f"SELECT count(*) FROM {name}"
        self.states_sql = (
            f"SELECT CAST(state AS {blob}) FROM {name} WHERE topic IN ({mark}, {mark})"
        )
        self.plain = _plain_state(ledger)

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, tuple(params))
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def count(self) -> int:
        return int(self._rows(self.count_sql, ())[0][0])

    def chunks(self, size: int) -> Iterator[list[Row]]:
        after, plain = _FIRST, self.plain
        while True:
            rows = self._rows(self.page_sql, (after, size))
            if not rows:
                return
            # Workers turn ids and topics into text; here only a configured cipher or
            # compressor is undone.
            yield rows if plain is bytes else [(p, o, v, t, plain(s)) for p, o, v, t, s in rows]
            after = rows[-1][0]

    def states(self, topics: tuple[str, str]) -> Iterator[bytes]:
        for (state,) in self._rows(self.states_sql, topics):
            yield self.plain(state)


def _plain_state(ledger: Ledger) -> Callable[[Any], bytes]:
    """Undo the mapper's cipher and compressor, if any (the ledger configures none)."""
    cipher, compressor = ledger.mapper.cipher, ledger.mapper.compressor
    if cipher is None and compressor is None:
        return bytes

    def plain(state: Any) -> bytes:
        data = bytes(state)
        if cipher is not None:
            data = cipher.decrypt(data)
        if compressor is not None:
            data = compressor.decompress(data)
        return data

    return plain


def _hex(originator_id: Any) -> str:
    """The 32 hex digits of a raw originator id (SQLite bytes, PostgreSQL ``UUID``)."""
    if isinstance(originator_id, (bytes, bytearray, memoryview)):
        return bytes(originator_id).hex()
    if isinstance(originator_id, uuid.UUID):
        return originator_id.hex
    return repr(originator_id)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return repr(value)


def _registered_keys(
    events: _EventSql, ledger: Ledger, specs: Mapping[str, _Spec]
) -> dict[str, bytes]:
    """Key id to raw public key, for the notary and every key any stored row registers.

    Whether a key was the signer's, and valid, when it signed is decided in log order;
    here only key material is collected, so that workers can check signatures.
    """
    notary = decode_public_key(ledger.identity.notary_public_key)
    keys = {ledger.identity.notary_key_id: bytes(notary)}
    topics = (specs["PartyAdmitted"].topic, specs["KeyAdded"].topic)
    for state in events.states(topics):
        try:
            document = orjson.loads(state)
            public_key = decode_public_key(document["envelope"]["payload"]["public_key"])
        except (ValueError, TypeError, KeyError, LedgerError):
            continue  # the row itself is reported when its turn comes
        keys[key_id(public_key)] = bytes(public_key)
    return keys


# ------------------------------------------------------------------------ entry point


def verify_ledger(
    ledger: Ledger,
    *,
    workers: int | None = None,
    chunk_size: int = CHUNK_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Verify the whole ledger (see the module docstring).

    ``workers`` defaults to the number of CPUs (a ledger of at most two chunks is checked
    in this process); ``progress(done, total)`` is called after each chunk.
    """
    with ledger.engine.connect() as conn, _snapshot(conn, ledger):
        found = _Findings()
        log = _LogCheck(ledger, found)
        tree = _TreeCheck(conn, found, ledger, set(inspect(conn).get_table_names()))
        events = _EventSql(conn, ledger)
        total = events.count()
        wanted = (os.cpu_count() or 1) if workers is None else workers
        context = RowContext(
            _registered_keys(events, ledger, log.specs),
            log.origin,
            {name: spec.topic for name, spec in log.specs.items()},
        )
        runner = _Runner(1 if total <= 2 * chunk_size else max(wanted, 1), context)
        done = 0
        try:
            with collector_paused():
                for chunk in runner.run(events.chunks(chunk_size)):
                    log.events(chunk, done)
                    tree.add(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, max(total, done))
        finally:
            runner.close()
        tree.finish(log.keys)
    problems = sorted(found.problems, key=lambda p: (p.position is None, p.position or 0))
    return Report(done, tree.checked_checkpoints, tree.stored_size, problems)


@contextmanager
def _snapshot(conn: Connection, ledger: Ledger) -> Iterator[None]:
    """Read everything from one snapshot, even while the ledger takes appends; give the
    pooled connection back as it was lent."""
    if ledger.settings.is_postgres:
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try:
            yield
        finally:
            conn.rollback()
        return
    raw: Any = conn.connection.dbapi_connection
    # Pages mapped, not copied, from the file: one pass reads the whole log.
    raw.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")
    try:
        if not raw.in_transaction:
            # A deferred BEGIN: the first read fixes the snapshot (the ledger runs in WAL
            # mode).
            conn.exec_driver_sql("BEGIN")
        yield
    finally:
        conn.rollback()
        raw.execute("PRAGMA mmap_size=0")
