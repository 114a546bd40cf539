"""Long-lived connections answer to today's keys and grants: a websocket whose key is
revoked is closed, each operation on an open socket judges grants afresh, and
``nextVersion`` tells a subject's activity only to those who may read it."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from nacl.signing import SigningKey
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from ledger.domain.subjects import batch_subject, party_subject
from ledger.keys import encode_public_key, key_id
from tests.support.agreements import grant, propose_and_sign
from tests.support.batches import register_batch
from tests.support.server import NEXT_VERSION, SUBMIT, Server, codes
from tests.support.world import Actor, World

pytestmark = pytest.mark.xdist_group("api_long_connections")

CMO, SPONSOR, AUDITOR = "fabrikam-cmo", "northwind-bio", "qa-auditor-llc"
CLOSED_UNAUTHENTICATED = 4401


@pytest.fixture()
def spare(api_world: World) -> Actor:
    """A new key of the CMO, as a separate signer."""
    owner = api_world[CMO]
    key = SigningKey.generate()
    owner.submit(
        api_world.ledger,
        "KeyAdded",
        party_subject(CMO),
        {"public_key": encode_public_key(key), "purpose": "party"},
        meaning="authored",
    )
    return Actor(CMO, key)


def revoke(world: World, holder: Actor) -> int:
    """Revoke ``holder``'s key (signed by the party's own key); the revocation's position."""
    appended = world[holder.party_id].submit(
        world.ledger,
        "KeyRevoked",
        party_subject(holder.party_id),
        {"key": key_id(holder.key.verify_key)},
        meaning="revoked",
        reason="laptop lost",
    )
    return int(appended.position)


@pytest.fixture()
def socket_of(server: Server) -> Iterator[Any]:
    opened = contextlib.ExitStack()

    def open_socket(actor: Actor) -> ClientConnection:
        protocols: Any = ["graphql-transport-ws"]
        socket = opened.enter_context(connect(server.ws_url, subprotocols=protocols))
        payload = server.init_payload(actor)
        socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert json.loads(socket.recv(timeout=30))["type"] == "connection_ack"
        return socket

    with opened:
        yield open_socket


def ask(socket: ClientConnection, query: str) -> dict[str, Any]:
    """Run one query on an open socket: its ``payload`` (``data`` and ``errors``)."""
    operation = uuid.uuid4().hex
    socket.send(json.dumps({"id": operation, "type": "subscribe", "payload": {"query": query}}))
    while True:
        message = json.loads(socket.recv(timeout=30))
        if message.get("id") != operation:
            continue
        if message["type"] == "next":
            result: dict[str, Any] = message["payload"]
            return result
        assert message["type"] != "complete", message
        return {"data": None, "errors": message["payload"]}


def closed_code(socket: ClientConnection) -> int:
    """The close code the server sends, reading (and keeping) what comes before it."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            socket.recv(timeout=30)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


def wait_for_views(server: Server, world: World) -> None:
    projector = server.services.projector
    assert projector is not None
    deadline = time.monotonic() + 30
    while projector.reached < world.ledger.head():
        assert time.monotonic() < deadline, "the server's views did not catch up"
        time.sleep(0.05)


# -- keys ----------------------------------------------------------------------------------


def test_a_socket_is_closed_once_its_key_is_revoked(
    server: Server, api_world: World, spare: Actor, socket_of: Any
) -> None:
    socket = socket_of(spare)
    assert ask(socket, "{ me { keyId } }")["data"]["me"]["keyId"] == key_id(spare.key.verify_key)
    revoke(api_world, spare)
    assert closed_code(socket) == CLOSED_UNAUTHENTICATED


def test_a_subscription_delivers_nothing_after_its_key_is_revoked(
    server: Server, api_world: World, spare: Actor, socket_of: Any
) -> None:
    socket = socket_of(spare)
    query = "subscription { events { position type } }"
    socket.send(json.dumps({"id": "live", "type": "subscribe", "payload": {"query": query}}))
    deadline = time.monotonic() + 30
    while server.services.feed.subscribers < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    revoked_at = revoke(api_world, spare)
    received: list[dict[str, Any]] = []
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            received.append(json.loads(socket.recv(timeout=30)))
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CLOSED_UNAUTHENTICATED
    delivered = [
        m["payload"]["data"]["events"]
        for m in received
        if m["type"] == "next" and m["payload"].get("data")
    ]
    assert all(event["position"] < revoked_at for event in delivered), delivered


def test_an_operation_on_a_socket_of_another_key_of_the_party_goes_on(
    server: Server, api_world: World, spare: Actor, socket_of: Any
) -> None:
    socket = socket_of(api_world[CMO])
    revoke(api_world, spare)
    wait_for_views(server, api_world)
    assert ask(socket, "{ me { id } }")["data"]["me"]["id"] == CMO


# -- grants --------------------------------------------------------------------------------


def test_a_revoked_grant_is_honoured_by_the_next_operation_on_an_open_socket(
    server: Server, api_world: World, socket_of: Any
) -> None:
    agreement = propose_and_sign(api_world, SPONSOR, "contoso-cmo")
    granted = grant(api_world, agreement, SPONSOR, AUDITOR)
    wait_for_views(server, api_world)
    socket = socket_of(api_world[AUDITOR])
    seen = ask(socket, "{ agreements { id } }")["data"]["agreements"]
    assert str(agreement) in [a["id"] for a in seen]
    api_world[SPONSOR].submit(
        api_world.ledger, "AccessRevoked", granted, {}, meaning="revoked", reason="audit closed"
    )
    wait_for_views(server, api_world)
    after = ask(socket, "{ agreements { id } }")["data"]["agreements"]
    assert str(agreement) not in [a["id"] for a in after]


LIVE = "live"
BATCHES_AND_KEYS = (
    'subscription { events(filter: {types: ["BatchRegistered", "KeyAdded"]}) { subject } }'
)


def unique_batch() -> str:
    return f"NWB101-24-{uuid.uuid4().hex[:6]}"


def subscribe(server: Server, socket: ClientConnection, query: str) -> None:
    """Start subscription ``LIVE`` on ``socket``, returning once the server feeds it."""
    socket.send(json.dumps({"id": LIVE, "type": "subscribe", "payload": {"query": query}}))
    deadline = time.monotonic() + 30
    while server.services.feed.subscribers < 1:
        assert time.monotonic() < deadline, "the subscription was never registered"
        time.sleep(0.01)


def delivered_until(socket: ClientConnection, subject: uuid.UUID) -> list[dict[str, Any]]:
    """The events subscription ``LIVE`` delivers, up to and including one of ``subject``."""
    delivered: list[dict[str, Any]] = []
    while not delivered or delivered[-1]["subject"] != str(subject):
        message = json.loads(socket.recv(timeout=30))
        assert message.get("id") == LIVE and message["type"] == "next", message
        assert not message["payload"].get("errors"), message
        delivered.append(message["payload"]["data"]["events"])
    return delivered


def test_a_subscription_delivers_nothing_under_a_grant_once_it_is_revoked(
    server: Server, api_world: World, socket_of: Any
) -> None:
    agreement = propose_and_sign(api_world, SPONSOR, "contoso-cmo")
    granted = grant(api_world, agreement, SPONSOR, AUDITOR)
    wait_for_views(server, api_world)
    socket = socket_of(api_world[AUDITOR])
    subscribe(server, socket, BATCHES_AND_KEYS)
    opened = register_batch(api_world, agreement, unique_batch(), cmo="contoso-cmo")
    assert [e["subject"] for e in delivered_until(socket, opened)] == [str(opened)]
    api_world[SPONSOR].submit(
        api_world.ledger, "AccessRevoked", granted, {}, meaning="revoked", reason="audit closed"
    )
    closed = register_batch(api_world, agreement, unique_batch(), cmo="contoso-cmo")
    # A party event, readable by everyone, marks where the stream has reached.
    marker = party_subject(AUDITOR)
    api_world[AUDITOR].submit(
        api_world.ledger,
        "KeyAdded",
        marker,
        {"public_key": encode_public_key(SigningKey.generate()), "purpose": "party"},
        meaning="authored",
    )
    subjects = [e["subject"] for e in delivered_until(socket, marker)]
    assert str(closed) not in subjects, subjects
    assert subjects == [str(marker)]


# -- nextVersion ---------------------------------------------------------------------------


def next_version(server: Server, actor: Actor, subject: uuid.UUID) -> tuple[Any, list[Any]]:
    data, errors = server.call(actor, NEXT_VERSION, {"s": str(subject)})
    return data, errors


def test_next_version_of_a_batch_is_forbidden_to_a_party_without_a_grant(
    server: Server, api_world: World
) -> None:
    agreement = propose_and_sign(api_world, SPONSOR, "contoso-cmo")
    subject = register_batch(api_world, agreement, "NWB101-24-020", cmo="contoso-cmo")
    wait_for_views(server, api_world)
    for outsider in (AUDITOR, "helios-tx", CMO):
        _, errors = next_version(server, api_world[outsider], subject)
        assert codes(errors) == ["FORBIDDEN"], (outsider, errors)
        assert "prev" not in json.dumps(errors)
    for insider in (SPONSOR, "contoso-cmo"):
        data, errors = next_version(server, api_world[insider], subject)
        assert errors == [], errors
        assert data["nextVersion"]["version"] == 2
    grant(api_world, agreement, SPONSOR, AUDITOR)
    wait_for_views(server, api_world)
    data, errors = next_version(server, api_world[AUDITOR], subject)
    assert errors == [] and data["nextVersion"]["version"] == 2, errors


def test_next_version_of_a_new_subject_answers_only_the_parties_that_open_subjects(
    server: Server, api_world: World
) -> None:
    unused = batch_subject(f"NWB101-24-{uuid.uuid4().hex[:6]}")
    data, errors = next_version(server, api_world["contoso-cmo"], unused)
    assert errors == [] and data["nextVersion"] == {"version": 1, "prev": None}
    # To an auditor, a batch that does not exist is refused as one it may not read.
    _, errors = next_version(server, api_world[AUDITOR], unused)
    assert codes(errors) == ["FORBIDDEN"], errors


def submit_at(
    server: Server, actor: Actor, subject: uuid.UUID, version: int, payload: dict[str, Any]
) -> list[Any]:
    """The errors of a ``BatchRegistered`` that ``actor`` signs as ``version`` of ``subject``."""
    prev = None if version == 1 else "0" * 64
    envelope = actor.envelope(
        "BatchRegistered", subject, payload, version=version, prev=prev, meaning="authored"
    )
    _, errors = server.call(actor, SUBMIT, {"e": envelope, "s": actor.sign(envelope)})
    return list(errors)


def test_a_refused_submission_tells_an_outsider_nothing_of_a_batch(
    server: Server, api_world: World
) -> None:
    agreement = propose_and_sign(api_world, SPONSOR, "contoso-cmo")
    name = unique_batch()
    subject = register_batch(api_world, agreement, name, cmo="contoso-cmo")
    wait_for_views(server, api_world)
    payload = {
        "agreement": str(agreement),
        "batch": name,
        "product": "NWB-101",
        "site": "contoso-site-a",
        "started_at": "2026-01-05T08:00:00Z",
    }
    for outsider, version in ((AUDITOR, 1), (AUDITOR, 5), (CMO, 1), (CMO, 2)):
        errors = submit_at(server, api_world[outsider], subject, version, payload)
        assert codes(errors) == ["FORBIDDEN"], (outsider, version, errors)
        assert "version" not in errors[0]["message"], errors
    # A subject that does not exist is refused the same way to a party that opens none.
    errors = submit_at(server, api_world[AUDITOR], batch_subject(unique_batch()), 2, payload)
    assert codes(errors) == ["FORBIDDEN"], errors
    # The batch's own CMO is told where it stands.
    errors = submit_at(server, api_world["contoso-cmo"], subject, 1, payload)
    assert codes(errors) == ["VERSION_CONFLICT"], errors


def test_next_version_of_a_party_is_everyones(server: Server, api_world: World) -> None:
    data, errors = next_version(server, api_world[AUDITOR], party_subject(SPONSOR))
    assert errors == [] and data["nextVersion"]["version"] >= 1, errors
