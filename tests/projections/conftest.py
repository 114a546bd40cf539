"""Fixtures for the projection tests: a running projector, a scenario, table snapshots."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from ledger.application import Ledger
from projections.runner import Projector
from tests.support.scenario import Scenario
from tests.support.world import World

#: Events in the default scenario; the slow suite runs a few thousand.
SMALL = 260
LARGE = int(os.environ.get("CMO_TEST_SCENARIO_EVENTS", "3000"))

Snapshot = dict[str, dict[str, list[tuple[Any, ...]]]]


@pytest.fixture
def projector(ledger: Ledger) -> Iterator[Projector]:
    """All views, following the ledger (read-your-writes on)."""
    running = Projector(ledger).start()
    try:
        yield running
    finally:
        running.close()


def run_scenario(world: World, events: int, seed: int = 20240601) -> Scenario:
    """The seeded random scenario, ``events`` long."""
    scenario = Scenario(world, seed)
    scenario.run(events)
    return scenario


def snapshot(projector: Projector, position: int | None = None) -> Snapshot:
    """Every view's rows (as of ``position`` when given)."""
    with projector.ledger.engine.connect() as conn:
        return {view.name: view.rows(conn, position) for view in projector.views}


def differences(left: Snapshot, right: Snapshot) -> list[str]:
    """Tables whose rows differ, with a sample of the differing rows."""
    found = []
    for view, tables in left.items():
        for table, rows in tables.items():
            other = right[view][table]
            if rows != other:
                only_left = sorted(set(rows) - set(other), key=repr)[:2]
                only_right = sorted(set(other) - set(rows), key=repr)[:2]
                found.append(f"{table}: {only_left} != {only_right} ({len(rows)}/{len(other)})")
    return found
