"""One storage module: the engine, the events table, transactions and tracking recorders come
from ``ledger.log.storage``, built by the library's factory with the ledger's options."""

from __future__ import annotations

import sqlalchemy as sa

from ledger.application import Ledger
from ledger.log.storage import LedgerDatastore, LedgerFactory, Storage
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
