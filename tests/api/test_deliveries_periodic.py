"""The served answers to terms as real agreements are written: periodic obligations in
``deliveries``, and data of classes an amendment added or retired."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest

from ledger.domain.subjects import batch_subject
from ledger.errors import ValidationFailed
from ledger.timeutil import format_utc, now_utc
from tests.support.batches import discrete_records, register_batch
from tests.support.server import Server
from tests.support.world import World, class_spec, terms_with_classes

SPONSOR, CMO, REGULATOR = "northwind-bio", "contoso-cmo", "agency-inspectorate"
PER_BATCH = {"within_hours": 72, "after": "batch_end"}
MIGRATED = "stability programme agreed on paper before it was recorded here"

DELIVERIES = """
query($a: ID!, $late: Boolean) {
  deliveries(agreementId: $a, late: $late) {
    batch dataClass rule everyDays withinHours period periodStart dueAt
    firstArrivedAt firstSubmission state late
  }
}
"""
RECORDS = """
query($b: String!, $c: String!) { batch(id: $b) { discrete(dataClass: $c) { id } } }
"""


def _spec(name: str, delivery: dict[str, Any], owner: str = SPONSOR) -> dict[str, Any]:
    return class_spec(owner, "discrete", delivery, f"{name}-csv/v1")


def _agreement(world: World, classes: dict[str, Any], effective_from: str | None = None) -> str:
    agreement_id = uuid.uuid4()
    terms = terms_with_classes(classes)
    world[SPONSOR].submit(
        world.ledger, "AgreementProposed", agreement_id, {"terms": terms}, meaning="authored"
    )
    signed = {} if effective_from is None else {"effective_from": effective_from}
    world[CMO].submit(
        world.ledger,
        "AgreementSigned",
        agreement_id,
        signed,
        meaning="signed",
        reason=None if effective_from is None else MIGRATED,
    )
    return str(agreement_id)


def _submit(world: World, batch: str, kind: str, prefix: str) -> dict[str, Any]:
    payload = {
        "submission": str(uuid.uuid4()),
        "kind": kind,
        "source_system": "contoso-lims",
        "schema_version": "1.0",
        "format": f"{kind}-csv/v1",
        "records": discrete_records(prefix),
    }
    world[CMO].submit(
        world.ledger, "DataSubmitted", batch_subject(batch), payload, meaning="submitted"
    )
    return payload


def _amend(world: World, agreement: str, classes: dict[str, Any]) -> None:
    subject = uuid.UUID(agreement)
    world[SPONSOR].submit(
        world.ledger,
        "AgreementAmended",
        subject,
        {"terms": terms_with_classes(classes)},
        meaning="authored",
        reason="the data classes change",
    )
    world[CMO].submit(world.ledger, "AgreementAmendmentSigned", subject, {}, meaning="signed")


def _caught_up(server: Server, world: World) -> None:
    projector = server.services.projector
    assert projector is not None, "the server runs no projector"
    projector.catch_up_safely(world.ledger.head())


def _periodic(server: Server, world: World, agreement: str, late: bool | None = None) -> Any:
    data, errors = server.call(world[SPONSOR], DELIVERIES, {"a": agreement, "late": late})
    assert errors == [], errors
    return [d for d in data["deliveries"] if d["batch"] is None]


def _records(server: Server, world: World, party: str, batch: str, data_class: str) -> Any:
    data, errors = server.call(world[party], RECORDS, {"b": batch, "c": data_class})
    assert errors == [], errors
    return data["batch"]["discrete"]


def test_periodic_deliveries_are_served_late_missing_and_awaiting(
    server: Server, api_world: World
) -> None:
    world = api_world
    since = format_utc(now_utc() - timedelta(days=7))
    agreement = _agreement(world, {"stability": _spec("stability", {"every_days": 3})}, since)
    register_batch(world, uuid.UUID(agreement), "NWB101-24-401")
    payload = _submit(world, "NWB101-24-401", "stability", "S")
    _caught_up(server, world)

    found = _periodic(server, world, agreement)
    assert found, "no periodic obligation was served"
    assert [d["state"] for d in found] == ["late", "missing", "awaiting"]
    assert [d["period"] for d in found] == [1, 2, 3]
    assert found[0]["periodStart"] == since
    assert found[0]["firstSubmission"] == payload["submission"]
    for delivery in found:
        assert delivery["rule"] == "every_days" and delivery["everyDays"] == 3
        assert delivery["dataClass"] == "stability" and delivery["withinHours"] is None
    late = _periodic(server, world, agreement, late=True)
    assert [d["state"] for d in late] == ["late", "missing"]


def test_an_amendment_adding_a_class_serves_its_data(server: Server, api_world: World) -> None:
    world = api_world
    stability = _spec("stability", PER_BATCH)
    agreement = _agreement(world, {"stability": stability})
    register_batch(world, uuid.UUID(agreement), "NWB101-24-402")
    reports = _spec("analytical_reports", {"monthly_on_day": 5}, owner=CMO)
    _amend(world, agreement, {"stability": stability, "analytical_reports": reports})
    _submit(world, "NWB101-24-402", "analytical_reports", "AR")
    _caught_up(server, world)

    served = _records(server, world, CMO, "NWB101-24-402", "analytical_reports")
    assert served, "the added class's data was not served"
    assert all(r["id"].startswith("AR-") for r in served)
    periodic = _periodic(server, world, agreement)
    assert periodic, "the added class's monthly obligation was not served"
    assert {d["rule"] for d in periodic} == {"monthly_on_day"}


def test_a_retired_class_stays_readable_and_takes_no_new_data(
    server: Server, api_world: World
) -> None:
    world = api_world
    stability, discrete = _spec("stability", PER_BATCH), _spec("discrete", PER_BATCH)
    agreement = _agreement(world, {"stability": stability, "discrete": discrete})
    batch = "NWB101-24-403"
    register_batch(world, uuid.UUID(agreement), batch)
    _submit(world, batch, "stability", "ST")
    grant = {
        "agreement": agreement,
        "grantee": REGULATOR,
        "data_classes": ["stability"],
        "purpose": "inspection of the stability programme",
        "valid_until": format_utc(now_utc() + timedelta(days=14)),
    }
    world[SPONSOR].submit(world.ledger, "AccessGranted", uuid.uuid4(), grant, meaning="granted")
    _amend(world, agreement, {"discrete": discrete})

    head = world.ledger.head()
    with pytest.raises(ValidationFailed) as refusal:
        _submit(world, batch, "stability", "SU")
    assert refusal.value.field == "payload.kind" and "discrete" in str(refusal.value)
    assert world.ledger.head() == head
    with pytest.raises(ValidationFailed) as refused_grant:
        world[SPONSOR].submit(world.ledger, "AccessGranted", uuid.uuid4(), grant, meaning="granted")
    assert refused_grant.value.field == "payload.data_classes[0]"
    _caught_up(server, world)

    for party in (SPONSOR, CMO, REGULATOR):
        served = _records(server, world, party, batch, "stability")
        assert served, f"{party} no longer reads the retired class's data"
        assert {r["id"] for r in served} == {f"ST-{i:03d}" for i in range(1, 6)}


def test_the_api_serves_the_committed_terms_schema(server: Server) -> None:
    committed = Path(__file__).resolve().parents[2] / "docs" / "schema" / "AgreementTerms.json"
    with httpx2.Client(base_url=server.url) as client:
        assert client.get("/schema/").json()["terms"] == "/schema/AgreementTerms.json"
        response = client.get("/schema/AgreementTerms.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/schema+json")
    assert response.content == committed.read_bytes()
