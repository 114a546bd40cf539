"""Openings of committed confidential elements, stored apart from the events.

The signed envelope carries each confidential element as a commitment; the opening
(salt and value, :class:`ledger.domain.commitments.Opening`) is written in the transaction
that stores its event, keyed by the commitment, and deleted by the owner's
``ElementsPurged`` in the transaction that stores the purge. The log never holds a value
that a purge must remove, so ``verify`` passes after any purge.

On SQLite the ledger's connections delete with ``secure_delete`` (see
``ledger.log.storage``), and :func:`purge` truncates the write-ahead log once committed,
so a purged value leaves no bytes in the database files.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import nullcontext

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text, delete, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from ledger.domain.commitments import Opening, Openings
from ledger.errors import ValidationFailed

__all__ = [
    "OPENINGS",
    "create_openings",
    "purge_openings",
    "read_openings",
    "store_openings",
    "truncate_wal",
]

metadata = MetaData()
OPENINGS = Table(
    "ledger_openings",
    metadata,
    Column("commitment", String(64), primary_key=True),
    Column("subject", String(36), nullable=False),
    Column("version", Integer, nullable=False),
    Column("record", String(128), nullable=False),
    Column("element", String(64), nullable=False),
    Column("salt", String(64), nullable=False),
    Column("value", Text, nullable=False),
    Index("ix_ledger_openings_event", "subject", "version"),
)


def create_openings(engine: Engine) -> None:
    """Create the openings table when missing."""
    metadata.create_all(engine, checkfirst=True)


def store_openings(session: Session, subject: str, version: int, openings: Openings) -> None:
    """Store the openings the rule of event ``(subject, version)`` took; refuse a
    commitment that another event already opened, naming the opening as it was sent."""
    if not openings.taken:
        return
    wanted = list(openings.taken)
    query = select(OPENINGS.c.commitment).where(OPENINGS.c.commitment.in_(wanted))
    for commitment in session.scalars(query):
        index = openings.offered.index(openings.taken[commitment])
        raise ValidationFailed(
            f"commitment {commitment} is already opened by another event: commit with a fresh salt",
            field=f"{openings.prefix}[{index}]",
        )
    session.execute(
        OPENINGS.insert(),
        [
            {
                "commitment": commitment,
                "subject": subject,
                "version": version,
                "record": o.record,
                "element": o.element,
                "salt": o.salt,
                "value": o.value,
            }
            for commitment, o in openings.taken.items()
        ],
    )


def purge_openings(session: Session, commitments: Sequence[str]) -> int:
    """Delete the openings of ``commitments``; answers how many there were."""
    if not commitments:
        return 0
    deleted = session.execute(delete(OPENINGS).where(OPENINGS.c.commitment.in_(commitments)))
    return int(getattr(deleted, "rowcount", 0) or 0)


def truncate_wal(engine: Engine) -> None:
    """On SQLite, copy the write-ahead log into the database and empty it, so pages a
    purge overwrote leave no older copy behind; elsewhere nothing."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))


def read_openings(bind: Engine | Connection, commitments: Iterable[str]) -> dict[str, Opening]:
    """The stored openings of ``commitments`` (purged ones are absent), by commitment."""
    wanted = sorted(set(commitments))
    if not wanted:
        return {}
    found: dict[str, Opening] = {}
    columns = (
        OPENINGS.c.commitment,
        OPENINGS.c.record,
        OPENINGS.c.element,
        OPENINGS.c.salt,
        OPENINGS.c.value,
    )
    with bind.connect() if isinstance(bind, Engine) else nullcontext(bind) as conn:
        for start in range(0, len(wanted), 500):
            query = select(*columns).where(OPENINGS.c.commitment.in_(wanted[start : start + 500]))
            for commitment, record, element, salt, value in conn.execute(query):
                found[commitment] = Opening(record, element, salt, value)
    return found
