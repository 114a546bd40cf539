"""The ledger's database, the eventsourcing way: one factory builds the engine with its
options, and one :class:`Storage` hands out the engine, the events table, transactions and
tracking recorders. Nothing else reaches into the library's recorder.

``Settings.eventsourcing_env`` names :class:`LedgerFactory` as the ``PERSISTENCE_MODULE``;
the application builds it, and its datastore builds the engine:

* on PostgreSQL with ``pool_pre_ping``: a pooled connection is checked before use, so a
  database restart replaces the connections it broke instead of failing the next request
  on each of them; and with :data:`POOL_SIZE` connections kept (at most fifteen, as
  SQLAlchemy's default, but ten of them kept rather than five);
* on SQLite as the library does (a file database, WAL mode, one writer at a time), with
  ``secure_delete`` on every connection: deleted rows (a purged opening) are overwritten,
  not left in free pages.

Its recorder, :class:`LedgerRecorder`, is the library's with its statements made once, as
Core statements: the events of a save are inserted by one statement, not as ORM objects
through the session's unit of work (which cost more than verifying their signatures), and
events, notifications and the last position are read without building an ORM query each
time. It passes the library's own recorder tests (``tests/log/test_storage.py``).
"""

from __future__ import annotations

import itertools
import threading
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, cast
from uuid import UUID, uuid4

from eventsourcing.persistence import ApplicationRecorder, Notification, PersistenceError
from eventsourcing.persistence import StoredEvent as LibraryStoredEvent
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import (
    SQLAlchemyApplicationRecorder,
    SQLAlchemyTrackingRecorder,
)
from sqlalchemy import Integer, Row, Select, Table, bindparam, event, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert

from ledger.errors import ConfigurationError

__all__ = [
    "LedgerDatastore",
    "LedgerFactory",
    "LedgerRecorder",
    "Notices",
    "Storage",
    "positions_of",
]


POOL_SIZE = 10
"""PostgreSQL connections a process keeps open between uses."""
POOL_OVERFLOW = 5
"""Connections a process may open beyond :data:`POOL_SIZE`, closed when returned."""


class LedgerDatastore(SQLAlchemyDatastore):
    """The library's datastore, with the engine options the ledger needs."""

    def __init__(self, *, url: str | None = None, **options: Any) -> None:
        if url is not None and url.startswith("postgresql"):
            options.setdefault("pool_pre_ping", True)
            # Ten kept, five more for a burst: the same fifteen at most as SQLAlchemy's
            # default (5 + 10), but a server's usual concurrency (requests, the follower,
            # the notary) stays within the kept ones instead of opening and closing a
            # session per burst, each a new server process for PostgreSQL.
            options.setdefault("pool_size", POOL_SIZE)
            options.setdefault("max_overflow", POOL_OVERFLOW)
        super().__init__(url=url, **options)
        if self.engine is not None and self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _secure_delete)


def _secure_delete(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA secure_delete = ON")
    cursor.close()


class LedgerRecorder(SQLAlchemyApplicationRecorder):
    """The library's application recorder, with Core statements made once."""

    _insert: ReturningInsert[Any] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._selects: dict[tuple[object, ...], Select[Any]] = {}

    def select_events(
        self,
        originator_id: UUID | str,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[LibraryStoredEvent]:
        given = {"subject": originator_id, "gt": gt, "lte": lte, "limit": limit}
        shape = ("events", gt is not None, lte is not None, desc, limit is not None)
        return [
            LibraryStoredEvent(
                originator_id=row[0], originator_version=row[1], topic=row[2], state=_bytes(row[3])
            )
            for row in self._read(shape, self._events_select, given)
        ]

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> list[Notification]:
        given = {"start": start, "stop": stop, "topics": list(topics), "limit": limit}
        shape = (
            "notifications",
            start is not None and (">=" if inclusive_of_start else ">"),
            stop is not None,
            bool(topics),
        )
        return [
            Notification(
                id=row[0],
                originator_id=row[1],
                originator_version=row[2],
                topic=row[3],
                state=_bytes(row[4]),
            )
            for row in self._read(shape, self._notifications_select, given)
        ]

    def max_notification_id(self) -> int | None:
        rows = self._read(("last",), self._last_select, {})
        return cast("int | None", rows[0][0]) if rows else None

    def _read(
        self,
        shape: tuple[object, ...],
        make: Callable[[tuple[object, ...]], Select[Any]],
        given: dict[str, Any],
    ) -> list[Row[Any]]:
        """The rows of the statement for this shape, in the library's transaction (whose
        exit translates the driver's errors)."""
        statement = self._statement(shape, make)
        with self.transaction(commit=False) as session:
            return list(session.connection().execute(statement, _given(given)))

    def _statement(
        self, shape: tuple[object, ...], make: Callable[[tuple[object, ...]], Select[Any]]
    ) -> Select[Any]:
        """The statement for a call of this shape, made on the first such call."""
        statement = self._selects.get(shape)
        if statement is None:
            statement = self._selects[shape] = make(shape)
        return statement

    def _events_select(self, shape: tuple[object, ...]) -> Select[Any]:
        _, gt, lte, desc, limit = shape
        c = self.events_record_cls.__table__.c
        query = select(c.originator_id, c.originator_version, c.topic, c.state).where(
            c.originator_id == bindparam("subject", type_=c.originator_id.type)
        )
        if gt:
            query = query.where(c.originator_version > bindparam("gt"))
        if lte:
            query = query.where(c.originator_version <= bindparam("lte"))
        query = query.order_by(c.originator_version.desc() if desc else c.originator_version)
        return query.limit(bindparam("limit")) if limit else query

    def _notifications_select(self, shape: tuple[object, ...]) -> Select[Any]:
        _, start, stop, topics = shape
        c = self.events_record_cls.__table__.c
        query = select(c.id, c.originator_id, c.originator_version, c.topic, c.state)
        if start == ">=":
            query = query.where(c.id >= bindparam("start"))
        elif start == ">":
            query = query.where(c.id > bindparam("start"))
        if stop:
            query = query.where(c.id <= bindparam("stop"))
        if topics:
            query = query.where(c.topic.in_(bindparam("topics", expanding=True)))
        return query.order_by(c.id).limit(bindparam("limit"))

    def _last_select(self, _shape: tuple[object, ...]) -> Select[Any]:
        c = self.events_record_cls.__table__.c
        return select(c.id).order_by(c.id.desc()).limit(1)

    def _insert_stored_events(
        self, session: Session, stored_events: Sequence[LibraryStoredEvent], **kwargs: Any
    ) -> Sequence[int]:
        if not self._has_autoincrementing_ids or not stored_events:
            return super()._insert_stored_events(session, stored_events, **kwargs)
        if self._insert is None:
            table = self.events_record_cls.__table__
            # Each row names its event, so the rows may come back in any order: SQLite
            # promises none, and asking SQLAlchemy for one would insert row by row.
            self._insert = insert(table).returning(
                table.c.id, table.c.originator_id, table.c.originator_version
            )
        self._lock_table(session)
        rows = session.connection().execute(
            self._insert,
            [
                {
                    "originator_id": event.originator_id,
                    "originator_version": event.originator_version,
                    "topic": event.topic,
                    "state": event.state,
                }
                for event in stored_events
            ],
        )
        self._notify_channel(session)
        return positions_of(stored_events, rows)


def _bytes(state: bytes | memoryview) -> bytes:
    return state if isinstance(state, bytes) else bytes(state)


def _given(values: dict[str, Any]) -> dict[str, Any]:
    """The parameters a statement made for these values' shape binds (the others are None)."""
    return {name: value for name, value in values.items() if value is not None and value != []}


def positions_of(
    stored_events: Sequence[LibraryStoredEvent], rows: Iterable[Sequence[Any]]
) -> list[int]:
    """The position of each of ``stored_events``, from the inserted ``rows`` (``id``,
    ``originator_id``, ``originator_version``) in any order.

    Raises :class:`PersistenceError` (the save rolls back) unless the positions rise in
    the order of the events: the log's order is the order the events were appended in."""
    named = {(_uuid(subject), version): position for position, subject, version in rows}
    positions = [named[_uuid(e.originator_id), e.originator_version] for e in stored_events]
    if any(later <= earlier for earlier, later in itertools.pairwise(positions)):
        raise PersistenceError("the database numbered a save's events out of their order")
    return positions


class LedgerFactory(SQLAlchemyFactory):
    """eventsourcing-sqlalchemy's infrastructure factory, with :class:`LedgerDatastore`
    and :class:`LedgerRecorder`."""

    datastore_class = LedgerDatastore
    application_recorder_class = LedgerRecorder


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

    def notices(self) -> Notices:
        """PostgreSQL's notices that events were stored, for a follower of the log."""
        return Notices(self.engine, self._recorder.channel_name)

    def events_in(self, session: Session, positions: list[int]) -> Iterator[Any]:
        """The stored rows at ``positions`` (id, originator id and version, topic, state)."""
        table = self.events_table
        query = table.select().where(table.c.id.in_(positions))
        yield from session.execute(query)


_IN_LIST = 1000
"""Subjects asked about per query by :meth:`Storage.subjects_with_events`."""


class Notices:
    """PostgreSQL's notices that events were stored, without the events.

    The library's insert notifies the events' channel in each storing transaction; the
    library's own subscription then reads every new event, which a follower that reads
    its pages itself does not need. Iterating yields once at the start (for what was
    stored before the listening began), then once per burst of notices (those already
    arrived count as one), until :meth:`stop`, which any thread may call: it notifies this
    listener's own channel, so the wait ends at once. The listening connection is closed
    at the end, never handed back to the pool still listening.
    """

    def __init__(self, engine: Engine, channel: str, *, wait: float = 1.0) -> None:
        self._engine = engine
        self._channel = channel
        self._own = f"{channel}_stop_{uuid4().hex[:16]}"
        self._wait = wait
        self._stopped = threading.Event()

    def __iter__(self) -> Iterator[None]:
        connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            raw: Any = connection.connection.dbapi_connection
            raw.execute(f"LISTEN {self._channel}")
            raw.execute(f"LISTEN {self._own}")
            yield
            while not self._stopped.is_set():
                # ``wait``: a stop whose notice could not be sent is still seen.
                if not any(True for _ in raw.notifies(timeout=self._wait, stop_after=1)):
                    continue
                for _ in raw.notifies(timeout=0):  # those already arrived
                    pass
                if not self._stopped.is_set():
                    yield
        finally:
            connection.invalidate()
            connection.close()

    def stop(self) -> None:
        """End the iteration (from any thread)."""
        self._stopped.set()
        try:
            with self._engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            ) as connection:
                connection.exec_driver_sql(f"NOTIFY {self._own}")
        except SQLAlchemyError:  # the database gone or busy: the listener's own wait ends it
            pass


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))
