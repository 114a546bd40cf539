"""The ledger's database, the eventsourcing way: one factory builds the engine with its
options, and one :class:`Storage` hands out the engine, the events table, transactions and
tracking recorders. Nothing else reaches into the library's recorder.

``Settings.eventsourcing_env`` names :class:`LedgerFactory` as the ``PERSISTENCE_MODULE``;
the application builds it, and its datastore builds the engine:

* on PostgreSQL with ``pool_pre_ping``: a pooled connection is checked before use, so a
  database restart replaces the connections it broke instead of failing the next request
  on each of them;
* on SQLite as the library does (a file database, WAL mode, one writer at a time), with
  ``secure_delete`` on every connection: deleted rows (a purged opening) are overwritten,
  not left in free pages.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Iterator
from contextlib import AbstractContextManager
from typing import Any, cast
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import (
    SQLAlchemyApplicationRecorder,
    SQLAlchemyTrackingRecorder,
)
from sqlalchemy import Integer, Table, bindparam, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ledger.errors import ConfigurationError

__all__ = ["LedgerDatastore", "LedgerFactory", "Storage"]


class LedgerDatastore(SQLAlchemyDatastore):
    """The library's datastore, with the engine options the ledger needs."""

    def __init__(self, *, url: str | None = None, **options: Any) -> None:
        if url is not None and url.startswith("postgresql"):
            options.setdefault("pool_pre_ping", True)
        super().__init__(url=url, **options)
        if self.engine is not None and self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _secure_delete)


def _secure_delete(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA secure_delete = ON")
    cursor.close()


class LedgerFactory(SQLAlchemyFactory):
    """eventsourcing-sqlalchemy's infrastructure factory, with :class:`LedgerDatastore`."""

    datastore_class = LedgerDatastore


class Storage:
    """The events table and its database, as the application's recorder keeps them."""

    def __init__(self, recorder: ApplicationRecorder) -> None:
        if not isinstance(recorder, SQLAlchemyApplicationRecorder):
            raise ConfigurationError(
                "the ledger stores its events through eventsourcing-sqlalchemy",
                field="CMO_LEDGER_DATABASE_URL",
            )
        self._recorder = recorder
        self._datastore = recorder.datastore
        table = self.events_table
        # Built once: building and keying the statement anew cost more than running it.
        self._tail = (
            select(table.c.id, table.c.originator_id)
            .where(table.c.id > bindparam("after", type_=Integer))
            .order_by(table.c.id)
            .limit(bindparam("limit", type_=Integer))
        )
        self._any_event = (
            select(table.c.id).where(table.c.originator_id == bindparam("subject")).limit(1)
        )
        self._subjects_in = (
            select(table.c.originator_id)
            .where(table.c.originator_id.in_(bindparam("subjects", expanding=True)))
            .distinct()
        )

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine shared by the events, the views and the Merkle tables."""
        return cast(Engine, self._datastore.engine)

    @property
    def events_table(self) -> Table:
        """The table of stored events (``id`` is the log position)."""
        return cast(Table, self._recorder.events_record_cls.__table__)

    def transaction(self, *, commit: bool) -> AbstractContextManager[Session]:
        """A session in the library's transaction (on SQLite, under its write lock)."""
        return cast(AbstractContextManager[Session], self._datastore.transaction(commit=commit))

    def tracking_recorder(self, table_name: str) -> SQLAlchemyTrackingRecorder:
        """A tracking recorder on its own table in this database."""
        with warnings.catch_warnings():
            # The library names every tracking record class alike; SQLAlchemy says so once
            # per table. The tables themselves are distinct.
            warnings.filterwarnings("ignore", "This declarative base already contains")
            return SQLAlchemyTrackingRecorder(
                datastore=self._datastore, tracking_table_name=table_name
            )

    def subjects_after(self, position: int, limit: int) -> list[tuple[int, UUID]]:
        """``(position, subject)`` of up to ``limit`` events stored after ``position``, in
        log order (one query, no event bodies)."""
        # A plain connection: a read of committed rows needs no session nor the library's
        # transaction (on SQLite, its lock).
        with self.engine.connect() as connection:
            rows = connection.execute(self._tail, {"after": position, "limit": limit})
            return [(row.id, _uuid(row.originator_id)) for row in rows]

    def has_events(self, subject: UUID) -> bool:
        """True when an event of ``subject`` is stored (one indexed query, committed rows
        only, on a plain connection as :meth:`subjects_after`)."""
        with self.engine.connect() as connection:
            return connection.execute(self._any_event, {"subject": subject}).first() is not None

    def subjects_with_events(self, subjects: Collection[UUID]) -> set[UUID]:
        """Those of ``subjects`` with an event stored (one query, committed rows only, on a
        plain connection as :meth:`subjects_after`)."""
        if len(subjects) <= 1:
            # A single append's subject: the plain statement, no list to expand.
            return {subject for subject in subjects if self.has_events(subject)}
        asked = list(subjects)
        found: set[UUID] = set()
        with self.engine.connect() as connection:
            # Bounded lists keep every query within the drivers' parameter limits.
            for start in range(0, len(asked), _IN_LIST):
                chunk = asked[start : start + _IN_LIST]
                rows = connection.execute(self._subjects_in, {"subjects": chunk})
                found.update(_uuid(row.originator_id) for row in rows)
        return found

    def events_in(self, session: Session, positions: list[int]) -> Iterator[Any]:
        """The stored rows at ``positions`` (id, originator id and version, topic, state)."""
        table = self.events_table
        query = table.select().where(table.c.id.in_(positions))
        yield from session.execute(query)


_IN_LIST = 1000
"""Subjects asked about per query by :meth:`Storage.subjects_with_events`."""


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))
