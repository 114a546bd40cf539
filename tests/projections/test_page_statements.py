"""A served append's page (every view, the Merkle tree riding along) runs few statements:
views with nothing to do read nothing, a view's state is read in one query at most, and every
tracking row moves in one statement on both backends, by compare-and-set all the same."""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from ledger.log.follow import _advance_all, _install_moves, begin_page
from ledger.log.tree import MerkleTree
from projections import bulk
from projections.runner import Projector
from projections.view import View
from tests.projections.conftest import run_scenario
from tests.support.agreements import propose_and_sign
from tests.support.batches import define_parameter, discrete_records, register_batch, submit_data
from tests.support.statements import counted
from tests.support.world import World

#: Statements of the page of one served ``DataSubmitted`` (PostgreSQL's ``COPY`` counted).
MAX_PAGE_STATEMENTS = {"sqlite": 9, "postgresql": 9}


@pytest.fixture
def served(world: World) -> Projector:
    """Every view with the tree as companion, caught up; appends are projected by hand."""
    projector = Projector(world.ledger, companions=(MerkleTree(world.ledger),))
    projector.create_tables()
    projector.catch_up()
    return projector


def _page_statements(
    world: World, projector: Projector, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """The statements of the page that projects the events appended since the last one."""
    with counted(world.ledger) as statements:
        copy = bulk._copy_values

        def counted_copy(conn: Any, table: Any, values: Any) -> None:
            statements.append(f"COPY {table.name}")  # the driver's cursor: no engine hook
            copy(conn, table, values)

        monkeypatch.setattr(bulk, "_copy_values", counted_copy)
        projector.catch_up()
        monkeypatch.setattr(bulk, "_copy_values", copy)
    return statements


def _tracking_writes(statements: list[str]) -> list[str]:
    writes = ("UPDATE", "INSERT", "WITH")
    return [
        s
        for s in statements
        if s.lstrip().upper().startswith(writes) and ("_tracking" in s or "follower_moves" in s)
    ]


def test_a_served_single_append_s_page_runs_few_statements(
    world: World, served: Projector, monkeypatch: pytest.MonkeyPatch
) -> None:
    agreement = propose_and_sign(world)
    define_parameter(world, agreement, "titer at harvest")
    register_batch(world, agreement, "B-PAGE")
    submit_data(world, "B-PAGE", "discrete", discrete_records("W"))
    served.catch_up()  # the subject's facts known, SQLite's moves view made
    submit_data(world, "B-PAGE", "discrete", discrete_records("S"))

    statements = _page_statements(world, served, monkeypatch)

    head = world.ledger.head()
    assert served.reached == head
    assert set(served.positions().values()) == {head}
    assert served.companions[0].position() == head
    assert len(_tracking_writes(statements)) == 1, statements
    dialect = world.ledger.engine.dialect.name
    assert len(statements) <= MAX_PAGE_STATEMENTS[dialect], "\n".join(statements)


def test_a_batch_s_page_moves_every_tracking_row_in_one_statement(
    world: World, served: Projector, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = run_scenario(world, 40)
    served.catch_up()
    scenario.run(40)

    statements = _page_statements(world, served, monkeypatch)

    assert served.reached == world.ledger.head()
    assert len(_tracking_writes(statements)) == 1, statements


def test_one_statement_moves_no_row_when_one_moved_behind_the_page_s_back(
    world: World, served: Projector
) -> None:
    run_scenario(world, 30)
    served.catch_up()
    head = world.ledger.head()
    audit, parties = served.view("audit"), served.view("parties")

    moves = [(audit, head, head + 1), (parties, head - 1, head + 1)]
    with (
        pytest.raises(IntegrityError, match="parties moved past"),
        audit.tracking.transaction(commit=True) as session,
    ):
        _install_moves(session, [audit, parties])
        begin_page(session, world.ledger)
        _advance_all(session, moves)

    assert set(served.positions().values()) == {head}


def test_a_failing_view_does_not_hold_the_tree_back(
    world: World, served: Projector, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: View, session: object, events: object) -> None:
        raise RuntimeError("a bug in a view")

    propose_and_sign(world)
    monkeypatch.setattr(type(served.view("access")), "apply", broken)

    served.catch_up_safely()

    assert isinstance(served.error, RuntimeError)
    assert served.companions[0].position() == world.ledger.head()
    assert served.view("access").position() < world.ledger.head()
