"""Views built event by event equal views rebuilt from the log, row for row."""

from __future__ import annotations

from collections import Counter

import pytest

from ledger.domain.catalogue import registered_types
from projections.rebuild import rebuild
from projections.runner import Projector
from tests.projections.conftest import LARGE, SMALL, differences, run_scenario, snapshot
from tests.support.world import World


def test_scenario_covers_every_event_type(world: World) -> None:
    run_scenario(world, SMALL)
    seen = Counter(r.event.envelope["type"] for r in world.ledger.iter_log())
    missing = {spec.type for spec in registered_types()} - set(seen)
    assert not missing, f"the scenario never made {sorted(missing)}"


def test_incrementally_built_views_equal_views_rebuilt_from_scratch(
    world: World, projector: Projector
) -> None:
    run_scenario(world, SMALL)
    assert projector.error is None
    incremental = snapshot(projector)
    assert incremental["audit"]["proj_audit"], "the scenario wrote nothing"

    rebuild(world.ledger)

    assert differences(incremental, snapshot(projector)) == []


@pytest.mark.slow
def test_incrementally_built_views_equal_rebuilt_ones_after_a_long_scenario(
    world: World, projector: Projector
) -> None:
    run_scenario(world, LARGE, seed=7)
    incremental = snapshot(projector)

    rebuild(world.ledger, page_size=997)

    assert differences(incremental, snapshot(projector)) == []


def test_page_boundaries_do_not_change_the_views(world: World, projector: Projector) -> None:
    run_scenario(world, SMALL)
    whole = snapshot(projector)

    # Tiny pages put one subject's consecutive events on different pages.
    rebuild(world.ledger, page_size=5)

    assert differences(whole, snapshot(projector)) == []


def test_one_view_rebuilt_alone_equals_it_built_incrementally(
    world: World, projector: Projector
) -> None:
    run_scenario(world, SMALL)
    before = snapshot(projector)

    rebuild(world.ledger, ["data"])

    assert differences(before, snapshot(projector)) == []
    assert set(projector.positions().values()) == {world.ledger.head()}
