"""Each stored row on its own: decoded, hashed and its signature checked (in workers)."""

from __future__ import annotations

import binascii
import hashlib
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
from nacl.bindings import crypto_sign_open
from nacl.exceptions import CryptoError
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from ledger.canonical import FOUR_BYTE_UTF8, canonical_bytes, has_float
from ledger.domain.key_history import ALL_KEY_EVENTS
from ledger.errors import LedgerError
from ledger.keys import decode_public_key, key_id
from ledger.log.envelope import ENVELOPE_DOMAIN, REQUIRED_MEMBERS
from ledger.log.leaf import (
    LEAF_HEAD,
    LEAF_PREFIX,
    event_hash_from_parts,
    leaf_from_parts,
    plain_tail,
    written_by_part,
)
from ledger.log.merkle import leaf_hash as hash_leaf

if TYPE_CHECKING:
    from ledger.application import Ledger
    from ledger.log.verify.chain import Spec


#: Rows per page read and per chunk handed to a worker.

CHUNK_SIZE = 1000
MMAP_BYTES = 1 << 30
# Near the end of the log a chunk holds at most 1/_TAIL_SHARE of the rows left (and at
# least an eighth of a full chunk).
_TAIL_SHARE = 6

Row = tuple[int, Any, Any, Any, bytes]
"""A raw event row as the driver returns it: position, originator id, version, topic, state."""

# Signature states a worker reports.
SIGNATURE_OK, SIGNATURE_BAD, SIGNATURE_UNKNOWN_KEY, SIGNATURE_MALFORMED = 1, 0, -1, -2

_REQUIRED = frozenset(REQUIRED_MEMBERS)
_ALLOWED = _REQUIRED | {"reason", "person"}
_TEXT_MEMBERS = ("ledger", "type", "subject", "signer", "key", "signed_at", "meaning")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]00:00)", re.ASCII)
_FIRST = -(2**63)


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
    subject = originator.hex() if type(originator) is bytes else hex_of(originator)
    if state[:12] != LEAF_HEAD:
        return _check_decoded(row, subject, context, opener)
    try:
        document = orjson.loads(state)
        envelope = document["envelope"]
        recorded_at = document["recorded_at"]
        signature = document["signature"]
        written_by = document.get("written_by")
        tail = plain_tail(recorded_at, signature, _written_by_part(written_by))
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeEncodeError, LedgerError):
        return _check_decoded(row, subject, context, opener)
    signed = state[12 : len(state) - len(tail)]
    if (
        len(document) != (3 if written_by is None else 4)
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
        LEAF_PREFIX + state,
        event_hash_from_parts(signed, b'"' + signature.encode() + b'"'),
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
        # The shape check leaves only the payload, a reason and a person to hold a float.
        float_free = not any(
            has_float(value)
            for value in (envelope["payload"], envelope.get("reason"), envelope.get("person"))
        )
        canonical = canonical_bytes(envelope, float_free=float_free)
        signature_json = encode_basestring(signature).encode("utf-8")
        recorded_json = encode_basestring(recorded_at).encode("utf-8")
    except (LedgerError, UnicodeEncodeError) as exc:
        return _broken(row, subject, f"envelope cannot be canonicalised: {exc}")
    try:
        written_json = _written_by_part(document.get("written_by"))
    except LedgerError as exc:
        return _broken(row, subject, f"stored state is malformed: {exc}")
    # RFC 8785 sorts members, so these are the canonical forms of {envelope, recorded_at,
    # signature, written_by} (the leaf) and {envelope, signature} (the event hash).
    leaf = LEAF_PREFIX + leaf_from_parts(canonical, recorded_json, signature_json, written_json)
    # Only the library's older JSON form (which has a timestamp) is not the leaf itself.
    not_leaf = "timestamp" not in document and bytes(state) != leaf[1:]
    if state[:12] == LEAF_HEAD:
        leaf = LEAF_PREFIX + bytes(state)  # what the tree hashed
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
        event_hash_from_parts(canonical, signature_json),
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
    shared: tuple[Any, ...] = (
        subject,
        event_type,
        envelope["subject"],
        envelope["prev"],
        hashlib.sha256(hashed).hexdigest(),
        envelope["signer"],
        envelope["key"],
        envelope["signed_at"],
        recorded_at,
    )
    if opener.texts is not None:
        keep = opener.texts.setdefault
        shared = tuple(map(keep, shared, shared))
    subject, event_type, envelope_subject, prev, digest, signer, key, signed_at, recorded_at = (
        shared
    )
    return (
        position,
        subject,
        hashlib.sha256(leaf).digest(),
        errors + form_errors if form_errors else errors,
        event_type,
        envelope_subject,
        envelope["version"],
        prev,
        digest,
        signer,
        key,
        signed_at,
        posix_time(signed_at),
        opener.check(context.keys.get(key), signed, signature),
        recorded_at,
        envelope["payload"] if event_type in ALL_KEY_EVENTS and topic == registered else None,
    )


def _written_by_part(written_by: Any) -> bytes:
    """The leaf's ``written_by`` member as stored (R31): absent in older leaves, else an
    object of a software version (text) and a schema version (integer)."""
    if written_by is None:
        return b""
    if (
        type(written_by) is not dict
        or written_by.keys() != {"schema_version", "software_version"}
        or type(schema := written_by["schema_version"]) is not int
        or type(software := written_by["software_version"]) is not str
    ):
        raise LedgerError("written_by is not {schema_version, software_version}")
    # A log holds a handful of versions: each is canonicalised once.
    part = _WRITTEN_BY.get((schema, software))
    if part is None:
        part = written_by_part(written_by)
        _remember_pure(_WRITTEN_BY, (schema, software), part)
    return part


_WRITTEN_BY: dict[tuple[int, str], bytes] = {}
_TIMES: dict[str, float | None] = {}
_MEMO_LIMIT = 4096


def _remember_pure(memo: dict[Any, Any], key: Any, value: Any) -> None:
    """Keep a pure function's value, within a bounded memo (a tampered log may hold many
    distinct inputs)."""
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[key] = value


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
    """Ed25519 checks of envelopes, with PyNaCl's ``crypto_sign_open``.

    For rows checked in a worker, ``texts`` gathers the texts they share (subjects,
    hashes that are the next event's ``prev``, signers, keys, times): each is kept once,
    so that the chunk pickles each once.
    """

    def __init__(self, texts: dict[Any, Any] | None = None) -> None:
        self.texts = texts

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
        try:
            crypto_sign_open(b"".join((raw, ENVELOPE_DOMAIN, canonical)), public_key)
        except CryptoError:
            return SIGNATURE_BAD
        return SIGNATURE_OK


def posix_time(text: str) -> float | None:
    """An RFC 3339 UTC time (see :func:`parse_time`) as a POSIX timestamp, or ``None``."""
    try:
        return _TIMES[text]
    except KeyError:
        pass
    # Events signed or recorded together share their times: each is parsed once.
    value = _posix_time(text)
    _remember_pure(_TIMES, text, value)
    return value


def _posix_time(text: str) -> float | None:
    if not TIME.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


class EventSql:
    """Raw reads of the events table, in the caller's snapshot."""

    def __init__(self, conn: Connection, ledger: Ledger) -> None:
        self.conn = conn
        table = ledger.storage.events_table
        name = conn.dialect.identifier_preparer.format_table(table)
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        # The state as bytes even where a tampered SQLite row holds text.
        blob = "BYTEA" if conn.dialect.name == "postgresql" else "BLOB"
        columns = f"id, originator_id, originator_version, topic, CAST(state AS {blob})"
        self.range_sql = (
            f"SELECT {columns} FROM {name} WHERE id > {mark} AND id <= {mark} ORDER BY id"
        )
        self.bound_sql = (
            f"SELECT id FROM {name} WHERE id > {mark} ORDER BY id LIMIT 1 OFFSET {mark}"
        )
        self.extent_sql = f"SELECT count(*), max(id) FROM {name}"
        marks = ", ".join([mark] * 4)
        self.states_sql = f"SELECT CAST(state AS {blob}) FROM {name} WHERE topic IN ({marks})"
        self.plain = _Plain(ledger.mapper.cipher, ledger.mapper.compressor)

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return _fetch(self.conn.connection.dbapi_connection, sql, params)

    def extent(self) -> tuple[int, int]:
        """How many rows there are, and the last position."""
        count, last = self._rows(self.extent_sql, ())[0]
        return int(count), _FIRST if last is None else int(last)

    def ranges(self, size: int, total: int, last: int) -> Iterator[tuple[int, int]]:
        """Position ranges ``(after, until]`` of at most ``size`` rows, the last one up to
        ``last``; ``total`` is how many rows there are.

        Ranges shrink as the log runs out, so that no worker is left checking a whole
        chunk while the others have nothing to do. They never depend on the number of
        workers: how the stored tree's leaves are compared, a chunk at a time, does not
        either.
        """
        after, left = _FIRST, total
        while left > 0:
            step = min(size, max(left // _TAIL_SHARE, size // 8, 1))
            found = self._rows(self.bound_sql, (after, step - 1))
            until = last if not found else int(found[0][0])
            yield after, until
            after, left = until, left - step
            if until >= last:
                return

    def between(self, after: int, until: int) -> list[Row]:
        """The rows at positions in ``(after, until]``, in order."""
        return _plain_rows(
            _fetch(self.conn.connection.dbapi_connection, self.range_sql, (after, until)),
            self.plain,
        )

    def source(self) -> RowSource:
        """What a worker needs to read rows of this snapshot on a connection of its own."""
        snapshot = None
        if self.conn.dialect.name == "postgresql":
            snapshot = str(self._rows("SELECT pg_export_snapshot()", ())[0][0])
        url = self.conn.engine.url.render_as_string(hide_password=False)
        return RowSource(url, self.range_sql, snapshot, self.plain)

    def states(self, topics: tuple[str, str, str, str]) -> Iterator[bytes]:
        """The states stored under any of the four topics (one pass over the table)."""
        for (state,) in self._rows(self.states_sql, topics):
            yield self.plain(state)


@dataclass(frozen=True, slots=True)
class RowSource:
    """How a worker reads rows on a connection of its own: the database, the range query,
    and on PostgreSQL the snapshot the caller exported.

    On SQLite the caller bounds each range by the last position of its snapshot: the log
    only grows, one writer appending at ever higher positions, so every row up to that
    position reads the same in any later snapshot.
    """

    url: str
    range_sql: str
    snapshot: str | None
    plain: _Plain


class RangeReader:
    """A worker's own connection to the ledger's database, reading rows by range."""

    def __init__(self, source: RowSource) -> None:
        self.source = source
        self.engine = create_engine(source.url, poolclass=NullPool)
        self.raw: Any = self.engine.raw_connection()
        cursor = self.raw.cursor()
        try:
            if self.engine.dialect.name == "sqlite":
                cursor.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
            elif source.snapshot is not None:
                if not _SNAPSHOT_ID.fullmatch(source.snapshot):
                    raise ValueError(f"not a snapshot id: {source.snapshot!r}")
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                cursor.execute(f"SET TRANSACTION SNAPSHOT '{source.snapshot}'")
        finally:
            cursor.close()

    def between(self, after: int, until: int) -> list[Row]:
        """The rows at positions in ``(after, until]``, in order."""
        rows = _fetch(self.raw.driver_connection, self.source.range_sql, (after, until))
        return _plain_rows(rows, self.source.plain)


_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f-]+", re.ASCII)


def _fetch(raw: Any, sql: str, params: Sequence[Any]) -> list[Any]:
    cursor = raw.cursor()
    try:
        cursor.execute(sql, tuple(params))
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _plain_rows(rows: list[Any], plain: _Plain) -> list[Row]:
    # Workers turn ids and topics into text; here only a configured cipher or compressor
    # is undone.
    if plain.cipher is None and plain.compressor is None:
        return rows
    return [(p, o, v, t, plain(s)) for p, o, v, t, s in rows]


@dataclass(frozen=True, slots=True)
class _Plain:
    """Undoes the mapper's cipher and compressor, if any (the ledger configures none)."""

    cipher: Any
    compressor: Any

    def __call__(self, state: Any) -> bytes:
        data = bytes(state)
        if self.cipher is not None:
            data = self.cipher.decrypt(data)
        if self.compressor is not None:
            data = self.compressor.decompress(data)
        return data


def hex_of(originator_id: Any) -> str:
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


def registered_keys(
    events: EventSql, ledger: Ledger, specs: Mapping[str, Spec]
) -> dict[str, bytes]:
    """Key id to raw public key, for the notary and every key any stored row registers.

    Whether a key was the signer's, and valid, when it signed is decided in log order;
    here only key material is collected, so that workers can check signatures.
    """
    notary = decode_public_key(ledger.identity.notary_public_key)
    keys = {ledger.identity.notary_key_id: bytes(notary)}
    topics = (
        specs["PartyAdmitted"].topic,
        specs["KeyAdded"].topic,
        specs["PersonAdmitted"].topic,
        specs["PersonKeyAdded"].topic,
    )
    for state in events.states(topics):
        try:
            document = orjson.loads(state)
            public_key = decode_public_key(document["envelope"]["payload"]["public_key"])
        except (ValueError, TypeError, KeyError, LedgerError):
            continue  # the row itself is reported when its turn comes
        keys[key_id(public_key)] = bytes(public_key)
    return keys
