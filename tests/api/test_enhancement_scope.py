"""Grants scope what is confidential: an agreement's enhancement claims reach a grantee only
through a grant that names ``enhancements``; any other grant opens none of them."""

from __future__ import annotations

import json
import uuid

import pytest

from ledger.domain.commitments import commitment_of
from ledger.domain.subjects import parameter_subject
from tests.support.agreements import grant, propose_and_sign
from tests.support.batches import define_parameter
from tests.support.server import Server
from tests.support.world import World

SPONSOR, CMO, REGULATOR, AUDITOR = (
    "northwind-bio",
    "contoso-cmo",
    "agency-inspectorate",
    "qa-auditor-llc",
)
CLAIMS = "query($a: ID!) { enhancements(agreementId: $a) { title commitment } }"
TRAIL = """
{ auditTrail(filter: {type: "EnhancementClaimed"}, first: 50) {
    edges { node { type event { envelope } } } } }
"""


@pytest.fixture(scope="module")
def agreement(server: Server, api_world: World) -> str:
    world = api_world
    agreement_id = propose_and_sign(world)
    define_parameter(world, agreement_id, "dissolved oxygen")
    payload = {
        "agreement": str(agreement_id),
        "title": "Feed strategy C",
        "summary": "A third bolus on day 8.",
        "commitment": commitment_of(b"\x02" * 16, b"the dossier"),
        "parameter_versions": [
            {"parameter": str(parameter_subject(agreement_id, "dissolved oxygen")), "version": 1}
        ],
        "evidence": [],
        "ownership_claimed": "cmo",
    }
    world[CMO].submit(world.ledger, "EnhancementClaimed", uuid.uuid4(), payload, meaning="authored")
    grant(world, agreement_id, SPONSOR, REGULATOR, data_classes=["discrete"])
    grant(world, agreement_id, SPONSOR, AUDITOR, data_classes=["discrete"], enhancements=True)
    server.services.projector.catch_up_safely(world.ledger.head())
    return str(agreement_id)


def claims(server: Server, world: World, party: str, agreement: str) -> list[str]:
    data, errors = server.call(world[party], CLAIMS, {"a": agreement})
    assert errors == []
    return [claim["title"] for claim in data["enhancements"]]


def test_a_grant_without_enhancements_opens_no_claim(
    server: Server, api_world: World, agreement: str
) -> None:
    assert claims(server, api_world, SPONSOR, agreement) == ["Feed strategy C"]
    assert claims(server, api_world, REGULATOR, agreement) == []
    seen, _ = server.call(api_world[SPONSOR], TRAIL)
    assert "Feed strategy C" in json.dumps(seen)
    data, _ = server.call(api_world[REGULATOR], TRAIL)
    assert "Feed strategy C" not in json.dumps(data)  # the signed claim stays withheld


def test_a_grant_naming_enhancements_opens_the_agreement_s_claims(
    server: Server, api_world: World, agreement: str
) -> None:
    assert claims(server, api_world, AUDITOR, agreement) == ["Feed strategy C"]
    data, _ = server.call(api_world[AUDITOR], "{ grants { enhancements grantee } }")
    assert {"enhancements": True, "grantee": AUDITOR} in data["grants"]
