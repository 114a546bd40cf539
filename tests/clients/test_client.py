"""``LedgerClient`` against a real server: signing, chaining, retries, refusals, proofs."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx2
import pytest
from nacl.signing import SigningKey

from clients.client import Draft, LedgerClient, review_body
from clients.errors import ProofFailed, ServerRefused, TransportFailure, VersionConflict
from ledger.domain.subjects import party_subject
from ledger.keys import encode_public_key
from ledger.log.envelope import event_hash
from ledger.timeutil import now_utc
from tests.conftest import BACKENDS, fresh_world
from tests.support.server import Server, running_server
from tests.support.world import Actor, World, agreement_terms

pytestmark = pytest.mark.xdist_group("client")

SPONSOR, CMO, REGULATOR = "northwind-bio", "contoso-cmo", "agency-inspectorate"


@pytest.fixture(scope="module", params=BACKENDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("client")
    with fresh_world(request.param, request, directory) as world:
        yield world


@pytest.fixture(scope="module")
def server(world: World) -> Iterator[Server]:
    with running_server(world.ledger.settings, world.notary.key) as running:
        yield running


def client_of(
    server: Server, actor: Actor, transport: httpx2.BaseTransport | None = None, **options: object
) -> LedgerClient:
    return LedgerClient(server.url, actor.party_id, actor.key, transport=transport, **options)  # type: ignore[arg-type]


class Meddling(httpx2.BaseTransport):
    """Passes requests on, but lets a test act before a request or rewrite an answer."""

    def __init__(
        self,
        before: Callable[[dict[str, object]], None] | None = None,
        rewrite: Callable[[dict[str, object]], None] | None = None,
    ) -> None:
        self.inner = httpx2.HTTPTransport()
        self.before = before
        self.rewrite = rewrite
        self.queries: list[str] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        self.queries.append(str(body["query"]))
        if self.before is not None:
            self.before(body)
        response = self.inner.handle_request(request)
        if self.rewrite is None:
            return response
        response.read()
        document = response.json()
        self.rewrite(document)
        return httpx2.Response(response.status_code, json=document)

    def close(self) -> None:
        self.inner.close()


def new_key() -> str:
    return encode_public_key(SigningKey.generate())


def test_submit_fills_version_and_prev_from_the_subject_s_last_event(
    server: Server, world: World
) -> None:
    subject = party_subject(CMO)
    with client_of(server, world[CMO]) as client:
        version, prev = client.next_version(subject)
        stored = client.add_key(new_key())
        event = client.event(stored.position)
    assert (stored.type, stored.subject, stored.version) == ("KeyAdded", str(subject), version)
    assert event["envelope"]["prev"] == prev
    assert stored.event_hash == event_hash(event["envelope"], event["signature"])


def test_a_batch_chains_several_events_of_one_subject(server: Server, world: World) -> None:
    subject = str(party_subject(CMO))
    drafts = [
        Draft("KeyAdded", subject, {"public_key": new_key(), "purpose": "party"}, "authored")
        for _ in range(3)
    ]
    with client_of(server, world[CMO]) as client:
        stored = client.submit_many(drafts)
        events = [client.event(s.position) for s in stored]
    assert [s.version for s in stored] == [stored[0].version + i for i in range(3)]
    for earlier, later in zip(stored, events[1:], strict=False):
        assert later["envelope"]["prev"] == earlier.event_hash


def test_a_version_conflict_is_retried_when_another_writer_moved_the_subject(
    server: Server, world: World
) -> None:
    actor = world[CMO]
    moved: list[int] = []

    def another_writer(body: dict[str, object]) -> None:
        if "submitEvent" in str(body["query"]) and not moved:
            other = server.submit(
                actor,
                "KeyAdded",
                party_subject(CMO),
                {"public_key": new_key(), "purpose": "party"},
                meaning="authored",
            )
            moved.append(int(other["event"]["version"]))

    transport = Meddling(before=another_writer)
    with client_of(server, actor, transport) as client:
        stored = client.add_key(new_key())
    assert stored.version == moved[0] + 1
    assert sum("submitEvent" in q for q in transport.queries) == 2


def test_a_version_conflict_past_the_retries_is_raised(server: Server, world: World) -> None:
    actor = world[CMO]

    def always_first(body: dict[str, object]) -> None:
        if "submitEvent" in str(body["query"]):
            payload = {"public_key": new_key(), "purpose": "party"}
            server.submit(actor, "KeyAdded", party_subject(CMO), payload, meaning="authored")

    with (
        client_of(server, actor, Meddling(before=always_first), max_retries=1) as client,
        pytest.raises(VersionConflict) as info,
    ):
        client.add_key(new_key())
    assert info.value.code == "VERSION_CONFLICT"


def test_a_refusal_carries_the_server_s_code_and_field_and_stores_nothing(
    server: Server, world: World
) -> None:
    head = world.ledger.head()
    with client_of(server, world[CMO]) as client, pytest.raises(ServerRefused) as info:
        client.add_key("ed25519:not-a-key")
    assert (info.value.code, info.value.field) == ("VALIDATION_FAILED", "payload.public_key")
    assert world.ledger.head() == head


def test_a_batch_with_one_refused_event_stores_none_of_them(server: Server, world: World) -> None:
    subject = str(party_subject(CMO))
    good = Draft("KeyAdded", subject, {"public_key": new_key(), "purpose": "party"}, "authored")
    bad = Draft("KeyAdded", subject, {"public_key": "ed25519:AAAA", "purpose": "party"}, "authored")
    head = world.ledger.head()
    with client_of(server, world[CMO]) as client, pytest.raises(ServerRefused) as info:
        client.submit_many([good, bad])
    assert info.value.code == "VALIDATION_FAILED"
    assert info.value.field is not None and info.value.field.endswith("payload.public_key")
    assert world.ledger.head() == head


def test_the_audit_trail_follows_its_pages(server: Server, world: World) -> None:
    with client_of(server, world[CMO]) as client:
        for _ in range(3):  # more events than a page, whichever tests ran before
            client.add_key(new_key())
        paged = list(client.audit_trail(page_size=2, signer=CMO))
        whole = list(client.audit_trail(page_size=500, signer=CMO))
    assert len(paged) > 2
    assert paged == whole
    assert [e["position"] for e in paged] == sorted({e["position"] for e in paged})
    assert {e["signer"] for e in paged} == {CMO}


def test_an_inclusion_proof_verifies_against_the_signed_checkpoint(
    server: Server, world: World
) -> None:
    with client_of(server, world[CMO]) as client:
        stored = client.add_key(new_key())
        server.services.notary.checkpoint_now()
        # The tree takes the event in the background: its leaf is known once it is signed.
        leaf = client.event(stored.position)["leafIndex"]
        proof = client.inclusion_proof(leaf)
    assert proof.checkpoint is not None
    assert proof.leaf_index == leaf
    assert proof.tree_size == proof.checkpoint.tree_size > leaf


def test_a_tampered_proof_raises_proof_failed(server: Server, world: World) -> None:
    def flip_a_hash(document: dict[str, object]) -> None:
        event = (document.get("data") or {}).get("event")  # type: ignore[attr-defined]
        if event and event.get("inclusionProof") and event["inclusionProof"]["hashes"]:
            first = bytearray(base64.b64decode(event["inclusionProof"]["hashes"][0]))
            first[0] ^= 1
            event["inclusionProof"]["hashes"][0] = base64.b64encode(first).decode()

    with client_of(server, world[CMO], Meddling(rewrite=flip_a_hash)) as client:
        client.add_key(new_key())
        server.services.notary.checkpoint_now()
        with pytest.raises(ProofFailed):
            client.inclusion_proof(0)


def test_a_checkpoint_signed_by_another_key_is_refused(server: Server, world: World) -> None:
    server.services.notary.checkpoint_now()
    stranger = encode_public_key(SigningKey.generate())
    with client_of(server, world[CMO], notary_key=stranger) as client, pytest.raises(ProofFailed):
        client.checkpoint()
    with client_of(server, world[CMO], notary_key=world.notary.public_key) as client:
        assert client.checkpoint().tree_size >= 1


def test_a_witness_cosigns_through_the_client(server: Server, world: World, tmp_path: Path) -> None:
    state = tmp_path / "witness.json"
    with client_of(server, world[REGULATOR]) as client:
        server.services.notary.checkpoint_now()
        first = client.cosign_checkpoint(state_file=state)
        with client_of(server, world[CMO]) as cmo:
            cmo.add_key(new_key())
        server.services.notary.checkpoint_now()
        second = client.cosign_checkpoint(state_file=state)
    assert second.tree_size > first.tree_size
    assert [c["witness"] for c in second.cosignatures] == [REGULATOR]


def a_review(sponsor: LedgerClient, cmo: LedgerClient) -> tuple[uuid.UUID, dict[str, object]]:
    """A new agreement in force, and a review id and body for it."""
    agreement = sponsor.propose_agreement(agreement_terms()).subject
    cmo.sign_agreement(agreement)
    period_end = now_utc() - timedelta(minutes=1)
    body = review_body(
        agreement,
        period_end=period_end,
        outcome="Limits confirmed for the period.",
        next_due=period_end + timedelta(days=183),
    )
    return uuid.uuid4(), body


def test_a_review_is_completed_with_the_other_party_s_countersignature(
    server: Server, world: World
) -> None:
    with client_of(server, world[SPONSOR]) as sponsor, client_of(server, world[CMO]) as cmo:
        review_id, body = a_review(sponsor, cmo)
        stored = sponsor.complete_review(review_id, body, cmo.countersign_review(review_id, body))
        with pytest.raises(ServerRefused) as info:
            sponsor.complete_review(uuid.uuid4(), body, cmo.countersign_review(review_id, body))
    assert (stored.type, stored.subject) == ("ReviewCompleted", str(review_id))
    assert info.value.code == "BAD_SIGNATURE"


def test_a_conflict_no_other_writer_explains_is_raised_without_signing_again(
    server: Server, world: World
) -> None:
    transport = Meddling()
    sponsor = client_of(server, world[SPONSOR], transport)
    with sponsor, client_of(server, world[CMO]) as cmo:
        review_id, body = a_review(sponsor, cmo)
        countersignature = cmo.countersign_review(review_id, body)
        sponsor.complete_review(review_id, body, countersignature)
        transport.queries.clear()
        with pytest.raises(VersionConflict):
            sponsor.complete_review(review_id, body, countersignature)
    assert sum("submitEvent" in q for q in transport.queries) == 1


def test_an_unreachable_server_is_a_transport_failure(world: World) -> None:
    with (
        LedgerClient("http://127.0.0.1:9", CMO, world[CMO].key, timeout=2) as client,
        pytest.raises(TransportFailure),
    ):
        client.next_version(party_subject(CMO))


def test_a_checkpoint_inconsistent_with_one_seen_before_is_refused(
    server: Server, world: World
) -> None:
    def fork(document: dict[str, object]) -> None:
        proof = (document.get("data") or {}).get("consistencyProof")  # type: ignore[attr-defined]
        if proof and proof["hashes"]:
            proof["hashes"][-1] = base64.b64encode(bytes(32)).decode()

    with client_of(server, world[CMO], Meddling(rewrite=fork)) as client:
        client.add_key(new_key())
        first = server.services.notary.checkpoint_now()
        assert client.checkpoint(first.size).tree_size == first.size
        client.add_key(new_key())
        server.services.notary.checkpoint_now()
        with pytest.raises(ProofFailed) as info:
            client.checkpoint()
    assert "not consistent" in str(info.value)


def test_successive_checkpoints_are_checked_for_consistency(server: Server, world: World) -> None:
    with client_of(server, world[CMO]) as client:
        client.add_key(new_key())
        first = client.checkpoint(server.services.notary.checkpoint_now().size)
        client.add_key(new_key())
        second = client.checkpoint(server.services.notary.checkpoint_now().size)
        again = client.checkpoint(first.tree_size)
    assert first.tree_size < second.tree_size
    assert again.root_hash == first.root_hash
