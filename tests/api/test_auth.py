"""Callers authenticate each request with their party key (RFC 9421); anything else is refused.

A signature holds for one ledger only: it covers the host the request is sent to and the
ledger's origin. Unsigned callers may read `ledger`, `/checkpoint`, `/healthz` and `/metrics`
only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
from nacl.signing import SigningKey

from clients.http_signing import HTTP_COMPONENTS, PartyAuth
from ledger.domain.subjects import party_subject
from ledger.keys import encode_public_key, key_id
from tests.support.server import Server, codes, running_server
from tests.support.world import Actor, World

pytestmark = pytest.mark.xdist_group("api_auth")

CMO = "contoso-cmo"
ME = "{ me { id legalName role keyId } }"
OTHER_ORIGIN = "ledger.fabrikam.example/cmo"


def signed(
    server: Server,
    actor: Actor,
    query: str,
    *,
    created: datetime | None = None,
    url: str | None = None,
    origin: str | None = None,
) -> httpx2.Request:
    """A POST /graphql request signed by ``actor`` for ``server`` (or for ``url`` and
    ``origin``), ready to send as is."""
    request = httpx2.Request("POST", url or server.graphql_url, json={"query": query})
    auth = PartyAuth(actor.party_id, actor.key, origin=origin or server.origin)
    auth.sign(request, created=created)
    return request


def signed_over(
    server: Server,
    actor: Actor,
    components: tuple[str, ...],
    *,
    digests: tuple[str, ...] = ("sha-256",),
) -> httpx2.Request:
    """A request for ``server`` whose signature covers ``components`` only, with a
    Content-Digest of the body carrying ``digests``."""
    request = httpx2.Request("POST", server.graphql_url, json={"query": ME})
    request.headers["Ledger-Origin"] = server.origin
    request.headers["Content-Digest"] = content_digest(request.content, *digests)
    auth = PartyAuth(actor.party_id, actor.key)
    auth._signer.sign(
        request,
        key_id=auth.keyid,
        created=datetime.now(UTC),
        nonce=uuid.uuid4().hex,
        label="sig",
        covered_component_ids=components,
        use_existing_digest=True,
    )
    return request


def content_digest(body: bytes, *algorithms: str) -> str:
    hashers = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
    members = (
        f"{name}=:{base64.b64encode(hashers[name](body).digest()).decode()}:" for name in algorithms
    )
    return ", ".join(members)


def send(
    server: Server, request: httpx2.Request, *, host: str | None = None
) -> tuple[int, dict[str, Any]]:
    """Send ``request`` to ``server`` with the ``Host`` of its URL, or ``host``."""
    request.url = httpx2.URL(server.graphql_url)
    request.headers["host"] = host or request.url.netloc.decode("ascii")
    with httpx2.Client() as client:
        response = client.send(request)
    return response.status_code, response.json()


def refused(server: Server, request: httpx2.Request, *, host: str | None = None) -> str:
    status, body = send(server, request, host=host)
    assert status == 401, body
    assert codes(body["errors"]) == ["UNAUTHENTICATED"], body
    assert body["data"] is None
    return str(body["errors"][0]["message"])


def test_an_unsigned_caller_reads_the_ledger_field(server: Server, api_world: World) -> None:
    data, errors = server.call(None, "{ ledger { origin notaryKey treeSize } }")
    assert errors == []
    assert data["ledger"]["origin"] == api_world.ledger.identity.origin
    assert data["ledger"]["notaryKey"].startswith(f"{data['ledger']['origin']}+")
    assert data["ledger"]["treeSize"] >= len(api_world.actors)


@pytest.mark.parametrize(
    "query",
    [
        ME,
        "{ checkpoint { treeSize } }",
        "{ event(leafIndex: 0) { type } }",
        "{ inclusionProof(leafIndex: 0) { hashes } }",
        "{ consistencyProof(fromSize: 1) { hashes } }",
        '{ nextVersion(subject: "0b7d1f5e-4c0a-4a55-9a53-6f0c2f3e8d21") { version } }',
        "{ log { reached } }",
        'mutation { submitEvent(envelope: {}, signature: "x") { position } }',
        'mutation { cosignCheckpoint(treeSize: 1, cosignature: "x") { treeSize } }',
    ],
)
def test_every_other_field_answers_unauthenticated_to_an_unsigned_caller(
    server: Server, query: str
) -> None:
    _, errors = server.call(None, query)
    assert codes(errors) == ["UNAUTHENTICATED"]


def test_a_signed_caller_is_the_party_whose_key_signed(server: Server, api_world: World) -> None:
    actor = api_world[CMO]
    data, errors = server.call(actor, ME)
    assert errors == []
    assert data["me"] == {
        "id": CMO,
        "legalName": "Contoso Contract Manufacturing GmbH",
        "role": "cmo",
        "keyId": actor.key_id,
    }


def test_the_notary_signs_in_with_the_notary_key(server: Server, api_world: World) -> None:
    data, errors = server.call(api_world.notary, ME)
    assert errors == []
    assert data["me"]["id"] == "notary"
    assert data["me"]["role"] == "notary"


def test_a_signature_older_than_five_minutes_is_refused(server: Server, api_world: World) -> None:
    stale = datetime.now(UTC) - timedelta(minutes=5, seconds=30)
    message = refused(server, signed(server, api_world[CMO], ME, created=stale))
    assert "stale" in message


def test_a_signature_dated_in_the_future_is_refused(server: Server, api_world: World) -> None:
    ahead = datetime.now(UTC) + timedelta(minutes=30)
    assert "future" in refused(server, signed(server, api_world[CMO], ME, created=ahead))


def test_a_replayed_request_is_refused(server: Server, api_world: World) -> None:
    request = signed(server, api_world[CMO], ME)
    status, _ = send(server, request)
    assert status == 200
    assert "already used" in refused(server, request)


def test_a_replay_is_refused_by_another_process_sharing_the_database(
    server: Server, api_world: World
) -> None:
    request = signed(server, api_world[CMO], ME)
    assert send(server, request)[0] == 200
    with running_server(api_world.ledger.settings, api_world.notary.key) as other:
        # Behind one address, as a load balancer would forward it.
        assert "already used" in refused(
            other, request, host=httpx2.URL(server.url).netloc.decode()
        )


def test_a_signature_by_another_key_is_refused(server: Server, api_world: World) -> None:
    impostor = Actor(CMO, SigningKey.generate())
    request = signed(server, impostor, ME)
    # Claim the real key id while signing with the impostor's key.
    request.headers["signature-input"] = request.headers["signature-input"].replace(
        impostor.key_id, api_world[CMO].key_id
    )
    assert "does not verify" in refused(server, request)


def test_a_body_changed_after_signing_is_refused(server: Server, api_world: World) -> None:
    request = signed(server, api_world[CMO], ME)
    tampered = json.dumps({"query": "{ ledger { origin } }"}).encode()
    request.stream = httpx2.ByteStream(tampered)
    request._content = tampered
    request.headers["content-length"] = str(len(tampered))
    assert "Content-Digest does not match" in refused(server, request)


def test_a_signature_not_covering_the_content_digest_is_refused(
    server: Server, api_world: World
) -> None:
    uncovered = tuple(name for name in HTTP_COMPONENTS if name != "content-digest")
    request = signed_over(server, api_world[CMO], uncovered)
    assert "content-digest" in refused(server, request)


def test_a_signature_without_a_nonce_is_refused(server: Server, api_world: World) -> None:
    actor = api_world[CMO]
    request = httpx2.Request("POST", server.graphql_url, json={"query": ME})
    request.headers["Ledger-Origin"] = server.origin
    auth = PartyAuth(actor.party_id, actor.key)
    auth._signer.sign(
        request,
        key_id=auth.keyid,
        created=datetime.now(UTC),
        label="sig",
        covered_component_ids=HTTP_COMPONENTS,
        body=request.content,
    )
    assert "nonce" in refused(server, request)


def test_a_signature_for_another_ledger_origin_is_refused(server: Server, api_world: World) -> None:
    message = refused(server, signed(server, api_world[CMO], ME, origin=OTHER_ORIGIN))
    assert f"signed for ledger {OTHER_ORIGIN!r}, this ledger is {server.origin!r}" in message


def test_a_signature_for_another_authority_is_refused(server: Server, api_world: World) -> None:
    # Signed for ledger B's host, sent (with its own Host) to this one.
    request = signed(server, api_world[CMO], ME, url="http://ledger-b.example:8000/graphql")
    message = refused(server, request)
    assert "does not verify" in message
    assert "host and port" in message


def test_a_signature_for_another_port_of_the_same_host_is_refused(
    server: Server, api_world: World
) -> None:
    port = httpx2.URL(server.url).port
    assert port is not None
    other = server.graphql_url.replace(f":{port}/", f":{port + 1}/")
    assert "does not verify" in refused(server, signed(server, api_world[CMO], ME, url=other))


@pytest.mark.parametrize(
    "components",
    [
        ("@method", "@path", "content-digest"),
        ("@method", "@path", "content-digest", "ledger-origin"),
        ("@method", "@authority", "@path", "content-digest"),
    ],
    ids=["neither", "no-authority", "no-origin"],
)
def test_a_signature_not_covering_the_authority_is_refused_with_update_advice(
    server: Server, api_world: World, components: tuple[str, ...]
) -> None:
    message = refused(server, signed_over(server, api_world[CMO], components))
    assert 'must cover "@authority" and "ledger-origin"' in message
    assert "update the client (cmo-ledger >= " in message


def test_a_ledger_origin_header_changed_after_signing_is_refused(
    server: Server, api_world: World
) -> None:
    request = signed(server, api_world[CMO], ME, origin=OTHER_ORIGIN)
    request.headers["Ledger-Origin"] = server.origin
    assert "does not verify" in refused(server, request)


def test_a_sha512_only_content_digest_is_refused(server: Server, api_world: World) -> None:
    request = signed_over(server, api_world[CMO], HTTP_COMPONENTS, digests=("sha-512",))
    message = refused(server, request)
    assert "Content-Digest has no sha-256 member" in message
    assert "send Content-Digest: sha-256=" in message


def test_a_content_digest_may_carry_sha512_beside_sha256(server: Server, api_world: World) -> None:
    request = signed_over(server, api_world[CMO], HTTP_COMPONENTS, digests=("sha-512", "sha-256"))
    status, answer = send(server, request)
    assert status == 200, answer
    assert answer["data"]["me"]["id"] == CMO


def test_a_client_without_the_origin_asks_the_ledger_once(server: Server, api_world: World) -> None:
    auth = PartyAuth(CMO, api_world[CMO].key)
    with httpx2.Client(base_url=server.url, auth=auth) as client:
        answers = [client.post("/graphql", json={"query": ME}) for _ in range(2)]
    assert [answer.json()["data"]["me"]["id"] for answer in answers] == [CMO, CMO]
    assert [len(answer.history) for answer in answers] == [1, 0]
    assert auth.origin == server.origin


def test_an_unknown_party_is_refused(server: Server) -> None:
    stranger = Actor("globex-cmo", SigningKey.generate())
    assert "no admitted party" in refused(server, signed(server, stranger, ME))


def test_an_unknown_key_of_a_known_party_is_refused(server: Server) -> None:
    unregistered = Actor(CMO, SigningKey.generate())
    assert "is not a key of" in refused(server, signed(server, unregistered, ME))


def test_a_revoked_key_is_refused(server: Server, api_world: World) -> None:
    owner = api_world["fabrikam-cmo"]
    spare = SigningKey.generate()
    subject = party_subject(owner.party_id)
    owner.submit(
        api_world.ledger,
        "KeyAdded",
        subject,
        {"public_key": encode_public_key(spare), "purpose": "party"},
        meaning="authored",
    )
    holder = Actor(owner.party_id, spare)
    assert server.call(holder, ME)[0]["me"]["keyId"] == key_id(spare.verify_key)
    owner.submit(
        api_world.ledger,
        "KeyRevoked",
        subject,
        {"key": key_id(spare.verify_key)},
        meaning="revoked",
        reason="laptop lost",
    )
    assert "revoked" in refused(server, signed(server, holder, ME))


def test_unsigned_callers_read_the_checkpoint_health_and_metrics(server: Server) -> None:
    with server.http(None) as client:
        for path in ("/checkpoint", "/healthz", "/metrics"):
            assert client.get(path).status_code == 200, path


def test_a_request_without_a_content_digest_is_refused_saying_what_to_send(
    server: Server, api_world: World
) -> None:
    request = signed(server, api_world[CMO], ME)
    del request.headers["content-digest"]
    message = refused(server, request)
    assert "no Content-Digest header" in message
    assert "sha-256=:<base64 SHA-256 of the body>:" in message


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("sha-256=:%%%:", "not a structured-field dictionary"),
        ("(sha-256)", "not a structured-field dictionary"),
        ("md5=:AAAA:", "has no sha-256 member"),
    ],
)
def test_a_malformed_content_digest_is_refused(
    server: Server, api_world: World, value: str, said: str
) -> None:
    # The header is judged before the signature over it, so it may change after signing.
    request = signed(server, api_world[CMO], ME)
    request.headers["content-digest"] = value
    assert said in refused(server, request)


def test_a_request_without_a_ledger_origin_is_refused_naming_the_header(
    server: Server, api_world: World
) -> None:
    request = signed(server, api_world[CMO], ME)
    del request.headers["ledger-origin"]
    message = refused(server, request)
    assert "Ledger-Origin" in message
    assert server.origin in message
