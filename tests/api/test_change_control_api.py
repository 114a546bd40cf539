"""Change proposals and CAPAs over the API: ``changes`` and ``capas`` answer the agreement's
parties and its active grantees, a batch shows its open CAPAs, and anyone else is refused."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ledger.domain.subjects import capa_subject, change_subject
from tests.support.agreements import grant, propose_and_sign
from tests.support.batches import define_parameter, event_records, register_batch, submit_data
from tests.support.persons import ready_person
from tests.support.server import Server, codes
from tests.support.world import World

SPONSOR, CMO, STRANGER, REGULATOR, AUDITOR = (
    "northwind-bio",
    "contoso-cmo",
    "helios-tx",
    "agency-inspectorate",
    "qa-auditor-llc",
)
BATCH = "NWB101-26-401"
CHANGES = """
query($a: ID, $open: Boolean) {
  changes(agreementId: $a, open: $open) {
    changeId ecImpact reportingCategory affectedParameters status open decision
  }
}
"""
CAPAS = """
query($a: ID, $b: String, $open: Boolean) {
  capas(agreementId: $a, batch: $b, open: $open) {
    capaId batch records owner status open effectivenessCheck
  }
}
"""
BATCH_CAPAS = f'query {{ batch(id: "{BATCH}") {{ capas {{ capaId records }} }} }}'


def _change(world: World, agreement: uuid.UUID, change: str, **overrides: Any) -> uuid.UUID:
    payload: dict[str, Any] = {
        "agreement": str(agreement),
        "change": change,
        "title": f"Change {change}",
        "description": "Sparger replaced.",
        "ec_impact": True,
        "reporting_category": "cbe-30",
        "affected_parameters": ["dissolved oxygen"],
        **overrides,
    }
    subject = change_subject(agreement, change)
    world[CMO].submit(world.ledger, "ChangeProposed", subject, payload, meaning="authored")
    return subject


def _capa(world: World, agreement: uuid.UUID, capa: str, records: list[str]) -> uuid.UUID:
    payload = {
        "agreement": str(agreement),
        "capa": capa,
        "batch": BATCH,
        "records": records,
        "description": "Redundant chiller.",
        "owner": CMO,
    }
    subject = capa_subject(agreement, capa)
    world[SPONSOR].submit(world.ledger, "CapaOpened", subject, payload, meaning="authored")
    return subject


@pytest.fixture(scope="module")
def agreement(server: Server, api_world: World) -> str:
    world = api_world
    agreement_id = propose_and_sign(world)
    define_parameter(world, agreement_id, "dissolved oxygen")
    approved = _change(world, agreement_id, "CC-2026-001")
    quality_unit = ready_person(world, SPONSOR, "q.unit")
    quality_unit.submit(world.ledger, "ChangeApproved", approved, {}, meaning="approved")
    world[CMO].submit(world.ledger, "ChangeImplemented", approved, {}, meaning="implemented")
    _change(world, agreement_id, "CC-2026-002", ec_impact=False, reporting_category="annual-report")
    register_batch(world, agreement_id, BATCH)
    submit_data(world, BATCH, "event", event_records())
    closed = _capa(world, agreement_id, "CAPA-2026-001", ["E-001"])
    world[CMO].submit(
        world.ledger,
        "CapaClosed",
        closed,
        {"effectiveness_check": "no excursion in five batches"},
        meaning="closed",
        reason="effective",
    )
    _capa(world, agreement_id, "CAPA-2026-002", ["E-001", "E-003"])
    grant(world, agreement_id, SPONSOR, REGULATOR, data_classes=["event"])
    server.services.projector.catch_up_safely(world.ledger.head())
    return str(agreement_id)


def _ask(server: Server, world: World, party: str, query: str, **variables: Any) -> Any:
    data, errors = server.call(world[party], query, variables)
    assert errors == [], errors
    return data


def test_r22_changes_list_ec_impact_reporting_category_and_status(
    server: Server, api_world: World, agreement: str
) -> None:
    found = _ask(server, api_world, SPONSOR, CHANGES, a=agreement)["changes"]
    assert [(c["changeId"], c["status"], c["open"]) for c in found] == [
        ("CC-2026-001", "implemented", False),
        ("CC-2026-002", "proposed", True),
    ]
    assert found[0]["ecImpact"] is True and found[0]["reportingCategory"] == "cbe-30"
    assert found[0]["affectedParameters"] == ["dissolved oxygen"]
    assert found[0]["decision"] == "approved"
    open_only = _ask(server, api_world, CMO, CHANGES, a=agreement, open=True)["changes"]
    assert [c["changeId"] for c in open_only] == ["CC-2026-002"]


def test_open_capas_are_listed_with_the_batch(
    server: Server, api_world: World, agreement: str
) -> None:
    batch = _ask(server, api_world, SPONSOR, BATCH_CAPAS)["batch"]
    assert batch["capas"] == [{"capaId": "CAPA-2026-002", "records": ["E-001", "E-003"]}]
    every = _ask(server, api_world, CMO, CAPAS, b=BATCH)["capas"]
    assert [(c["capaId"], c["status"]) for c in every] == [
        ("CAPA-2026-001", "closed"),
        ("CAPA-2026-002", "open"),
    ]
    assert every[0]["effectivenessCheck"] == "no excursion in five batches"
    closed = _ask(server, api_world, CMO, CAPAS, a=agreement, open=False)["capas"]
    assert [c["capaId"] for c in closed] == ["CAPA-2026-001"]


def test_a_granted_regulator_reads_changes_and_capas(
    server: Server, api_world: World, agreement: str
) -> None:
    changes = _ask(server, api_world, REGULATOR, CHANGES, a=agreement)["changes"]
    assert len(changes) == 2
    capas = _ask(server, api_world, REGULATOR, CAPAS, b=BATCH)["capas"]
    assert len(capas) == 2


@pytest.mark.parametrize("party", [STRANGER, AUDITOR])
def test_a_stranger_cannot_read_changes_or_capas(
    server: Server, api_world: World, agreement: str, party: str
) -> None:
    for query, variables in (
        (CHANGES, {"a": agreement}),
        (CAPAS, {"a": agreement}),
        (CAPAS, {"b": BATCH}),
        (BATCH_CAPAS, {}),
    ):
        data, errors = server.call(api_world[party], query, variables)
        assert codes(errors) == ["FORBIDDEN"], errors
        assert data is None or all(value is None for value in data.values())
    unasked = _ask(server, api_world, party, "{ changes { changeId } capas { capaId } }")
    assert unasked == {"changes": [], "capas": []}
