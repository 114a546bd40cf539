"""A view whose schema changed is replayed on start; the command line rebuilds and reports."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from clients.cli.projections import projections_app
from ledger.config import Settings
from projections.access import GRANTS, AccessView
from projections.runner import ALL_VIEWS, Projector
from tests.projections.conftest import snapshot
from tests.support.agreements import grant, propose_and_sign
from tests.support.world import World, agreement_terms


def test_a_view_whose_code_changed_is_dropped_and_replayed(
    world: World, projector: Projector
) -> None:
    grant(world, propose_and_sign(world), "northwind-bio", "fabrikam-cmo")
    before = snapshot(projector)

    class ChangedAccess(AccessView):
        version = AccessView.version + 1

    changed = Projector(world.ledger, [ChangedAccess])
    changed.create_tables()
    assert changed.positions() == {"access": 0}, "the old rows were dropped"
    changed.catch_up()

    assert snapshot(projector)["access"] == before["access"]


def test_an_unchanged_view_is_left_alone(world: World, projector: Projector) -> None:
    grant(world, propose_and_sign(world), "northwind-bio", "fabrikam-cmo")
    again = Projector(world.ledger)
    again.create_tables()
    assert set(again.positions().values()) == {world.ledger.head()}


@pytest.fixture
def cli_env(settings: Settings) -> dict[str, str]:
    return {"CMO_LEDGER_DATABASE_URL": settings.database_url}


def test_status_shows_each_view_against_the_head(
    world: World, projector: Projector, cli_env: dict[str, str]
) -> None:
    propose_and_sign(world)
    projector.close()
    world["northwind-bio"].submit(  # appended while no projector follows
        world.ledger,
        "AgreementProposed",
        uuid.uuid4(),
        {"terms": agreement_terms()},
        meaning="authored",
    )

    result = CliRunner().invoke(projections_app, ["status", "--json"], env=cli_env)

    assert result.exit_code == 0, result.output
    rows = {row["view"]: row for row in json.loads(result.output)}
    head = world.ledger.head()
    assert rows["access"] == {"view": "access", "position": head - 1, "head": head, "lag": 1}
    assert set(rows) == {view.name for view in ALL_VIEWS}


def test_rebuild_of_one_view_replays_it(
    world: World, projector: Projector, cli_env: dict[str, str]
) -> None:
    grant(world, propose_and_sign(world), "northwind-bio", "fabrikam-cmo")
    projector.close()
    with world.ledger.engine.begin() as conn:
        conn.execute(sa.delete(GRANTS))  # damage the view

    result = CliRunner().invoke(projections_app, ["rebuild", "--view", "access"], env=cli_env)

    assert result.exit_code == 0, result.output
    assert f"up to position {world.ledger.head()}" in result.output
    with world.ledger.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(GRANTS)).scalar() == 1


def test_rebuild_of_an_unknown_view_is_refused(cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(projections_app, ["rebuild", "--view", "grants"], env=cli_env)
    assert result.exit_code == 2
    assert "unknown view 'grants'" in result.output
