"""Results are evaluated against the registry: the limits version in force at each record's
sample time, kept with the record, never changed by a later revision."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ledger.domain.limits import LimitsVersion, in_force_at
from ledger.timeutil import format_utc, now_utc
from projections.data import RECORDS
from projections.runner import Projector
from tests.support.agreements import propose_and_sign
from tests.support.batches import (
    define_parameter,
    register_batch,
    revise_parameter,
    submit_data,
)
from tests.support.world import World

BATCH = "NWB101-24-001"
SPONSOR, CMO = "northwind-bio", "contoso-cmo"


def result(record_id: str, parameter: str, value: str, unit: str, sampled: datetime) -> Any:
    return {
        "id": record_id,
        "parameter": parameter,
        "value": value,
        "unit": unit,
        "sampled_at": format_utc(sampled),
        "method": "in-line probe",
    }


def evaluations(world: World) -> dict[str, tuple[Any, Any, Any]]:
    query = sa.select(RECORDS).where(RECORDS.c.valid_to.is_(None))
    with world.ledger.engine.connect() as conn:
        rows = [row._mapping for row in conn.execute(query)]
    assert rows, "the records view is empty"
    return {r["record_id"]: (r["evaluation"], r["limits_version"], r["parameter_id"]) for r in rows}


def test_each_result_is_evaluated_against_the_limits_in_force_at_its_sample_time(
    world: World, projector: Projector
) -> None:
    agreement = propose_and_sign(world)
    register_batch(world, agreement)
    ph = define_parameter(world, agreement, "pH")
    sampled = now_utc()
    records = [
        result("R-1", "pH", "7.05", "[pH]", sampled),
        result("R-2", "pH", "7.17", "[pH]", sampled),
        result("R-3", "pH", "7.4", "[pH]", sampled),
        result("R-4", "pH", "6.5", "[pH]", sampled),
        result("R-5", "titre at harvst", "4.6", "g/L", sampled),
        result("R-6", "pH", "7.05", "[pH]", sampled - timedelta(days=30)),
    ]
    submit_data(world, BATCH, "discrete", records)

    found = evaluations(world)
    assert found["R-1"] == ("within", 1, str(ph))
    assert found["R-2"] == ("alert", 1, str(ph))
    assert found["R-3"] == ("action", 1, str(ph))
    assert found["R-4"] == ("action", 1, str(ph))
    assert found["R-5"] == ("unregistered", None, None)
    assert found["R-6"] == ("no_limits", None, str(ph))


def test_a_later_revision_does_not_change_how_an_earlier_result_was_evaluated(
    world: World, projector: Projector
) -> None:
    agreement = propose_and_sign(world)
    register_batch(world, agreement)
    ph = define_parameter(world, agreement, "pH")
    submit_data(world, BATCH, "discrete", [result("R-1", "pH", "7.18", "[pH]", now_utc())])
    revise_parameter(
        world,
        ph,
        {"alert": {"low": "6.95", "high": "7.20"}, "action": {"low": "6.90", "high": "7.25"}},
    )
    submit_data(world, BATCH, "discrete", [result("R-2", "pH", "7.18", "[pH]", now_utc())])

    found = evaluations(world)
    assert found["R-1"] == ("alert", 1, str(ph))
    assert found["R-2"] == ("within", 2, str(ph))


def test_the_version_in_force_is_the_one_whose_valid_interval_holds_the_time() -> None:
    first = LimitsVersion(1, "2024-01-01T00:00:00.000Z", "2024-06-01T00:00:00.000Z", "1", "2")
    second = LimitsVersion(2, "2024-06-01T00:00:00.000Z", None, "1", "3")
    versions = [first, second]
    assert in_force_at(versions, "2023-12-31T23:59:59.999Z") is None
    assert in_force_at(versions, "2024-01-01T00:00:00.000Z") == first
    assert in_force_at(versions, "2024-05-31T23:59:59.999Z") == first
    assert in_force_at(versions, "2024-06-01T00:00:00.000Z") == second
    assert second.evaluate("2.5") == "within"
    assert first.evaluate("2.5") == "alert"
    assert LimitsVersion(3, "2024-01-01T00:00:00.000Z", action_high="2").evaluate("2.5") == (
        "action"
    )
