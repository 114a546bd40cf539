"""Parties submit envelopes they signed; every refusal has a code and a field, storing nothing."""

from __future__ import annotations

import base64
import uuid
from typing import Any, cast

import pytest
from nacl.signing import SigningKey
from strawberry.types.arguments import convert_argument

from api.mutations import OpeningInput, SignedEnvelopeInput
from api.schema import schema
from ledger.domain.subjects import party_subject
from ledger.keys import encode_public_key
from ledger.log.envelope import event_hash
from tests.support.server import SUBMIT, Server
from tests.support.world import Actor, World, agreement_terms

pytestmark = pytest.mark.xdist_group("api_mutations")

CMO = "contoso-cmo"
SPONSOR = "northwind-bio"
SUBMIT_MANY = """
mutation($events: [SignedEnvelopeInput!]!) {
  submitEvents(events: $events) { position leafIndex recordedAt eventHash event { version } }
}
"""
OPENING = {"record": "R-1", "element": "operator", "salt": "ab" * 32, "value": "J. Doe"}
OTHER_SIGNATURE = base64.b64encode(SigningKey.generate().sign(b"other bytes").signature).decode()
EVENT = """
query($i: Int!) {
  event(leafIndex: $i) { position leafIndex type signer envelope signature recordedAt }
}
"""


def key_added(server: Server, actor: Actor) -> tuple[dict[str, Any], str]:
    public_key = encode_public_key(SigningKey.generate())
    return server.prepare(
        actor,
        "KeyAdded",
        party_subject(actor.party_id),
        {"public_key": public_key, "purpose": "party"},
        meaning="authored",
    )


def chain(actor: Actor, first: dict[str, Any], first_signature: str, more: int) -> list[Any]:
    """``first`` and ``more`` KeyAdded envelopes after it, each naming the previous as prev."""
    items = [{"envelope": first, "signature": first_signature}]
    for _ in range(more):
        previous = items[-1]
        envelope = dict(previous["envelope"])
        envelope["version"] += 1
        envelope["prev"] = event_hash(previous["envelope"], previous["signature"])
        envelope["payload"] = {
            "public_key": encode_public_key(SigningKey.generate()),
            "purpose": "party",
        }
        items.append({"envelope": envelope, "signature": actor.sign(envelope)})
    return items


def refusal(
    server: Server, world: World, actor: Actor, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    """The one error of a refused mutation, after checking nothing was stored."""
    head = world.ledger.head()
    data, errors = server.call(actor, query, variables)
    assert data is None and len(errors) == 1, errors
    assert world.ledger.head() == head, "a refused mutation stored something"
    return dict(errors[0]["extensions"])


def test_a_party_submits_an_envelope_it_signed_and_reads_it_back(
    server: Server, api_world: World
) -> None:
    sponsor, cmo = api_world[SPONSOR], api_world[CMO]
    agreement = uuid.uuid4()
    proposed = server.submit(
        sponsor,
        "AgreementProposed",
        agreement,
        {"terms": agreement_terms(SPONSOR, CMO)},
        meaning="authored",
    )
    signed = server.submit(cmo, "AgreementSigned", agreement, {}, meaning="signed")
    assert signed["position"] > proposed["position"]
    assert signed["event"]["version"] == 2
    assert signed["event"]["envelope"]["prev"] == proposed["eventHash"]
    assert signed["recordedAt"].endswith("Z")
    data, errors = server.call(cmo, EVENT, {"i": signed["leafIndex"]})
    assert errors == []
    assert data["event"]["position"] == signed["position"]
    assert data["event"]["envelope"] == signed["event"]["envelope"]
    assert data["event"]["signature"] == signed["event"]["signature"]


def test_a_mutation_returns_once_the_read_models_reflect_it(
    server: Server, api_world: World
) -> None:
    envelope, signature = key_added(server, api_world[CMO])
    data, _ = server.call(api_world[CMO], SUBMIT, {"e": envelope, "s": signature})
    projector = server.services.projector
    assert projector.reached >= data["submitEvent"]["position"]


def test_an_envelope_signed_by_another_party_is_forbidden(server: Server, api_world: World) -> None:
    envelope, signature = key_added(server, api_world[SPONSOR])
    error = refusal(server, api_world, api_world[CMO], SUBMIT, {"e": envelope, "s": signature})
    assert error == {"code": "FORBIDDEN", "field": "signer"}


def without_meaning(envelope: dict[str, Any], signature: str) -> tuple[Any, str]:
    return {k: v for k, v in envelope.items() if k != "meaning"}, signature


def payload_changed(envelope: dict[str, Any], signature: str) -> tuple[Any, str]:
    return {**envelope, "payload": {**envelope["payload"], "purpose": "x"}}, signature


@pytest.mark.parametrize(
    ("damage", "code", "field"),
    [
        pytest.param(lambda e, s: ([e], s), "VALIDATION_FAILED", "envelope", id="not-an-object"),
        pytest.param(without_meaning, "VALIDATION_FAILED", "meaning", id="missing-member"),
        pytest.param(
            lambda e, s: ({**e, "colour": "red"}, s), "VALIDATION_FAILED", "colour", id="unknown"
        ),
        pytest.param(
            lambda e, s: ({**e, "ledger": "elsewhere.example/cmo"}, s),
            "VALIDATION_FAILED",
            "ledger",
            id="other-ledger",
        ),
        pytest.param(
            lambda e, s: ({**e, "subject": "x"}, s), "VALIDATION_FAILED", "subject", id="subject"
        ),
        pytest.param(
            lambda e, s: (e, "not base64!"), "VALIDATION_FAILED", "signature", id="not-base64"
        ),
        pytest.param(
            lambda e, s: (e, OTHER_SIGNATURE), "BAD_SIGNATURE", "signature", id="other-bytes"
        ),
        pytest.param(payload_changed, "BAD_SIGNATURE", "signature", id="changed-after-signing"),
    ],
)
def test_a_malformed_envelope_is_refused_with_its_field(
    server: Server, api_world: World, damage: Any, code: str, field: str
) -> None:
    envelope, signature = key_added(server, api_world[CMO])
    bad_envelope, bad_signature = damage(envelope, signature)
    variables = {"e": bad_envelope, "s": bad_signature}
    error = refusal(server, api_world, api_world[CMO], SUBMIT, variables)
    assert error == {"code": code, "field": field}


def test_a_stale_version_is_refused_as_a_version_conflict(server: Server, api_world: World) -> None:
    cmo = api_world[CMO]
    first = key_added(server, cmo)
    second = key_added(server, cmo)  # signed for the same version as the first
    assert first[0]["version"] == second[0]["version"]
    assert server.call(cmo, SUBMIT, {"e": first[0], "s": first[1]})[1] == []
    error = refusal(server, api_world, cmo, SUBMIT, {"e": second[0], "s": second[1]})
    assert error == {"code": "VERSION_CONFLICT", "field": "version"}


def test_a_batch_is_stored_whole_in_order(server: Server, api_world: World) -> None:
    cmo = api_world[CMO]
    items = chain(cmo, *key_added(server, cmo), more=2)
    data, errors = server.call(cmo, SUBMIT_MANY, {"events": items})
    assert errors == []
    stored = data["submitEvents"]
    assert [s["event"]["version"] for s in stored] == [i["envelope"]["version"] for i in items]
    positions = [s["position"] for s in stored]
    assert positions == sorted(positions)
    leaves = [s["leafIndex"] for s in stored]
    assert leaves == list(range(leaves[0], leaves[0] + 3))


def test_a_batch_with_one_bad_envelope_stores_nothing(server: Server, api_world: World) -> None:
    cmo = api_world[CMO]
    items = chain(cmo, *key_added(server, cmo), more=3)
    items[3]["envelope"] = {**items[3]["envelope"], "version": 99}
    items[3]["signature"] = cmo.sign(items[3]["envelope"])
    error = refusal(server, api_world, cmo, SUBMIT_MANY, {"events": items})
    assert error == {"code": "VERSION_CONFLICT", "field": "envelopes[3].version"}


def test_a_batch_names_the_envelope_signed_by_someone_else(
    server: Server, api_world: World
) -> None:
    cmo, sponsor = api_world[CMO], api_world[SPONSOR]
    mine = key_added(server, cmo)
    theirs = key_added(server, sponsor)
    items = [
        {"envelope": mine[0], "signature": mine[1]},
        {"envelope": theirs[0], "signature": theirs[1]},
    ]
    error = refusal(server, api_world, cmo, SUBMIT_MANY, {"events": items})
    assert error == {"code": "FORBIDDEN", "field": "envelopes[1].signer"}


def test_an_empty_batch_is_refused(server: Server, api_world: World) -> None:
    error = refusal(server, api_world, api_world[CMO], SUBMIT_MANY, {"events": []})
    assert error["code"] == "VALIDATION_FAILED"


def test_the_operator_admits_a_party_that_can_then_sign_in(
    server: Server, api_world: World
) -> None:
    newcomer = Actor("globex-cmo", SigningKey.generate())
    payload = {
        "party": newcomer.party_id,
        "legal_name": "Globex Biologics AG",
        "role": "cmo",
        "public_key": newcomer.public_key,
    }
    _, errors = server.call(newcomer, "{ me { id } }")
    assert [e["extensions"]["code"] for e in errors] == ["UNAUTHENTICATED"]
    admitted = server.submit(
        api_world.notary,
        "PartyAdmitted",
        party_subject(newcomer.party_id),
        payload,
        meaning="approved",
    )
    assert admitted["event"]["signer"] == "notary"
    data, errors = server.call(newcomer, "{ me { id legalName role } }")
    assert errors == []
    assert data["me"] == {"id": "globex-cmo", "legalName": "Globex Biologics AG", "role": "cmo"}


@pytest.mark.parametrize("openings", [None, [], [OPENING, {**OPENING, "record": "R-2"}]])
def test_an_envelope_input_is_built_as_strawberry_would_build_it(
    monkeypatch: pytest.MonkeyPatch, openings: list[dict[str, str]] | None
) -> None:
    value: dict[str, Any] = {"envelope": {"type": "DataSubmitted", "n": [1]}, "signature": "c2ln"}
    if openings is not None:
        value["openings"] = openings
    registry, config = schema.schema_converter.scalar_registry, schema.config
    built = cast(
        SignedEnvelopeInput, convert_argument(value, SignedEnvelopeInput, registry, config)
    )
    definition = getattr(SignedEnvelopeInput, "__strawberry_definition__")  # noqa: B009
    monkeypatch.setattr(definition, "from_input", None)
    assert built == convert_argument(value, SignedEnvelopeInput, registry, config)
    assert built.openings is None or all(isinstance(o, OpeningInput) for o in built.openings)
