"""The audit trail shows each electronic signature's manifestation (R5): the printed name of
the person who signed, the time and the meaning; a party key's signature shows no person."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from clients.bundle import MANIFEST, TRACE, load_events, sha256_file, verify_bundle
from clients.client import LedgerClient
from clients.errors import ClientError
from clients.evidence import export_evidence, sign_manifest
from ledger.domain.subjects import batch_subject, person_subject
from ledger.keys import encode_public_key
from tests.support.agreements import propose_and_sign
from tests.support.batches import end_batch, register_batch
from tests.support.persons import person_key, ready_person
from tests.support.server import Server, codes
from tests.support.world import World

SPONSOR, CMO = "northwind-bio", "contoso-cmo"
TRAIL = """
query($f: AuditFilter) {
  auditTrail(filter: $f, first: 100) {
    edges { node { position subject type signer person printedName signedAt meaning } }
  }
}
"""


@pytest.fixture(scope="module")
def signed(server: Server, api_world: World) -> dict[str, Any]:
    """j.smith of Northwind (admitted by the party key) admits a.okafor as a person,
    through the API, which answers once the read models hold it."""
    world = api_world
    person = ready_person(world, SPONSOR, "j.smith")
    subject = person_subject(SPONSOR, "a.okafor")
    payload = {
        "party": SPONSOR,
        "person": "a.okafor",
        "printed_name": "Adaeze Okafor",
        "job_function": "QA Specialist",
        "meanings": ["reviewed"],
        "public_key": encode_public_key(person_key(SPONSOR, "a.okafor")),
    }
    party_key = world[SPONSOR].key
    with LedgerClient(
        server.url, SPONSOR, party_key, person="j.smith", person_key=person.key
    ) as client:
        stored = client.submit("PersonAdmitted", subject, payload, meaning="approved")
    (recorded,) = world.ledger.read(after=stored.position - 1, limit=1)
    return dict(recorded.event.envelope)


def trail(server: Server, world: World, party: str, **wanted: Any) -> list[dict[str, Any]]:
    data, errors = server.call(world[party], TRAIL, {"f": wanted})
    assert errors == [], errors
    return [edge["node"] for edge in data["auditTrail"]["edges"]]


@pytest.mark.parametrize("reader", [SPONSOR, CMO])
def test_r5_audit_trail_shows_printed_name_time_and_meaning(
    server: Server, api_world: World, signed: dict[str, Any], reader: str
) -> None:
    nodes = trail(server, api_world, reader, type="PersonAdmitted", signer=SPONSOR)
    assert nodes, "the trail lists no PersonAdmitted"
    by_subject = {node["subject"]: node for node in nodes}
    by_person = by_subject[signed["subject"]]
    assert (by_person["person"], by_person["printedName"]) == ("j.smith", "Jane Smith")
    assert (by_person["signedAt"], by_person["meaning"]) == (signed["signed_at"], "approved")
    by_party = by_subject[str(person_subject(SPONSOR, "j.smith"))]
    assert (by_party["person"], by_party["printedName"]) == (None, None)


def test_r7_a_client_signs_as_a_person_and_reads_the_manifestation_back(
    server: Server, api_world: World, signed: dict[str, Any]
) -> None:
    party = api_world[SPONSOR]
    key = person_key(SPONSOR, "j.smith")
    payload = {
        "party": SPONSOR,
        "person": "m.weber",
        "printed_name": "Markus Weber",
        "job_function": "Qualified Person",
        "meanings": ["dispositioned"],
        "public_key": encode_public_key(person_key(SPONSOR, "m.weber")),
    }
    subject = person_subject(SPONSOR, "m.weber")
    with LedgerClient(server.url, SPONSOR, party.key, person="j.smith", person_key=key) as client:
        stored = client.submit("PersonAdmitted", subject, payload, meaning="approved")
        entries = list(client.audit_trail(subject=str(subject)))
    assert entries, "the trail lists no event of the subject"
    assert [(e["position"], e["person"], e["printedName"]) for e in entries] == [
        (stored.position, "j.smith", "Jane Smith")
    ]


def test_r7_a_client_is_given_a_person_with_their_key(server: Server, api_world: World) -> None:
    with pytest.raises(ClientError) as refused:
        LedgerClient(server.url, SPONSOR, api_world[SPONSOR].key, person="j.smith")
    assert refused.value.field == "person"


PERSON_VERSION = "query($s: ID!, $p: String) { nextVersion(subject: $s, person: $p) { version } }"


def test_next_version_of_a_person_subject_is_told_only_for_the_callers_own_person(
    server: Server, api_world: World
) -> None:
    inspector, regulator = "agency-inspectorate", api_world["agency-inspectorate"]
    own = str(person_subject(inspector, "i.okafor"))
    data, errors = server.call(regulator, PERSON_VERSION, {"s": own, "p": "i.okafor"})
    assert errors == [] and data["nextVersion"]["version"] == 1, errors
    _, refused = server.call(regulator, PERSON_VERSION, {"s": own})
    assert codes(refused) == ["FORBIDDEN"], refused
    others = str(person_subject(SPONSOR, "i.okafor"))
    _, mismatched = server.call(regulator, PERSON_VERSION, {"s": others, "p": "i.okafor"})
    assert codes(mismatched) == ["VALIDATION_FAILED"], mismatched
    assert mismatched[0]["extensions"]["field"] == "person"


def test_r5_a_batch_released_by_a_person_exports_a_bundle_that_verifies_offline(
    server: Server, api_world: World, tmp_path: Path
) -> None:
    world = api_world
    qa = ready_person(world, SPONSOR, "r.quinn")
    agreement = propose_and_sign(world)
    batch = "NWB101-25-301"
    subject = batch_subject(batch)
    register_batch(world, agreement, batch)
    end_batch(world, batch)
    size = world.ledger.head()
    review = {
        "batch": batch,
        "checkpoint_size": size,
        "checkpoint_root": hashlib.sha256(f"root {size}".encode()).hexdigest(),
        "outcome": "no unexplained changes",
    }
    qa.submit(world.ledger, "AuditTrailReviewed", subject, review, meaning="reviewed")
    released = {"batch": batch, "disposition": "released"}
    sponsor = world[SPONSOR]
    # Through the API, which answers once its read models hold the batch's last event.
    with LedgerClient(
        server.url, SPONSOR, sponsor.key, person="r.quinn", person_key=qa.key
    ) as client:
        client.submit(
            "BatchDispositioned",
            subject,
            released,
            meaning="dispositioned",
            reason="reviewed; within specification",
        )
    with LedgerClient(server.url, SPONSOR, sponsor.key) as client:
        bundle = export_evidence(client, batch, tmp_path / "bundle")
    kinds = {event.type for event in load_events(bundle)}
    assert {"PersonAdmitted", "AuditTrailReviewed", "BatchDispositioned"} <= kinds
    report = verify_bundle(bundle)
    assert report.problems == []
    trace = json.loads((bundle / TRACE).read_text("utf-8"))
    signed = [e for e in trace["events"] if e["type"] == "BatchDispositioned"]
    assert [(e["person"], e["printedName"]) for e in signed] == [("r.quinn", "R.Quinn")]
    # A printed name the bundle's PersonAdmitted does not hold is found, even re-signed.
    for entry in trace["events"]:
        if entry["person"]:
            entry["printedName"] = "Someone Else"
    (bundle / TRACE).write_text(json.dumps(trace), "utf-8")
    manifest = json.loads((bundle / MANIFEST).read_text("utf-8"))
    manifest["files"][TRACE] = sha256_file(bundle / TRACE)
    (bundle / MANIFEST).write_text(json.dumps(manifest), "utf-8")
    sign_manifest(bundle, manifest, SPONSOR, sponsor.key)
    problems = verify_bundle(bundle).problems
    assert problems, "the changed printed name is found"
    assert all("names 'Someone Else' for person r.quinn" in p for p in problems)
