"""An append returns only after every view reflects it; events appended elsewhere are
picked up by the projector's background follower."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from ledger.application import Ledger
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
    other = Ledger.open(world.ledger.settings)  # another writer, without projections
    try:
        agreement = propose_and_sign(world)
        world.ledger, saved = other, world.ledger
        try:
            grant(world, agreement, "northwind-bio", "fabrikam-cmo")
        finally:
            world.ledger = saved
        head = other.head()
    finally:
        other.close()
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
