"""Action excursions are reported by a deviation within the agreement's deadline: the batch
answers each excursion with its evaluation, when its report was due and whether it came."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from ledger.domain.limits import reporting_status
from ledger.timeutil import format_utc, now_utc
from tests.support.agreements import propose_and_sign, sign_retroactively
from tests.support.batches import (
    continuous_series,
    define_parameter,
    register_batch,
    revise_parameter,
    submit_data,
)
from tests.support.server import Server
from tests.support.world import World

SPONSOR, CMO = "northwind-bio", "contoso-cmo"
BATCH = "NWB101-24-031"

EXCURSIONS = """
query($b: String!) {
  batch(id: $b) {
    excursions {
      record { id value evaluation limitsVersion }
      evaluation reportDue reportedBy reporting
    }
  }
}
"""


def result(record_id: str, value: str, sampled: datetime) -> dict[str, Any]:
    return {
        "id": record_id,
        "parameter": "pH",
        "value": value,
        "unit": "[pH]",
        "sampled_at": format_utc(sampled),
        "method": "in-line probe",
    }


def _after(recorded_at: str) -> datetime:
    """The first millisecond after ``recorded_at`` that has come: an excursion sampled
    then is not reported by what was recorded at ``recorded_at`` (the same millisecond
    would be)."""
    while format_utc(sampled := now_utc()) <= recorded_at:
        time.sleep(0.001)
    return sampled


def deviation(record_id: str) -> dict[str, Any]:
    return {
        "id": record_id,
        "kind": "deviation",
        "started_at": format_utc(now_utc()),
        "severity": "major",
        "description": "pH above the action limit after a base pump fault",
    }


@pytest.fixture(scope="module")
def excursion_world(server: Server, api_world: World) -> World:
    agreement = propose_and_sign(api_world)
    register_batch(api_world, agreement, BATCH)
    define_parameter(api_world, agreement, "pH")
    sampled = now_utc()
    results = [result("P-1", "7.05", sampled), result("P-2", "7.17", sampled)]
    submit_data(api_world, BATCH, "discrete", [*results, result("P-3", "7.4", sampled)])
    reported = submit_data(api_world, BATCH, "event", [deviation("D-1")]).recorded_at
    submit_data(api_world, BATCH, "discrete", [result("P-4", "6.6", _after(reported))])
    # History migrated from paper: terms and limits in force since yesterday; a chiller
    # trip three hours ago lifts BR1.TEMP 0.8 Cel for five minutes, above 37.5 (action).
    migrated = sign_retroactively(api_world, format_utc(TRIP_START - timedelta(days=1)))
    register_batch(api_world, migrated, TRIP_BATCH, started_at=TRIP_START - timedelta(hours=1))
    temperature = define_parameter(
        api_world,
        migrated,
        "culture temperature",
        effective_from=format_utc(TRIP_START - timedelta(hours=2)),
        reason="limits of the paper batch record BR-2024-11, in force before migration",
    )
    series = continuous_series("BR1.TEMP", TRIP_START, 60, excursion=(10, 5))
    submit_data(api_world, TRIP_BATCH, "continuous", [series])
    # A later revision widens the limits: the trip stays evaluated as it was.
    revise_parameter(api_world, temperature, {"action": {"low": "36.0", "high": "38.5"}})
    server.services.projector.catch_up_safely(api_world.ledger.head())
    return api_world


TRIP_BATCH = "NWB101-24-032"
TRIP_START = now_utc().replace(microsecond=0) - timedelta(hours=3)
SERIES_EXCURSIONS = """
query($b: String!) {
  batch(id: $b) {
    seriesExcursions {
      tag limitsVersion evaluation first last count worst reportDue reportedBy reporting
    }
  }
}
"""


def test_a_continuous_excursion_is_flagged_with_the_limits_in_force_at_its_time(
    server: Server, excursion_world: World
) -> None:
    data, errors = server.call(excursion_world[SPONSOR], SERIES_EXCURSIONS, {"b": TRIP_BATCH})
    assert errors == []
    found = data["batch"]["seriesExcursions"]
    action = [e for e in found if e["evaluation"] == "action"]
    assert action, found
    [trip] = action
    assert (trip["tag"], trip["limitsVersion"], trip["count"]) == ("BR1.TEMP", 1, 5)
    assert trip["first"] == format_utc(TRIP_START + timedelta(minutes=10))
    assert trip["last"] == format_utc(TRIP_START + timedelta(minutes=14))
    assert float(trip["worst"]) > 37.5
    # No deviation reports it yet; it is due 24 hours after the trip began.
    assert (trip["reporting"], trip["reportedBy"]) == ("open", None)
    assert trip["reportDue"] == format_utc(TRIP_START + timedelta(hours=24, minutes=10))


def test_each_excursion_is_answered_with_its_reporting(
    server: Server, excursion_world: World
) -> None:
    data, errors = server.call(excursion_world[SPONSOR], EXCURSIONS, {"b": BATCH})
    assert errors == []
    found = {e["record"]["id"]: e for e in data["batch"]["excursions"]}
    assert sorted(found) == ["P-2", "P-3", "P-4"]
    assert found["P-2"]["evaluation"] == "alert"
    assert found["P-2"]["reporting"] == "not_required"
    assert (found["P-3"]["evaluation"], found["P-3"]["reporting"]) == ("action", "reported")
    assert found["P-3"]["reportedBy"] == "D-1"
    assert found["P-3"]["record"]["limitsVersion"] == 1
    assert (found["P-4"]["reporting"], found["P-4"]["reportedBy"]) == ("open", None)
    assert found["P-4"]["reportDue"] > found["P-3"]["reportDue"]


def test_excursions_need_both_the_results_and_the_deviations(
    server: Server, excursion_world: World
) -> None:
    _, errors = server.call(excursion_world["fabrikam-cmo"], EXCURSIONS, {"b": BATCH})
    assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"]


def test_a_report_after_the_deadline_is_late_and_a_missing_one_unreported() -> None:
    due = "2024-03-02T08:00:00.000Z"
    assert reporting_status(due, "2024-03-02T07:59:59.999Z", "2024-03-05T00:00:00.000Z") == (
        "reported"
    )
    assert reporting_status(due, "2024-03-02T08:00:00.001Z", "2024-03-05T00:00:00.000Z") == "late"
    assert reporting_status(due, None, "2024-03-02T08:00:00.000Z") == "open"
    assert reporting_status(due, None, "2024-03-02T08:00:00.001Z") == "unreported"
