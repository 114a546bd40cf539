"""Manually entered critical values through the API (R17): a discrete result answers whether
it was entered by hand and whether it is verified; an unverified one is no excursion until a
second person of the CMO verified it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from ledger.domain.formats import MANUAL_SOURCE
from ledger.domain.subjects import baseline_subject, batch_subject
from ledger.timeutil import format_utc, now_utc
from tests.support.agreements import propose_and_sign
from tests.support.batches import define_parameter, register_batch, submit_data
from tests.support.persons import ready_person
from tests.support.server import Server
from tests.support.world import Actor, World

SPONSOR, CMO = "northwind-bio", "contoso-cmo"
WAITING, CHECKED = "NWB101-25-401", "NWB101-25-402"
CHARTED = ("NWB101-25-411", "NWB101-25-412", "NWB101-25-413")
TYPED = "NWB101-25-414"
HMW = "high molecular weight species"  # a CQA, confirmed: alert above 1.5 %, action above 2.0 %
ENDOTOXIN = "endotoxin"  # a CQA, confirmed, charted over batches (R26)

RESULTS = """
query($b: String!) {
  batch(id: $b) {
    discrete { id manual verified verifiedAt verifiedBy evaluation }
    excursions { evaluation record { id verified } }
  }
}
"""


CPV = """
query($a: ID!, $p: String!) {
  cpv(agreementId: $a, parameter: $p, baseline: "PPQ") { points { batch } }
}
"""


def _result(record_id: str, value: str, parameter: str = HMW, unit: str = "%") -> dict[str, Any]:
    return {
        "id": record_id,
        "parameter": parameter,
        "value": value,
        "unit": unit,
        "sampled_at": format_utc(now_utc()),  # the limits are in force from their definition
        "method": "SE-HPLC",
    }


def _enter(world: World, batch: str, by: Actor, record: dict[str, Any], source: str) -> str:
    submission = str(uuid.uuid4())
    submit_data(
        world, batch, "discrete", [record], by=by, submission=submission, source_system=source
    )
    return submission


@dataclass(frozen=True)
class Plant:
    world: World
    agreement: str


@pytest.fixture(scope="module")
def plant(server: Server, api_world: World) -> Plant:
    agreement = propose_and_sign(api_world)
    define_parameter(api_world, agreement, HMW)
    define_parameter(api_world, agreement, ENDOTOXIN)
    meanings = ("submitted", "verified")
    entrant = ready_person(api_world, CMO, "a.okafor", meanings)
    checker = ready_person(api_world, CMO, "m.weber", meanings)
    for batch in (WAITING, CHECKED):
        register_batch(api_world, agreement, batch)
        _enter(api_world, batch, entrant, _result("L-1", "1.7"), "contoso-lims")  # alert
    _enter(api_world, WAITING, entrant, _result("M-1", "2.4"), MANUAL_SOURCE)  # action
    typed = _enter(api_world, CHECKED, entrant, _result("M-2", "2.4"), MANUAL_SOURCE)
    checked = {"batch": CHECKED, "submission": typed, "records": ["M-2"]}
    checker.submit(
        api_world.ledger, "DataVerified", batch_subject(CHECKED), checked, meaning="verified"
    )
    # Three batches with a LIMS result each, and one whose result a person typed in.
    for index, batch in enumerate(CHARTED):
        # Started after the limits took effect: each batch is charted against them.
        register_batch(api_world, agreement, batch, started_at=now_utc())
        tested = _result(f"C-{index}", f"0.0{index + 1}", ENDOTOXIN, "EU/mL")
        _enter(api_world, batch, entrant, tested, "contoso-lims")
    register_batch(api_world, agreement, TYPED, started_at=now_utc())
    typed_in = _result("C-9", "0.09", ENDOTOXIN, "EU/mL")
    _enter(api_world, TYPED, entrant, typed_in, MANUAL_SOURCE)
    baseline = {"agreement": str(agreement), "parameter": ENDOTOXIN, "name": "PPQ"}
    api_world[SPONSOR].submit(
        api_world.ledger,
        "BaselineDefined",
        baseline_subject(agreement, ENDOTOXIN, "PPQ"),
        {**baseline, "batches": [*CHARTED, TYPED]},
        meaning="authored",
    )
    server.services.projector.catch_up_safely(api_world.ledger.head())
    return Plant(api_world, str(agreement))


def _answer(server: Server, plant: Plant, batch: str) -> dict[str, Any]:
    data, errors = server.call(plant.world[SPONSOR], RESULTS, {"b": batch})
    assert errors == []
    answer: dict[str, Any] = data["batch"]
    assert answer["discrete"], "the batch has no discrete results"
    return answer


def test_r17_unverified_value_is_excluded_from_evaluation(server: Server, plant: Plant) -> None:
    answer = _answer(server, plant, WAITING)
    records = {r["id"]: r for r in answer["discrete"]}
    assert records["M-1"] == {
        "id": "M-1",
        "manual": True,
        "verified": False,
        "verifiedAt": None,
        "verifiedBy": None,
        "evaluation": "action",
    }
    assert (records["L-1"]["manual"], records["L-1"]["verified"]) == (False, True)
    excursions = [(e["record"]["id"], e["evaluation"]) for e in answer["excursions"]]
    assert excursions == [("L-1", "alert")]


def test_r17_verified_value_is_evaluated(server: Server, plant: Plant) -> None:
    answer = _answer(server, plant, CHECKED)
    records = {r["id"]: r for r in answer["discrete"]}
    assert (records["M-2"]["manual"], records["M-2"]["verified"]) == (True, True)
    assert records["M-2"]["verifiedBy"] == "m.weber"
    assert records["M-2"]["verifiedAt"] is not None
    excursions = sorted((e["record"]["id"], e["evaluation"]) for e in answer["excursions"])
    assert excursions == [("L-1", "alert"), ("M-2", "action")]


def test_r17_unverified_value_is_no_cpv_input(server: Server, plant: Plant) -> None:
    variables = {"a": plant.agreement, "p": ENDOTOXIN}
    data, errors = server.call(plant.world[SPONSOR], CPV, variables)
    assert errors == []
    assert [point["batch"] for point in data["cpv"]["points"]] == list(CHARTED)
