"""Events stored by another process reach this process's views: on PostgreSQL the
follower is woken by the database's notices and reads each new event once, in the page it
applies; its wait ends as soon as it is stopped."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from ledger.application import Ledger
from ledger.log.storage import Notices
from projections.runner import Projector
from tests.support.agreements import propose_and_sign
from tests.support.world import World


def _eventually(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
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
