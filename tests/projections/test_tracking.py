"""Tracking rows move by compare-and-set: a page that finds any view's row moved behind
its back fails whole, and no view moves."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import IntegrityError

from ledger.log.follow import _advance_all
from projections.runner import Projector
from tests.projections.conftest import run_scenario
from tests.support.world import World


def test_a_page_moves_no_view_when_one_view_s_row_moved_behind_its_back(
    world: World, projector: Projector
) -> None:
    run_scenario(world, 30)
    projector.close()
    head = world.ledger.head()
    assert set(projector.positions().values()) == {head}
    audit, parties = projector.view("audit"), projector.view("parties")

    # audit's row is where the page read it; parties' is not (another process moved it
    # after the read): neither may move.
    moves = [(audit, head, head + 1), (parties, head - 1, head + 1)]
    with (
        pytest.raises(IntegrityError, match="parties moved past"),
        audit.tracking.transaction(commit=True) as session,
    ):
        _advance_all(session, moves)

    assert set(projector.positions().values()) == {head}


def test_a_page_moves_every_view_whose_row_is_where_it_was_read(
    world: World, projector: Projector
) -> None:
    run_scenario(world, 30)
    projector.close()
    head = world.ledger.head()
    audit, parties = projector.view("audit"), projector.view("parties")

    with audit.tracking.transaction(commit=True) as session:
        _advance_all(session, [(audit, head, head + 5), (parties, head, head + 7)])

    positions = projector.positions()
    assert (positions["audit"], positions["parties"]) == (head + 5, head + 7)
