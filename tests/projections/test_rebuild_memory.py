"""A rebuild carries the views' state from page to page in bounded memory; whatever it
keeps or forgets, the views come out row for row the same."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ledger.application import Ledger
from projections import audit, page
from projections.page import State, state_table
from projections.rebuild import rebuild
from projections.runner import Projector
from tests.projections.conftest import SMALL, differences, run_scenario, snapshot
from tests.support.world import World

metadata = sa.MetaData()
STATE = state_table("test_kept_state", metadata)


def test_a_rebuild_past_its_memory_limits_equals_views_built_event_by_event(
    world: World, projector: Projector, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_scenario(world, SMALL)
    incremental = snapshot(projector)
    projector.close()  # the rebuild's pages alone move the views from here on
    # Limits this low make every view forget what it kept several times over.
    monkeypatch.setattr(page, "_WHOLE_LIMIT", 7)
    monkeypatch.setattr(audit, "_CONTEXTS_LIMIT", 3)

    rebuild(world.ledger, page_size=11)

    assert differences(incremental, snapshot(projector)) == []


def test_the_audit_view_keeps_no_subject_in_its_state(world: World) -> None:
    run_scenario(world, SMALL)
    rebuild(world.ledger, ["audit"])

    with world.ledger.engine.connect() as conn:
        keys = conn.execute(sa.select(audit.STATE.c.key)).scalars().all()
    assert keys, "the scenario admitted no person"
    assert all(key.startswith("printed/") for key in keys)


def test_a_kept_state_reads_a_key_once_across_pages(ledger: Ledger) -> None:
    metadata.create_all(ledger.engine)
    with ledger.engine.begin() as conn:
        conn.execute(STATE.insert(), [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])
        state = State(conn, STATE, {}, kept=True)
        assert state.get("a") == 1
        state.set("b", None)
        state.set("c", 3)
        state.flush()
        conn.execute(STATE.delete().where(STATE.c.key == "a"))

        # What the state read or wrote it knows without reading again.
        assert (state.get("a"), state.get("b"), state.get("c")) == (1, None, 3)
        state.set("c", 4)
        state.flush()
        stored = dict(conn.execute(sa.select(STATE.c.key, STATE.c.value)).tuples().all())
    assert stored == {"c": "4"}
