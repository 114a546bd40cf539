"""A rebuild (large pages, state kept in memory between pages, its own connection)
writes exactly the rows the projector writes event by event, stops only at a committed
page, and leaves the database and the process as it found them."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from ledger.application import Ledger, Recorded
from ledger.errors import VersionConflict
from ledger.log.follow import apply_page, catch_up_together
from projections import page
from projections import rebuild as rebuild_module
from projections.data import DataView
from projections.rebuild import REBUILD_PAGE, rebuild
from projections.runner import Projector, view_classes
from tests.projections.conftest import LARGE, SMALL, differences, run_scenario, snapshot
from tests.support.scenario import DATA_HEAVY, Scenario
from tests.support.world import World


class Stop(Exception):
    """Raised by a view on purpose."""


@pytest.mark.parametrize("page_size", [1, 64, REBUILD_PAGE])
def test_a_rebuild_equals_the_views_built_event_by_event_whatever_its_pages(
    world: World, projector: Projector, page_size: int
) -> None:
    run_scenario(world, SMALL, seed=41)
    incremental = snapshot(projector)

    rebuild(world.ledger, page_size=page_size)

    assert differences(incremental, snapshot(projector)) == []
    assert set(projector.positions().values()) == {world.ledger.head()}


@pytest.mark.slow
@pytest.mark.parametrize("page_size", [499, REBUILD_PAGE])
def test_a_rebuild_equals_the_views_built_event_by_event_after_a_long_data_heavy_scenario(
    world: World, projector: Projector, page_size: int
) -> None:
    Scenario(world, seed=97, weights=DATA_HEAVY).run(LARGE)
    assert projector.error is None
    incremental = snapshot(projector)

    rebuild(world.ledger, page_size=page_size)

    assert differences(incremental, snapshot(projector)) == []


def _before_each_read(monkeypatch: pytest.MonkeyPatch, before: Callable[[int, int], None]) -> None:
    """Call ``before(after, limit)`` ahead of each page a rebuild reads."""
    original = rebuild_module._PagesAhead._read

    def read(pages: Any, after: int, limit: int) -> list[Recorded]:
        before(after, limit)
        return original(pages, after, limit)

    monkeypatch.setattr(rebuild_module._PagesAhead, "_read", read)


def test_a_rebuild_reads_a_short_first_page_and_each_next_page_while_the_views_apply_one(
    world: World, projector: Projector, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_scenario(world, SMALL, seed=44)
    incremental = snapshot(projector)
    projector.close()
    head = world.ledger.head()
    monkeypatch.setattr(rebuild_module, "FIRST_REBUILD_PAGE", 7)
    reads: list[tuple[int, int, str]] = []
    _before_each_read(
        monkeypatch,
        lambda after, limit: reads.append((after, limit, threading.current_thread().name)),
    )
    reached: list[int] = []

    rebuild(world.ledger, page_size=30, progress=lambda position, _: reached.append(position))

    assert reached[:3] == [0, 7, 37], "a short first page, then full ones"
    assert reached[-1] == head
    assert reads, "the pages were read"
    assert reads[0][:2] == (0, 7)
    assert all(limit == 30 for _, limit, _ in reads[1:])
    assert all(name.startswith("rebuild-read-ahead") for _, _, name in reads[1:])
    assert differences(incremental, snapshot(projector)) == []


def test_a_page_that_cannot_be_read_ahead_fails_the_rebuild_at_its_last_committed_page(
    world: World, projector: Projector, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_scenario(world, SMALL, seed=46)
    projector.close()
    monkeypatch.setattr(rebuild_module, "FIRST_REBUILD_PAGE", 7)

    def database_gone_after_two_pages(after: int, _limit: int) -> None:
        if after >= 37:
            raise Stop("the database went away")

    _before_each_read(monkeypatch, database_gone_after_two_pages)

    with pytest.raises(Stop):
        rebuild(world.ledger, page_size=30)

    assert set(projector.positions().values()) == {37}, "two pages committed, no more"
    assert not [t for t in threading.enumerate() if t.name.startswith("rebuild-read-ahead")]


def test_a_page_read_ahead_is_applied_only_where_the_followers_stand(world: World) -> None:
    views = [cls(world.ledger) for cls in view_classes(["audit"])]
    with Session(world.ledger.engine) as session, pytest.raises(ValueError, match="stand"):
        apply_page(session, views, 10, read_ahead=world.ledger.read(0, 10))


def test_a_rebuild_past_its_memory_bounds_equals_the_views_built_event_by_event(
    world: World, projector: Projector, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_scenario(world, SMALL, seed=45)
    incremental = snapshot(projector)
    # Tiny bounds: every kept state overflows and reads through, every memo is cleared.
    monkeypatch.setattr(page, "_WHOLE_LIMIT", 5)
    monkeypatch.setattr(page, "_MEMO_LIMIT", 3)

    rebuild(world.ledger, page_size=16)

    assert differences(incremental, snapshot(projector)) == []


def test_a_rebuild_that_fails_leaves_every_view_at_its_last_committed_page(
    world: World, projector: Projector, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_scenario(world, SMALL, seed=43)
    projector.close()
    head = world.ledger.head()
    expected, expected_then = snapshot(projector), snapshot(projector, 80)
    _fail_on_page(monkeypatch, 3)

    with pytest.raises(Stop):
        rebuild(world.ledger, page_size=40)

    assert set(projector.positions().values()) == {80}, "two pages committed, no more"
    assert sorted(row[0] for row in snapshot(projector)["audit"]["proj_audit"]) == [
        e.position for e in world.ledger.read(0, head, 80)
    ]
    assert differences(expected_then, snapshot(projector, 80)) == []
    assert differences(snapshot(projector, 80), snapshot(projector, head)) == [], (
        "no row of a later event was kept"
    )

    monkeypatch.undo()
    projector.create_tables()
    projector.catch_up()
    assert differences(expected, snapshot(projector)) == []


def test_a_rebuild_leaves_durability_settings_and_the_collector_as_they_were(
    world: World, projector: Projector
) -> None:
    run_scenario(world, SMALL, seed=47)
    projector.close()  # its pages pause the collector too, while they run
    engine = world.ledger.engine
    setting = (
        "SHOW synchronous_commit" if world.ledger.settings.is_postgres else "PRAGMA synchronous"
    )
    with engine.connect() as conn:
        before = conn.execute(text(setting)).scalar()
    assert gc.isenabled()

    rebuild(world.ledger)

    assert gc.isenabled()
    # Several connections at once: the pool hands out the rebuild's among them.
    conns = [engine.connect() for _ in range(3)]
    try:
        assert {conn.execute(text(setting)).scalar() for conn in conns} == {before}
    finally:
        for conn in conns:
            conn.close()


def _fail_on_page(monkeypatch: pytest.MonkeyPatch, page: int) -> None:
    original = DataView.apply
    calls = [0]

    def apply(self: DataView, session: Any, events: Sequence[Recorded]) -> None:
        calls[0] += 1
        if calls[0] == page:
            raise Stop("stopped on purpose")
        original(self, session, events)

    monkeypatch.setattr(DataView, "apply", apply)


def test_a_rebuild_stops_when_another_process_projects_into_its_views(
    world: World, projector: Projector
) -> None:
    run_scenario(world, SMALL, seed=47)
    # Another process's projector (a second ledger object on the same database) catches
    # up between two of the rebuild's pages: the rebuild's state in memory would miss it.
    elsewhere = Ledger.open(world.ledger.settings)
    views = [cls(elsewhere) for cls in view_classes()]
    interfered: list[int] = []

    def project_elsewhere(position: int, head: int) -> None:
        if position and not interfered:
            interfered.append(catch_up_together(views, page_size=16))

    try:
        with pytest.raises(VersionConflict, match="another process applied the log"):
            rebuild(world.ledger, page_size=64, progress=project_elsewhere)
    finally:
        elsewhere.close()
    assert interfered == [world.ledger.head()]
    # What the rebuild committed before it stopped stays consistent: a catch-up ends
    # equal to a clean rebuild.
    projector.catch_up()
    caught_up = snapshot(projector)
    rebuild(world.ledger)
    assert differences(caught_up, snapshot(projector)) == []
