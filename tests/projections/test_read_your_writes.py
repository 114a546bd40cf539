"""An append returns only after every view reflects it; events appended elsewhere are
picked up by the projector's background follower (on PostgreSQL woken by the database's
notices: each new event is read once, in the page that applies it, and the wait ends as
soon as the follower is stopped)."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from ledger.application import Ledger
from ledger.log.storage import Notices
from projections.access import GRANTS
from projections.audit import AUDIT
from projections.runner import Projector
from projections.view import View
from tests.support.agreements import grant, propose_and_sign
from tests.support.world import World


def _count(ledger: Ledger, table: sa.Table) -> int:
    with ledger.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _eventually(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@contextmanager
def _event_rows_read(engine: sa.Engine) -> Iterator[list[int]]:
    """The rows each statement run through ``engine`` read of stored events' bodies."""
    reads: list[int] = []

    def read(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        reading = statement.lstrip().upper().startswith("SELECT") and "ledger_events" in statement
        if reading and re.search(r"\bstate\b", statement):
            reads.append(cursor.rowcount)

    sa.event.listen(engine, "after_cursor_execute", read)
    try:
        yield reads
    finally:
        sa.event.remove(engine, "after_cursor_execute", read)


@contextmanager
def _another_writer(world: World) -> Iterator[Ledger]:
    """The world's ledger as another process opens it: its own engine, no projector."""
    other = Ledger.open(world.ledger.settings)
    saved, world.ledger = world.ledger, other
    try:
        yield other
    finally:
        world.ledger = saved
        other.close()


def _postgres_only(ledger: Ledger) -> None:
    if not ledger.settings.is_postgres:
        pytest.skip("notices are PostgreSQL's; SQLite's follower polls the log's head")


def test_every_view_reflects_an_append_when_it_returns(world: World, projector: Projector) -> None:
    agreement = propose_and_sign(world)
    grant_id = grant(world, agreement, "northwind-bio", "fabrikam-cmo")

    head = world.ledger.head()
    assert projector.positions() == {view.name: head for view in projector.views}
    assert _count(world.ledger, AUDIT) == head
    with world.ledger.engine.connect() as conn:
        found = conn.execute(sa.select(GRANTS.c.grantee).where(GRANTS.c.grant_id == str(grant_id)))
        assert found.scalar_one() == "fabrikam-cmo"


def test_events_appended_by_another_process_are_picked_up(
    world: World, projector: Projector
) -> None:
    agreement = propose_and_sign(world)
    with _another_writer(world) as other:
        grant(world, agreement, "northwind-bio", "fabrikam-cmo")
        head = other.head()
    assert _eventually(lambda: projector.positions()["access"] == head)
    assert _count(world.ledger, GRANTS) == 1


def test_a_failing_view_never_fails_the_append_and_catches_up_later(
    world: World, projector: Projector, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: View, session: object, events: object) -> None:
        raise RuntimeError("a bug in a view")

    access = type(projector.view("access"))
    with monkeypatch.context() as patch:
        patch.setattr(access, "apply", broken)
        agreement = propose_and_sign(world)  # stored and acknowledged all the same
        assert isinstance(projector.error, RuntimeError)
    assert world.ledger.head() > 0
    grant(world, agreement, "northwind-bio", "fabrikam-cmo")
    assert projector.error is None
    assert set(projector.positions().values()) == {world.ledger.head()}


def test_concurrent_appends_each_see_their_own_write(world: World, projector: Projector) -> None:
    agreements = [propose_and_sign(world) for _ in range(3)]
    seen: list[bool] = []

    def grant_and_read(agreement: uuid.UUID) -> None:
        grant_id = grant(world, agreement, "northwind-bio", "qa-auditor-llc")
        with world.ledger.engine.connect() as conn:
            query = sa.select(GRANTS.c.grant_id).where(GRANTS.c.grant_id == str(grant_id))
            seen.append(conn.execute(query).first() is not None)

    threads = [threading.Thread(target=grant_and_read, args=(a,)) for a in agreements]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [True, True, True]


def test_another_process_s_events_are_read_once_by_the_page_that_applies_them(
    world: World, projector: Projector
) -> None:
    _postgres_only(world.ledger)
    before = world.ledger.head()
    with _event_rows_read(world.ledger.engine) as reads, _another_writer(world) as other:
        propose_and_sign(world)
        head = other.head()
        assert _eventually(lambda: projector.reached >= head)
    assert head > before
    assert set(projector.positions().values()) == {head}
    # The views' pages read each new event once; nothing else reads them (the library's
    # subscription used to read each one again, only to wake the follower).
    assert sum(reads) == head - before


def test_notices_wake_once_at_the_start_and_once_per_burst(world: World) -> None:
    _postgres_only(world.ledger)
    notices = world.ledger.storage.notices()
    woken = threading.Semaphore(0)

    def follow() -> None:
        for _ in notices:
            woken.release()

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    try:
        assert woken.acquire(timeout=60), "woken at the start"
        with _another_writer(world):
            propose_and_sign(world)
        assert woken.acquire(timeout=60), "woken by the other writer's transactions"
    finally:
        notices.stop()
        follower.join(60)
    assert not follower.is_alive()


def test_a_stopped_listener_ends_its_wait_at_once(world: World) -> None:
    _postgres_only(world.ledger)
    notices = Notices(world.ledger.engine, "cmo_no_such_channel", wait=3600.0)
    started = threading.Event()

    def follow() -> None:
        for _ in notices:
            started.set()

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    assert started.wait(60)
    notices.stop()
    follower.join(60)  # an hour's wait, ended by the stop's own notice
    assert not follower.is_alive()
