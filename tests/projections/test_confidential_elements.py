"""Confidential elements never reach a table a non-granted reader can query: their values
are only in ``proj_record_confidential``, which the query layer masks."""

from __future__ import annotations

import sqlalchemy as sa

from projections.data import CONFIDENTIAL, RECORDS
from projections.runner import Projector
from tests.projections.conftest import SMALL, run_scenario, snapshot
from tests.support.agreements import propose_and_sign
from tests.support.batches import discrete_records, register_batch, submit_data
from tests.support.scenario import SECRET_PREFIX
from tests.support.world import World


def test_confidential_values_are_only_in_the_confidential_table(
    world: World, projector: Projector
) -> None:
    run_scenario(world, SMALL)
    secrets_in_log = sum(
        1
        for event in world.ledger.iter_log()
        for record in event.event.envelope["payload"].get("records", [])
        if isinstance(record, dict)
        for value in record.values()
        if isinstance(value, str) and value.startswith(SECRET_PREFIX)
    )
    assert secrets_in_log > 0, "the scenario delivered no confidential element"

    leaks = [
        (table, row)
        for tables in snapshot(projector).values()
        for table, rows in tables.items()
        for row in rows
        if table != CONFIDENTIAL.name and SECRET_PREFIX in repr(row)
    ]
    assert leaks == []
    confidential = snapshot(projector)["data"][CONFIDENTIAL.name]
    assert len(confidential) == secrets_in_log


def test_a_record_keeps_its_columns_and_loses_its_confidential_element(
    world: World, projector: Projector
) -> None:
    agreement = propose_and_sign(world)
    register_batch(world, agreement)
    records = discrete_records("R", media_lot_supplier="Lonza lot 4471")
    submit_data(world, "NWB101-24-001", "discrete", records)

    with world.ledger.engine.connect() as conn:
        row = conn.execute(sa.select(RECORDS).where(RECORDS.c.record_id == "R-002")).one()._mapping
        hidden = conn.execute(
            sa.select(CONFIDENTIAL.c.element, CONFIDENTIAL.c.value).where(
                CONFIDENTIAL.c.record_id == "R-002"
            )
        ).all()
    assert (row["parameter"], row["value"], row["unit"]) == ("titer at harvest", "4.62", "g/L")
    assert "Lonza" not in repr(dict(row))
    assert row["other"] is None
    assert [tuple(h) for h in hidden] == [("media_lot_supplier", "Lonza lot 4471")]
