"""Confidential elements never reach a table a non-granted reader can query: the log and
the views hold their commitments; the values are only in the openings, stored apart and
read by the query layer for a reader whose grant includes them. Records signed in clear
by an earlier release still project into ``proj_record_confidential``."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import ledger.domain.batches as batches_module
from ledger.domain.commitments import committed
from ledger.log.openings import OPENINGS, read_openings
from ledger.log.verify import verify_ledger
from projections.data import CONFIDENTIAL, RECORDS
from projections.runner import Projector
from tests.projections.conftest import SMALL, run_scenario, snapshot
from tests.support.agreements import propose_and_sign
from tests.support.batches import discrete_records, register_batch, submit_data
from tests.support.scenario import SECRET_PREFIX
from tests.support.world import World


def _commitments_in_log(world: World) -> list[str]:
    return [
        commitment
        for event in world.ledger.iter_log()
        if event.event.envelope["type"] in ("DataSubmitted", "DataCorrected")
        for record in event.event.envelope["payload"].get("records", [])
        for value in record.values()
        if (commitment := committed(value)) is not None
    ]


def test_confidential_values_are_neither_in_the_log_nor_in_any_view(
    world: World, projector: Projector
) -> None:
    run_scenario(world, SMALL)
    commitments = _commitments_in_log(world)
    assert commitments, "the scenario delivered no confidential element"
    log_text = repr([e.event.envelope for e in world.ledger.iter_log()])
    assert SECRET_PREFIX not in log_text

    leaks = [
        (table, row)
        for tables in snapshot(projector).values()
        for table, rows in tables.items()
        for row in rows
        if SECRET_PREFIX in repr(row)
    ]
    assert leaks == []
    confidential = snapshot(projector)["data"][CONFIDENTIAL.name]
    assert len(confidential) == len(commitments)
    openings = read_openings(world.ledger.engine, commitments)
    assert openings, "no opening was stored"
    assert all(o.value.startswith(SECRET_PREFIX) for o in openings.values())
    assert all(o.opens(c) for c, o in openings.items())


def test_a_record_keeps_its_columns_and_its_confidential_element_as_a_commitment(
    world: World, projector: Projector
) -> None:
    agreement = propose_and_sign(world)
    register_batch(world, agreement)
    records = discrete_records("R", media_lot_supplier="Lonza lot 4471")
    submit_data(world, "NWB101-24-001", "discrete", records)

    with world.ledger.engine.connect() as conn:
        row = conn.execute(sa.select(RECORDS).where(RECORDS.c.record_id == "R-002")).one()._mapping
        hidden = conn.execute(
            sa.select(
                CONFIDENTIAL.c.element, CONFIDENTIAL.c.value, CONFIDENTIAL.c.commitment
            ).where(CONFIDENTIAL.c.record_id == "R-002")
        ).all()
        stored = conn.execute(sa.select(OPENINGS.c.value)).scalars().all()
    assert (row["parameter"], row["value"], row["unit"]) == ("titer at harvest", "4.62", "g/L")
    assert "Lonza" not in repr(dict(row))
    assert row["other"] is None
    [(element, value, commitment)] = hidden
    assert (element, value) == ("media_lot_supplier", None)
    assert read_openings(world.ledger.engine, [commitment])[commitment].value == "Lonza lot 4471"
    assert stored == ["Lonza lot 4471"] * len(records)


def _accept_clear_elements(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rule of the release before commitments: a confidential element is text."""

    def clear(command: object, batch: object, record: object, record_id: str, element: str):
        record.text(element)  # type: ignore[attr-defined]

    monkeypatch.setattr(batches_module, "_committed_element", clear)


def test_records_signed_in_clear_by_an_earlier_release_still_read_verify_and_project(
    world: World, projector: Projector, monkeypatch: pytest.MonkeyPatch
) -> None:
    agreement = propose_and_sign(world)
    register_batch(world, agreement)
    with monkeypatch.context() as patched:
        _accept_clear_elements(patched)
        records = discrete_records("R", media_lot_supplier="Lonza lot 4471")
        appended = submit_data(world, "NWB101-24-001", "discrete", records, openings=[])

    signed = world.ledger.read(appended.position - 1, 1)[0].event.envelope
    assert signed["payload"]["records"][1]["media_lot_supplier"] == "Lonza lot 4471"
    assert verify_ledger(world.ledger, workers=1).ok
    with world.ledger.engine.connect() as conn:
        hidden = conn.execute(
            sa.select(
                CONFIDENTIAL.c.element, CONFIDENTIAL.c.value, CONFIDENTIAL.c.commitment
            ).where(CONFIDENTIAL.c.record_id == "R-002")
        ).all()
    assert [tuple(h) for h in hidden] == [("media_lot_supplier", "Lonza lot 4471", None)]
