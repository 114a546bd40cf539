"""``as_of(position)`` and ``as_of(time)`` answer from the temporal tables exactly what a
fresh replay of the log, cut at that position, gives."""

from __future__ import annotations

import random

import pytest

from projections.audit import resolve_time
from projections.rebuild import drop_views
from projections.runner import Projector
from tests.projections.conftest import LARGE, SMALL, differences, run_scenario, snapshot
from tests.support.world import World


def _replay_up_to(projector: Projector, position: int) -> None:
    drop_views(projector.views)
    projector.catch_up(until=position)


def check_as_of_equals_replay(projector: Projector, samples: int, seed: int) -> None:
    projector.close()  # nothing may catch up behind the replays' back
    head = projector.ledger.head()
    positions = sorted(random.Random(seed).sample(range(1, head + 1), samples))
    as_of = {position: snapshot(projector, position) for position in positions}
    for position in positions:
        _replay_up_to(projector, position)
        assert projector.positions()["audit"] == position
        replayed = snapshot(projector, position)
        assert differences(as_of[position], replayed) == [], f"as of position {position}"


def test_as_of_a_past_position_equals_a_replay_cut_there(
    world: World, projector: Projector
) -> None:
    run_scenario(world, SMALL)
    check_as_of_equals_replay(projector, samples=4, seed=11)


@pytest.mark.slow
def test_as_of_equals_replay_at_many_positions_of_a_long_scenario(
    world: World, projector: Projector
) -> None:
    run_scenario(world, LARGE, seed=3)
    check_as_of_equals_replay(projector, samples=12, seed=5)


def test_as_of_a_time_is_as_of_the_last_position_recorded_by_then(
    world: World, projector: Projector
) -> None:
    run_scenario(world, SMALL)
    events = list(world.ledger.iter_log())
    chosen = random.Random(2).sample(events, 5)
    with world.ledger.engine.connect() as conn:
        for event in chosen:
            position = resolve_time(conn, event.event.recorded_at)
            recorded_by_then = [
                e.position for e in events if e.event.recorded_at <= event.event.recorded_at
            ]
            # One writer: clocks agree with log order, so the prefix is what was recorded.
            assert position == max(recorded_by_then)
            assert snapshot(projector, position) == snapshot(projector, max(recorded_by_then))
        assert resolve_time(conn, "2000-01-01T00:00:00.000Z") == 0
