"""Live events over graphql-transport-ws: in log order, only what the caller may read,
resumable from a position."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx2
import pytest
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from nacl.signing import SigningKey
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from api.auth import Caller
from api.context import Context
from api.errors import LIMIT_EXCEEDED, Unauthenticated
from api.permissions_hook import can_read_event
from api.subscriptions import FeedItem, Subscriber
from clients.http_signing import PartyAuth, connection_init_payload
from ledger.domain.subjects import party_subject
from ledger.errors import LimitExceeded
from ledger.keys import encode_public_key
from tests.support.loop import run as run_coroutine
from tests.support.server import Server, running_server
from tests.support.world import Actor, World

pytestmark = pytest.mark.xdist_group("api_subscriptions")

CMO = "contoso-cmo"
SUBSCRIBE = """
subscription($f: EventFilter) { events(filter: $f) { position leafIndex type signer } }
"""


def receive(
    server: Server,
    actor: Actor | None,
    filter_: dict[str, Any] | None,
    count: int,
    then: Callable[[], Any] | None = None,
) -> list[dict[str, Any]]:
    """The first ``count`` events of a subscription (failing, not hanging, if they never come);
    ``then`` runs in a thread once the server has registered the subscriber."""
    return run_coroutine(asyncio.wait_for(_receive(server, actor, filter_, count, then), 60))


async def _receive(
    server: Server,
    actor: Actor | None,
    filter_: dict[str, Any] | None,
    count: int,
    then: Callable[[], Any] | None = None,
) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    request = GraphQLRequest(SUBSCRIBE, variable_values={"f": filter_})
    async with server.ws(actor) as session:
        stream = session.subscribe(request)
        if then is not None:
            first = asyncio.ensure_future(anext(stream))
            while server.services.feed.subscribers == 0 and not first.done():
                await asyncio.sleep(0.01)
            await asyncio.to_thread(then)
            received.append((await first)["events"])
        while len(received) < count:
            received.append((await anext(stream))["events"])
        await stream.aclose()
    return received[:count]


def visible_positions(server: Server, world: World, party_id: str) -> list[int]:
    """What ``party_id`` may read, decided in-process by the server's own rule."""
    services = server.services
    party = services.ledger.party(party_id)
    assert party is not None
    caller = Caller(party_id, world[party_id].key_id, party.legal_name, party.role)
    context = Context(
        ledger=services.ledger,
        settings=services.settings,
        limits=services.limits,
        services=services,
        party=caller,
    )
    return [
        recorded.position
        for recorded in services.ledger.iter_log()
        if can_read_event(context, recorded)
    ]


def add_key(server: Server, actor: Actor) -> dict[str, Any]:
    return server.submit(
        actor,
        "KeyAdded",
        party_subject(actor.party_id),
        {"public_key": encode_public_key(SigningKey.generate()), "purpose": "party"},
        meaning="authored",
    )


def test_a_subscription_replays_what_the_caller_may_read_in_log_order(
    server: Server, api_world: World
) -> None:
    add_key(server, api_world[CMO])
    add_key(server, api_world["helios-tx"])
    for party_id in (CMO, "helios-tx"):
        expected = visible_positions(server, api_world, party_id)
        assert expected, f"{party_id} may read no event"
        got = receive(server, api_world[party_id], {"after": 0}, len(expected))
        assert [event["position"] for event in got] == expected
        assert all(event["leafIndex"] is not None for event in got)


def test_a_live_event_arrives_once_after_the_stored_ones(server: Server, api_world: World) -> None:
    cmo = api_world[CMO]
    start = api_world.ledger.head()
    submitted: list[dict[str, Any]] = []
    got = receive(
        server, cmo, {"after": start}, 2, then=lambda: submitted.extend(
            [add_key(server, cmo), add_key(server, cmo)]
        )
    )  # fmt: skip
    assert [event["position"] for event in got] == [s["position"] for s in submitted]
    assert {event["type"] for event in got} == {"KeyAdded"}


def test_events_appended_by_another_server_process_arrive(server: Server, api_world: World) -> None:
    cmo = api_world[CMO]
    start = api_world.ledger.head()
    submitted: list[dict[str, Any]] = []
    with running_server(api_world.ledger.settings, api_world.notary.key) as other:
        got = receive(
            server, cmo, {"after": start}, 1, then=lambda: submitted.append(add_key(other, cmo))
        )
    assert [event["position"] for event in got] == [submitted[0]["position"]]


def test_a_completed_subscription_stops_being_fed(server: Server, api_world: World) -> None:
    cmo = api_world[CMO]
    receive(server, cmo, {"after": 0}, 1)
    deadline = time.monotonic() + 30
    while server.services.feed.subscribers and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.services.feed.subscribers == 0


def test_a_subscription_resumes_after_a_position(server: Server, api_world: World) -> None:
    cmo = api_world[CMO]
    first = add_key(server, cmo)
    second = add_key(server, cmo)
    got = receive(server, cmo, {"after": first["position"]}, 1)
    assert got[0]["position"] == second["position"]


def test_a_filter_keeps_only_the_types_and_signers_asked_for(
    server: Server, api_world: World
) -> None:
    notary = api_world.notary
    got = receive(
        server, notary, {"after": 0, "types": ["PartyAdmitted"], "signers": ["notary"]}, 6
    )
    assert {(event["type"], event["signer"]) for event in got} == {("PartyAdmitted", "notary")}


def test_naming_a_subject_the_caller_may_not_read_is_refused_not_filtered(
    server: Server, api_world: World
) -> None:
    unknown = str(uuid.uuid4())
    with pytest.raises(TransportQueryError) as refused:
        receive(server, api_world[CMO], {"after": 0, "subjects": [unknown]}, 1)
    errors = refused.value.errors or []
    assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"]
    own = str(party_subject(CMO))
    got = receive(server, api_world[CMO], {"after": 0, "subjects": [own]}, 1)
    assert got[0]["type"] == "PartyAdmitted"


def test_an_unsigned_subscription_is_unauthenticated(server: Server) -> None:
    with pytest.raises(TransportQueryError) as refused:
        receive(server, None, {"after": 0}, 1)
    assert [e["extensions"]["code"] for e in refused.value.errors or []] == ["UNAUTHENTICATED"]


def test_a_badly_signed_connection_is_closed_as_unauthenticated(
    server: Server, api_world: World
) -> None:
    payload = connection_init_payload(
        CMO, SigningKey.generate(), url=server.ws_url, origin=server.origin
    )
    with connect(server.ws_url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=30)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
    assert closed.value.rcvd.reason.startswith("UNAUTHENTICATED: ")


def test_a_replayed_connection_init_is_refused(server: Server, api_world: World) -> None:
    payload = server.init_payload(api_world[CMO])
    for expected in ("connection_ack", None):
        with connect(server.ws_url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
            socket.send(json.dumps({"type": "connection_init", "payload": payload}))
            if expected is not None:
                assert json.loads(socket.recv(timeout=30))["type"] == expected
                continue
            with pytest.raises(ConnectionClosed) as closed:
                socket.recv(timeout=30)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
            assert "already used" in closed.value.rcvd.reason


def closing_reason(server: Server, payload: dict[str, str]) -> str:
    """The reason the server closes a websocket with 4401 after ``payload``."""
    with connect(server.ws_url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    return closed.value.rcvd.reason


def test_a_connection_init_signed_for_another_origin_is_closed_as_unauthenticated(
    server: Server, api_world: World
) -> None:
    other = "ledger.fabrikam.example/cmo"
    payload = connection_init_payload(CMO, api_world[CMO].key, url=server.ws_url, origin=other)
    reason = closing_reason(server, payload)
    assert reason.startswith("UNAUTHENTICATED: ")
    assert f"signed for ledger {other!r}" in reason


def test_a_connection_init_origin_changed_after_signing_is_refused(
    server: Server, api_world: World
) -> None:
    payload = connection_init_payload(
        CMO, api_world[CMO].key, url=server.ws_url, origin="ledger.fabrikam.example/cmo"
    )
    payload["ledger-origin"] = server.origin
    assert "does not verify" in closing_reason(server, payload)


def test_a_connection_init_from_an_older_client_is_closed_with_update_advice(
    server: Server, api_world: World
) -> None:
    # What clients signed before signatures were bound to one ledger: method and path only.
    actor = api_world[CMO]
    request = httpx2.Request("GET", server.graphql_url)
    auth = PartyAuth(actor.party_id, actor.key)
    auth._signer.sign(
        request,
        key_id=auth.keyid,
        created=datetime.now(UTC),
        nonce=uuid.uuid4().hex,
        label="sig",
        tag="graphql-transport-ws",
        covered_component_ids=("@method", "@path"),
    )
    payload = {
        "signature-input": request.headers["signature-input"],
        "signature": request.headers["signature"],
    }
    reason = closing_reason(server, payload)
    assert 'must cover "@authority" and "ledger-origin"' in reason
    assert "update the client" in reason


def test_a_connection_init_signed_for_another_host_is_refused(
    server: Server, api_world: World
) -> None:
    payload = connection_init_payload(
        CMO, api_world[CMO].key, url="wss://ledger-b.example/graphql", origin=server.origin
    )
    host = httpx2.URL(server.url).netloc.decode()
    with pytest.raises(Unauthenticated) as refused:
        server.services.auth.authenticate_ws(payload, "/graphql", authority=host)
    assert f"signed for host 'ledger-b.example', this websocket reached {host!r}" in str(
        refused.value.message
    )


def test_a_subscriber_that_falls_behind_is_ended_with_limit_exceeded(api_world: World) -> None:
    subscriber = Subscriber(size=2)
    recorded = api_world.ledger.read(0, 3)
    for event in recorded:
        subscriber.offer(FeedItem(event, None))
    assert subscriber.overflowed

    async def drain() -> list[int]:
        batch = await subscriber.next_batch()
        await subscriber.next_batch()
        return [item.recorded.position for item in batch]

    with pytest.raises(LimitExceeded) as ended:
        run_coroutine(drain())
    assert ended.value.code == LIMIT_EXCEEDED
    assert ended.value.field == "filter.after"
