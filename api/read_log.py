"""The read-access log (R11): every read of GxP data by a party other than its owner.

**What is GxP data.** :data:`GXP_FIELDS` names the GraphQL fields that answer with a batch's
GxP data: its records, series, tags, submissions and excursions, its trace, the results a
CPV analysis uses, its audit-trail entries and the signed envelopes of its events. Their
resolvers call :func:`note_read` with the batch they answer for; nothing else is logged.

**Whose data it is.** :func:`data_owners`: a batch's GxP data belongs to the CMO of the
batch's agreement, which made the batch and submitted its data. Every other reader
(the sponsor, a grantee, the notary) is logged.

**When a read is written.** The :class:`ReadLogging` extension collects the notes of one
operation and, once it has run and before its answer leaves, appends one row per batch read
to ``read_access`` (reader, the key the request was signed with, agreement, batch, owner,
fields, time on the server's clock, SHA-256 of the query and its variables, operation
name), committed before the response is written: a process killed after answering has
already stored the row. A read that cannot be recorded is not answered (``UNAVAILABLE``).
Envelopes delivered by the ``events`` subscription are not logged: only queries are.

**How the log is made tamper-evident.** :meth:`ReadLog.commit_pending`, run by the app at
most every ``CMO_LEDGER_READ_LOG_INTERVAL`` seconds, takes the rows not yet committed, has
the notary sign one ``ReadsRecorded`` event (:mod:`ledger.domain.reads`) whose ``root`` is
the RFC 9162 Merkle root of the rows' canonical bytes (:func:`row_bytes`), and marks the
rows with the event's position, all in one transaction. Workers sharing a database take
turns (a PostgreSQL advisory transaction lock; SQLite's write lock), and a worker commits
only when no commitment was signed within the interval. :func:`verify_reads` recomputes
every root from the stored rows and names each commitment the rows no longer give.

The table is only ever inserted into, apart from setting ``committed_at`` once.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from eventsourcing.utils import get_topic
from graphql import GraphQLError
from nacl.signing import SigningKey
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    select,
    update,
)
from sqlalchemy.engine import Connection
from strawberry.extensions import SchemaExtension

from api.threads import in_thread
from ledger.application import Appended, Ledger
from ledger.canonical import canonical_bytes
from ledger.domain.parties import NOTARY
from ledger.domain.reads import READS_RECORDED
from ledger.domain.reads import ReadsRecorded as ReadsRecordedAggregate
from ledger.log.envelope import sign_envelope
from ledger.log.follow import begin_page
from ledger.log.locks import lock_key, xact_lock
from ledger.log.merkle import leaf_hash, root_of
from ledger.timeutil import format_utc, parse_utc
from projections.agreements import AGREEMENTS
from projections.temporal import current

if TYPE_CHECKING:
    from api.context import Context

__all__ = [
    "AUDIT_ENTRIES",
    "ENVELOPES",
    "GXP_FIELDS",
    "ReadLog",
    "ReadLogging",
    "commitments",
    "data_owners",
    "note_field",
    "note_read",
    "query_hash",
    "read_access",
    "row_bytes",
    "verify_reads",
]

log = logging.getLogger(__name__)

AUDIT_ENTRIES = "AuditTrail.edges"
"""The audit trail's entries (of a batch's events)."""
ENVELOPES = "LogEvent.envelope"
"""The signed envelope of a batch's event (it carries the data)."""
GXP_FIELDS = frozenset(
    {
        "Batch.discrete",
        "Batch.events",
        "Batch.continuous",
        "Batch.tags",
        "Batch.submissions",
        "Batch.excursions",
        "Batch.seriesExcursions",
        "Query.traceBatch",
        "Query.cpv",
        AUDIT_ENTRIES,
        ENVELOPES,
    }
)
"""The fields (``Type.field``, as the schema names them) whose answers are a batch's GxP
data; reading one for a batch of another party's data is logged."""

MAX_ROWS_PER_COMMITMENT = 10_000
"""Rows one ``ReadsRecorded`` commits at most: more wait for the next round."""

_ROW_COLUMNS = (
    "id",
    "reader",
    "key",
    "agreement",
    "batch",
    "owner",
    "fields",
    "operation",
    "query_sha256",
    "at",
)
_metadata = MetaData()
_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER keys
read_access = Table(
    "read_access",
    _metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("reader", String(64), nullable=False),
    Column("key", String(200), nullable=False),
    Column("agreement", String(36), nullable=False),
    Column("batch", String(200), nullable=False),
    Column("owner", String(64), nullable=False),
    Column("fields", String(1000), nullable=False),
    Column("operation", String(200)),
    Column("query_sha256", String(64), nullable=False),
    Column("at", String(40), nullable=False),
    Column("committed_at", BigInteger),
    Index("ix_read_access_owner_id", "owner", "id"),
    Index("ix_read_access_batch_id", "batch", "id"),
    Index("ix_read_access_committed_at", "committed_at"),
)

_NOTES: ContextVar[set[tuple[str, str, str]] | None] = ContextVar("read_notes", default=None)
_TOPIC = get_topic(ReadsRecordedAggregate.ReadsRecorded)  # type: ignore[attr-defined]
"""The stored topic of ``ReadsRecorded`` events."""
_UNLOGGED = "the read could not be logged, so it is not answered: retry"


def note_read(field: str, agreement: str | None, batch: str | None) -> None:
    """Note that the running operation answers ``field`` with data of ``batch`` (under
    ``agreement``); only fields of :data:`GXP_FIELDS` are noted."""
    notes = _NOTES.get()
    if notes is None or agreement is None or batch is None or field not in GXP_FIELDS:
        return
    notes.add((agreement, batch, field))


def note_field(info: Any, agreement: str | None, batch: str | None) -> None:
    """:func:`note_read` for the field ``info`` resolves (``strawberry.Info``)."""
    note_read(f"{info.path.typename}.{info.field_name}", agreement, batch)


def query_hash(query: str | None, variables: Mapping[str, Any] | None) -> str:
    """The lowercase hex SHA-256 of an operation's canonical JSON ``{query, variables}``."""
    document = {"query": query or "", "variables": dict(variables or {})}
    return hashlib.sha256(canonical_bytes(document)).hexdigest()


def data_owners(conn: Connection, agreements: Iterable[str]) -> dict[str, str]:
    """The owner of the GxP data of each agreement's batches: the agreement's CMO."""
    wanted = sorted(set(agreements))
    if not wanted:
        return {}
    rows = conn.execute(
        select(AGREEMENTS.c.agreement, AGREEMENTS.c.cmo).where(
            AGREEMENTS.c.agreement.in_(wanted), current(AGREEMENTS)
        )
    ).all()
    return {str(agreement): str(cmo) for agreement, cmo in rows}


def row_bytes(row: Mapping[str, Any]) -> bytes:
    """A row's canonical bytes (RFC 8785): the Merkle leaf its commitment hashes."""
    return canonical_bytes({name: row[name] for name in _ROW_COLUMNS})


def reads_root(rows: Sequence[Mapping[str, Any]]) -> str:
    """The Merkle root (hex) of ``rows`` in id order."""
    return root_of([leaf_hash(row_bytes(row)) for row in rows]).hex()


@dataclass(frozen=True, slots=True)
class Commitment:
    """A ``ReadsRecorded`` event: where it is and what it commits to."""

    position: int
    first: int
    last: int
    count: int
    root: str
    signed_at: str


class ReadLog:
    """Writes the read-access log, and has the notary commit to it."""

    def __init__(self, ledger: Ledger, notary_key: SigningKey) -> None:
        self._ledger = ledger
        self._key = notary_key
        self.interval = ledger.settings.read_log_interval

    def create_tables(self) -> None:
        """Create ``read_access`` if missing."""
        _metadata.create_all(self._ledger.engine, checkfirst=True)

    # ------------------------------------------------------------------ writing

    def record(
        self,
        reader: str,
        key: str,
        notes: Iterable[tuple[str, str, str]],
        query_sha256: str,
        operation: str | None,
    ) -> int:
        """Append one row per batch of ``notes`` (agreement, batch, field) that ``reader``
        does not own; the number of rows written."""
        fields: dict[tuple[str, str], set[str]] = {}
        for agreement, batch, field in notes:
            fields.setdefault((agreement, batch), set()).add(field)
        at = format_utc(self._ledger.clock.now())
        with self._ledger.storage.transaction(commit=True) as session:
            owners = data_owners(session.connection(), (a for a, _ in fields))
            rows = [
                {
                    "reader": reader,
                    "key": key,
                    "agreement": agreement,
                    "batch": batch,
                    "owner": owners[agreement],
                    "fields": ",".join(sorted(names)),
                    "operation": None if operation is None else operation[:200],
                    "query_sha256": query_sha256,
                    "at": at,
                }
                for (agreement, batch), names in sorted(fields.items())
                if agreement in owners and owners[agreement] != reader
            ]
            if rows:
                session.execute(read_access.insert(), rows)
        return len(rows)

    def commit_pending(self, *, wait: bool = True) -> Commitment | None:
        """Commit the rows not yet committed with one notary-signed ``ReadsRecorded``;
        ``None`` when there are none, or (``wait``) when the last commitment is younger
        than the interval."""
        ledger = self._ledger
        with ledger.storage.transaction(commit=True) as session:
            begin_page(session, ledger)
            if ledger.settings.is_postgres:
                xact_lock(session, [lock_key(ledger.engine, "read-log")])
            conn = session.connection()
            if wait and self._committed_recently(conn):
                return None
            rows = [
                dict(row._mapping)
                for row in conn.execute(
                    select(read_access)
                    .where(read_access.c.committed_at.is_(None))
                    .order_by(read_access.c.id)
                    .limit(MAX_ROWS_PER_COMMITMENT)
                )
            ]
            if not rows:
                return None
            appended = self._sign(rows)
            ids = [row["id"] for row in rows]
            conn.execute(
                update(read_access)
                .where(read_access.c.id.in_(ids))
                .values(committed_at=appended.position)
            )
            payload = _payload(rows)
            return Commitment(appended.position, **payload, signed_at=appended.recorded_at)

    def _committed_recently(self, conn: Connection) -> bool:
        last = conn.execute(
            select(read_access.c.committed_at)
            .where(read_access.c.committed_at.is_not(None))
            .order_by(read_access.c.committed_at.desc())
            .limit(1)
        ).scalar()
        if last is None:
            return False
        found = self._ledger.read_at([int(last)]).get(int(last))
        if found is None:
            return False
        signed = parse_utc(str(found.event.envelope["signed_at"]), field="signed_at")
        elapsed = (self._ledger.clock.now() - signed).total_seconds()
        return elapsed < self.interval

    def _sign(self, rows: Sequence[Mapping[str, Any]]) -> Appended:
        ledger = self._ledger
        payload = _payload(rows)
        envelope = {
            "ledger": ledger.identity.origin,
            "type": READS_RECORDED,
            "subject": str(uuid.uuid4()),
            "version": 1,
            "prev": None,
            "payload": payload,
            "signer": NOTARY,
            "key": ledger.identity.notary_key_id,
            "signed_at": format_utc(ledger.clock.now()),
            "meaning": "recorded",
            "reason": f"{payload['count']} reads of GxP data, rows {payload['first']} to "
            f"{payload['last']}",
        }
        return ledger.append(envelope, sign_envelope(envelope, self._key))

    async def run(self) -> None:
        """Commit pending rows every interval, until cancelled (the app's lifespan)."""
        while True:
            await anyio.sleep(self.interval)
            try:
                await in_thread(self.commit_pending)
            except Exception:  # the rows stay pending: the next round commits them
                log.exception("the notary could not commit the read-access log")

    # ------------------------------------------------------------------ reading

    def commitments(self, positions: Iterable[int]) -> dict[int, Commitment]:
        """The ``ReadsRecorded`` events at ``positions``, by position."""
        return commitments(self._ledger, positions)


def commitments(ledger: Ledger, positions: Iterable[int]) -> dict[int, Commitment]:
    """The ``ReadsRecorded`` events at ``positions`` (others are left out), by position."""
    found: dict[int, Commitment] = {}
    for position, recorded in ledger.read_at(sorted(set(positions))).items():
        envelope = recorded.event.envelope
        if envelope["type"] != READS_RECORDED:
            continue
        payload = envelope["payload"]
        found[position] = Commitment(
            position,
            int(payload["first"]),
            int(payload["last"]),
            int(payload["count"]),
            str(payload["root"]),
            str(envelope["signed_at"]),
        )
    return found


def _payload(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "first": int(rows[0]["id"]),
        "last": int(rows[-1]["id"]),
        "count": len(rows),
        "root": reads_root(rows),
    }


def verify_reads(ledger: Ledger) -> list[str]:
    """What no longer matches the notary's signed commitments, one problem per
    ``ReadsRecorded`` whose rows (recomputed from the table) give another range, count or
    root, or are gone, and per group of rows naming a position that holds none. Empty when
    the read-access log is as committed."""
    grouped: dict[int, list[dict[str, Any]]] = {}
    events = ledger.storage.events_table
    with ledger.engine.connect() as conn:
        for row in conn.execute(
            select(read_access)
            .where(read_access.c.committed_at.is_not(None))
            .order_by(read_access.c.id)
        ):
            grouped.setdefault(int(row.committed_at), []).append(dict(row._mapping))
        signed_at = [
            int(p) for (p,) in conn.execute(select(events.c.id).where(events.c.topic == _TOPIC))
        ]
    signed = commitments(ledger, [*grouped, *signed_at])
    problems = [
        f"the rows of ReadsRecorded at position {position} are gone from the read-access log"
        for position in sorted(set(signed) - set(grouped))
    ]
    for position, rows in sorted(grouped.items()):
        commitment = signed.get(position)
        if commitment is None:
            problems.append(
                f"rows {rows[0]['id']}..{rows[-1]['id']} name position {position}, "
                "which holds no ReadsRecorded"
            )
            continue
        found = _payload(rows)
        expected = {
            "first": commitment.first,
            "last": commitment.last,
            "count": commitment.count,
            "root": commitment.root,
        }
        if found != expected:
            differ = ", ".join(name for name in expected if expected[name] != found[name])
            problems.append(
                f"the rows of ReadsRecorded at position {position} no longer match it "
                f"({differ}): the read-access log was altered"
            )
    return problems


class ReadLogging(SchemaExtension):
    """Records the GxP reads of each operation before its answer leaves (see the module)."""

    async def on_execute(self) -> AsyncIterator[None]:  # type: ignore[override]
        notes: set[tuple[str, str, str]] = set()
        _NOTES.set(notes)
        yield
        if not notes:
            return
        execution = self.execution_context
        context: Context = execution.context
        caller = context.party
        if caller is None:  # unsigned callers read no data
            return
        try:
            await in_thread(
                context.services.read_log.record,
                caller.party_id,
                caller.key_id,
                notes,
                query_hash(execution.query, execution.variables),
                execution.operation_name,
            )
        except Exception as error:
            # An unlogged read is not answered: the client gets the coded error, no data.
            log.exception("a read of GxP data could not be logged: its answer is withheld")
            result = execution.result
            if result is None:
                raise
            result.data = None
            result.errors = [GraphQLError(_UNLOGGED, original_error=error)]
