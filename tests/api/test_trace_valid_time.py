"""``traceBatch`` answers the terms and limits in force while the batch ran, in valid time
(the plant's), as the ledger knows them, and marks what it learnt after the batch's data."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ledger.domain.validity import Interval, successive
from ledger.timeutil import format_utc, now_utc
from tests.support.agreements import MIGRATED, propose_and_sign, sign_retroactively
from tests.support.batches import (
    define_parameter,
    discrete_records,
    end_batch,
    register_batch,
    revise_parameter,
    submit_data,
)
from tests.support.server import Server
from tests.support.world import World

SPONSOR, CMO = "northwind-bio", "contoso-cmo"
EARLIER, RUNNING, MIGRATED_BATCH = "NWB101-24-041", "NWB101-24-042", "NWB101-24-043"

TRACE = """
query($b: String!) {
  traceBatch(id: $b) {
    termsInForce { version effectiveFrom retroactive }
    termsKnownAfterData
    parameterLimits { name versions { version effectiveFrom retroactive } versionsKnownAfterData }
  }
}
"""


@pytest.fixture(scope="module")
def traced(server: Server, api_world: World) -> World:
    agreement = propose_and_sign(api_world)
    register_batch(api_world, agreement, EARLIER, started_at=now_utc() - timedelta(days=10))
    end_batch(api_world, EARLIER, now_utc() - timedelta(days=9))
    register_batch(api_world, agreement, RUNNING, started_at=now_utc() - timedelta(hours=1))
    ph = define_parameter(api_world, agreement, "pH")
    submit_data(api_world, RUNNING, "discrete", discrete_records("V", sampled_at=now_utc()))
    revise_parameter(api_world, ph, {"alert": {"low": "6.97", "high": "7.13"}})
    # History migrated from paper: terms and limits in force since before the batch started.
    since = now_utc() - timedelta(days=60)
    migrated = sign_retroactively(api_world, format_utc(since))
    define_parameter(
        api_world,
        migrated,
        "culture temperature",
        effective_from=format_utc(since + timedelta(days=1)),
        reason=MIGRATED,
    )
    register_batch(api_world, migrated, MIGRATED_BATCH, started_at=since + timedelta(days=10))
    end_batch(api_world, MIGRATED_BATCH, since + timedelta(days=24))
    server.services.projector.catch_up_safely(api_world.ledger.head())
    return api_world


def trace(server: Server, world: World, batch: str) -> Any:
    data, errors = server.call(world[SPONSOR], TRACE, {"b": batch})
    assert errors == []
    return data["traceBatch"]


def test_a_batch_that_ended_before_the_terms_took_effect_has_none_in_force(
    server: Server, traced: World
) -> None:
    found = trace(server, traced, EARLIER)
    assert found["termsInForce"] == []
    assert found["parameterLimits"] == []


def test_a_running_batch_names_every_version_in_force_while_it_ran(
    server: Server, traced: World
) -> None:
    found = trace(server, traced, RUNNING)
    assert [t["version"] for t in found["termsInForce"]] == [1]
    assert found["termsKnownAfterData"] == []
    (ph,) = found["parameterLimits"]
    assert [v["version"] for v in ph["versions"]] == [1, 2]
    assert ph["versionsKnownAfterData"] == [2]


def test_terms_and_limits_migrated_from_paper_are_named_and_shown_retroactive(
    server: Server, traced: World
) -> None:
    found = trace(server, traced, MIGRATED_BATCH)
    assert [(t["version"], t["retroactive"]) for t in found["termsInForce"]] == [(1, True)]
    (temperature,) = found["parameterLimits"]
    assert temperature["name"] == "culture temperature"
    assert [(v["version"], v["retroactive"]) for v in temperature["versions"]] == [(1, True)]


def test_versions_replace_each_other_in_valid_time() -> None:
    intervals = successive(
        {1: "2024-01-01T00:00:00.000Z", 2: "2024-02-01T00:00:00.000Z"}, "2024-03-01T00:00:00.000Z"
    )
    assert intervals == {
        1: Interval("2024-01-01T00:00:00.000Z", "2024-02-01T00:00:00.000Z"),
        2: Interval("2024-02-01T00:00:00.000Z", "2024-03-01T00:00:00.000Z"),
    }
    assert intervals[1].overlaps("2023-12-01T00:00:00.000Z", "2024-01-01T00:00:00.000Z")
    assert not intervals[2].overlaps("2024-03-01T00:00:00.000Z", "2024-04-01T00:00:00.000Z")
    assert not intervals[1].covers("2024-02-01T00:00:00.000Z")
    retired_before = successive({1: "2024-01-01T00:00:00.000Z"}, "2023-06-01T00:00:00.000Z")
    assert not retired_before[1].covers("2024-01-01T00:00:00.000Z")
