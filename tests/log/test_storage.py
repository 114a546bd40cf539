"""One storage module: the engine, the events table, transactions and tracking recorders come
from ``ledger.log.storage``, built by the library's factory with the ledger's options."""

from __future__ import annotations

import uuid
from contextlib import ExitStack

import pytest
import sqlalchemy as sa
from eventsourcing.persistence import PersistenceError
from eventsourcing.persistence import StoredEvent as LibraryStoredEvent
from eventsourcing.tests.persistence import ApplicationRecorderTestCase

from ledger.application import Ledger
from ledger.log.storage import (
    POOL_OVERFLOW,
    POOL_SIZE,
    LedgerDatastore,
    LedgerFactory,
    LedgerRecorder,
    Storage,
    positions_of,
)
from tests.support.world import World


def test_the_events_table_holds_every_appended_event(world: World) -> None:
    storage = world.ledger.storage
    assert isinstance(storage, Storage)
    with storage.engine.connect() as conn:
        ids = [row[0] for row in conn.execute(sa.select(storage.events_table.c.id))]
    assert ids, "the world appended no events"
    assert max(ids) == world.ledger.head()


def test_a_transaction_commits_or_rolls_back_as_one(world: World) -> None:
    storage, table = world.ledger.storage, world.ledger.storage.events_table
    count = sa.select(sa.func.count()).select_from(table)
    with storage.engine.connect() as conn:
        before = conn.execute(count).scalar()
    try:
        with storage.transaction(commit=True) as session:
            session.execute(sa.delete(table))
            raise RuntimeError("abandon the transaction")
    except RuntimeError:
        pass
    with storage.engine.connect() as conn:
        assert conn.execute(count).scalar() == before


def test_the_ledger_is_built_by_the_ledger_s_factory(ledger: Ledger) -> None:
    assert isinstance(ledger.factory, LedgerFactory)


def test_a_pooled_postgres_connection_killed_by_the_server_is_replaced(pg_url: str) -> None:
    engine = LedgerDatastore(url=pg_url).engine
    assert isinstance(engine, sa.Engine)
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        with engine.connect() as conn:  # the pool's connection is dead: checked, replaced
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        engine.dispose()
        admin.dispose()


def _backends(engine: sa.Engine, count: int) -> set[int]:
    """The server processes of ``count`` connections held at once, then returned."""
    with ExitStack() as held:
        connections = [held.enter_context(engine.connect()) for _ in range(count)]
        return {
            int(c.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()) for c in connections
        }


def test_a_postgres_burst_within_the_pool_reuses_its_sessions(pg_url: str) -> None:
    engine = LedgerDatastore(url=pg_url, pool_timeout=0.2).engine
    assert isinstance(engine, sa.Engine)
    try:
        first = _backends(engine, POOL_SIZE)
        assert len(first) == POOL_SIZE
        assert _backends(engine, POOL_SIZE) == first  # no new session (each a process)
        with ExitStack() as held:
            for _ in range(POOL_SIZE + POOL_OVERFLOW):
                held.enter_context(engine.connect())
            with pytest.raises(sa.exc.TimeoutError):  # no more than the pool allows
                engine.connect()
    finally:
        engine.dispose()


def _stored(subject: uuid.UUID, version: int) -> LibraryStoredEvent:
    return LibraryStoredEvent(
        originator_id=subject, originator_version=version, topic="t", state=b""
    )


def test_each_event_of_a_save_gets_the_position_its_row_names_in_any_order() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    events = [_stored(first, 1), _stored(second, 4), _stored(first, 2)]
    rows = [(12, str(first), 2), (10, first, 1), (11, second, 4)]
    assert positions_of(events, rows) == [10, 11, 12]


def test_a_save_numbered_out_of_the_events_order_is_refused() -> None:
    subject = uuid.uuid4()
    events = [_stored(subject, 1), _stored(subject, 2)]
    with pytest.raises(PersistenceError, match="out of their order"):
        positions_of(events, [(8, subject, 1), (7, subject, 2)])


class _LibraryRecorderChecks(ApplicationRecorderTestCase[LedgerRecorder]):
    """The library's own tests of an application recorder, run against the ledger's."""

    __test__ = False  # run by the test below, once per backend
    url = ""

    def create_recorder(self) -> LedgerRecorder:
        recorder = LedgerRecorder(
            LedgerDatastore(url=self.url), events_table_name=f"checks_{uuid.uuid4().hex[:12]}"
        )
        recorder.create_table()
        return recorder


def test_the_recorder_passes_the_library_s_own_recorder_tests(database_url: str) -> None:
    checks = type("Checks", (_LibraryRecorderChecks,), {"url": database_url, "__test__": False})
    checks("test_insert_select").debug()  # raises what a failed check raises
