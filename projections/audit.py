"""The audit index: one row per event, for audit-trail queries and for resolving times.

``proj_audit`` holds position, leaf index, subject, version, type, signer, key, meaning,
reason, signed_at, recorded_at, the agreement and batch the event belongs to, and, for an
event a person signed, the person and the printed name their party admitted them with
(R5: a signature shows the signer's printed name, the time and the meaning). The
leaf index is dense (0, 1, 2, ...) in position order: the number of earlier events, so
it matches the Merkle leaf even where PostgreSQL positions have gaps.

``recorded_through`` is the latest ``recorded_at`` of any event up to the row's
position. It never decreases along the log, so :func:`resolve_time` is one index seek:
a time resolves to the last position whose whole prefix was recorded at or before it.
When clocks agree with log order (one writer) that is simply the last event recorded at
or before the time; when two writers' clocks interleave, no event recorded after the
time is ever counted in.

Rows are never changed: ``as_of(position)`` is ``position <= P``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from projections.temporal import POSITION
from projections.times import as_text
from projections.view import Page, View, state_table

if TYPE_CHECKING:
    from ledger.application import Ledger, Recorded

__all__ = ["AUDIT", "AuditView", "resolve_time"]

metadata = MetaData()

AUDIT = Table(
    "proj_audit",
    metadata,
    Column("position", POSITION, primary_key=True, autoincrement=False),
    Column("leaf_index", POSITION, nullable=False),
    Column("subject", String(36), nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", String(64), nullable=False),
    Column("signer", String(64), nullable=False),
    Column("key", String(32), nullable=False),
    Column("meaning", String(64), nullable=False),
    Column("reason", Text),
    Column("signed_at", String(40), nullable=False),
    Column("recorded_at", String(30), nullable=False),
    Column("recorded_through", String(30), nullable=False),
    Column("agreement", String(36)),
    Column("batch", String(64)),
    Column("person", String(64)),
    Column("printed_name", Text),
    Index("ix_proj_audit_leaf_index", "leaf_index", unique=True),
    Index("ix_proj_audit_recorded_through", "recorded_through", "position"),
    Index("ix_proj_audit_subject", "subject", "position"),
    Index("ix_proj_audit_agreement", "agreement", "position"),
    Index("ix_proj_audit_batch", "batch", "position"),
    Index("ix_proj_audit_signer", "signer", "position"),
)
AUDIT.info["position"] = "position"
STATE = state_table("proj_audit_state", metadata)


def resolve_time(conn: Connection, when: datetime | str) -> int:
    """The last position whose events were all recorded at or before ``when`` (0: none)."""
    text = as_text(when)
    found = conn.execute(
        select(AUDIT.c.position)
        .where(AUDIT.c.recorded_through <= text)
        .order_by(AUDIT.c.recorded_through.desc(), AUDIT.c.position.desc())
        .limit(1)
    ).scalar()
    return int(found or 0)


class AuditView(View):
    """One row per event, with its leaf index and its agreement and batch.

    An event's agreement and batch are those of its subject's first event, read from
    that event's own row (kept in memory for the process: they never change); the state
    holds only the printed names persons were admitted with.
    """

    name = "audit"
    #: 2: subjects' agreements and batches read from the rows, no longer kept in the state.
    version = 2
    tables = (AUDIT,)
    state = STATE

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(ledger)
        self._contexts: dict[str, Context] = {}
        self._last: tuple[int, str] | None = None  # leaf index and recorded_through so far

    def apply(self, session: Session, events: Sequence[Recorded]) -> None:
        """Every event gets a row; no handler dispatch needed."""
        page = self.new_page(session)
        contexts = self._contexts
        if len(contexts) > _CONTEXTS_LIMIT:
            contexts.clear()  # bounded memory; every context is in the table
        self._read_contexts(page.conn, events)
        last = self._last
        leaf, through = last if self.carried and last is not None else self._tail(page.conn)
        rows = []
        for recorded in events:
            leaf += 1
            envelope = recorded.event.envelope
            recorded_at = recorded.event.recorded_at
            if recorded_at > through:
                through = recorded_at
            subject = envelope["subject"]
            if envelope["version"] > 1:
                agreement, batch = contexts.get(subject, _NONE)
            else:
                agreement, batch = contexts[subject] = _context(page, envelope)
            person = envelope.get("person")
            printed = (
                None if person is None else page.state.fact(_printed(envelope["signer"], person))
            )
            rows.append(
                (  # in the order of AUDIT's columns
                    recorded.position,
                    leaf,
                    subject,
                    envelope["version"],
                    envelope["type"],
                    envelope["signer"],
                    envelope["key"],
                    envelope["meaning"],
                    envelope.get("reason"),
                    envelope["signed_at"],
                    recorded_at,
                    through,
                    agreement,
                    batch,
                    person,
                    printed,
                )
            )
        page.insert_values(AUDIT, rows)
        page.flush()
        self._last = (leaf, through)

    def _read_contexts(self, conn: Connection, events: Sequence[Recorded]) -> None:
        """Read in bulk the contexts of the page's subjects first seen on earlier pages."""
        contexts = self._contexts
        first = {r.event.envelope["subject"] for r in events if r.event.envelope["version"] == 1}
        wanted = sorted(
            {
                subject
                for r in events
                if (subject := r.event.envelope["subject"]) not in contexts and subject not in first
            }
        )
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            query = select(AUDIT.c.subject, AUDIT.c.agreement, AUDIT.c.batch).where(
                AUDIT.c.subject.in_(part), AUDIT.c.version == 1
            )
            for subject, agreement, batch in conn.execute(query):
                contexts[subject] = (agreement, batch)

    @staticmethod
    def _tail(conn: Connection) -> tuple[int, str]:
        last = conn.execute(_TAIL).first()
        return (-1, "") if last is None else (int(last[0]), str(last[1]))


# Built once: building and keying the statement anew each page cost more than running it.
_TAIL = (
    select(AUDIT.c.leaf_index, AUDIT.c.recorded_through).order_by(AUDIT.c.position.desc()).limit(1)
)


Context = tuple[str | None, str | None]
_NONE: Context = (None, None)
#: Subjects whose context the view keeps in memory before it forgets them all.
_CONTEXTS_LIMIT = 50_000


def _printed(party: str, person: str) -> str:
    """The state key of the printed name ``party`` admitted ``person`` with."""
    return f"printed/{party}/{person}"


def _context(page: Page, envelope: Any) -> Context:
    """The agreement and batch of a subject's first event."""
    payload = envelope["payload"]
    event_type = envelope["type"]
    if event_type == "PersonAdmitted":
        # Recorded before any signature of the person's: rows read it through the state.
        page.state.remember(_printed(payload["party"], payload["person"]), payload["printed_name"])
    agreement = payload.get("agreement")
    if event_type == "AgreementProposed":
        agreement = envelope["subject"]
    batch = payload.get("batch") if event_type == "BatchRegistered" else None
    if not isinstance(agreement, str):
        agreement = None
    if not isinstance(batch, str):
        batch = None
    return agreement, batch
