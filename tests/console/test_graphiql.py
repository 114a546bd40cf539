"""GraphiQL served offline and authenticated by the console session, in a real browser;
a revoked key ends its sessions at the next request."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx2
import pytest
from nacl.signing import SigningKey
from playwright.sync_api import Page, expect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from api.console.security import CSRF_HEADER, SESSION_COOKIE
from ledger.domain.subjects import party_subject
from ledger.keys import encode_public_key, key_id
from tests.console.conftest import NORTHWIND, REGULATOR, ConsoleWorld, open_link
from tests.support.world import Actor

pytestmark = pytest.mark.xdist_group("console")

ME = "{ me { id } }"


def _session(page: Page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == SESSION_COOKIE)


def _csrf(page: Page) -> str:
    value = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert value
    return value


def test_graphiql_loads_offline_and_runs_me_as_the_signed_in_party(
    console: ConsoleWorld, page: Page
) -> None:
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    open_link(page, console.link(REGULATOR))
    page.goto("/graphql?q=" + quote(ME))
    run = page.locator(".graphiql-execute-button")
    expect(run).to_be_visible(timeout=30_000)
    with page.expect_response(
        lambda r: (
            r.url.endswith("/graphql")
            and r.request.method == "POST"
            and json.loads(r.request.post_data or "{}").get("query") == ME
        )
    ) as answered:
        run.click()
    body = answered.value.json()
    assert body == {"data": {"me": {"id": REGULATOR}}}
    expect(page.locator(".result-window")).to_contain_text(REGULATOR)
    assert answered.value.request.headers.get(CSRF_HEADER) == _csrf(page)
    assert console.blocked == [], f"requests to other hosts were attempted: {console.blocked}"
    assert violations == [], violations


def test_a_session_request_without_the_csrf_header_is_refused(
    console: ConsoleWorld, page: Page
) -> None:
    open_link(page, console.link(NORTHWIND))
    page.goto("/console/audit")  # the session's CSRF token, as GraphiQL's page carries it
    cookies = {SESSION_COOKIE: _session(page)}
    body = json.dumps({"query": ME})
    headers = {"content-type": "application/json"}
    with httpx2.Client(base_url=console.url, cookies=cookies) as http:
        refused = http.post("/graphql", content=body, headers=headers)
        assert refused.status_code == 401
        assert CSRF_HEADER in refused.json()["errors"][0]["message"]
        foreign = {**headers, CSRF_HEADER: _csrf(page), "origin": "https://evil.example"}
        assert http.post("/graphql", content=body, headers=foreign).status_code == 401
        accepted = http.post(
            "/graphql", content=body, headers={**headers, CSRF_HEADER: _csrf(page)}
        )
        assert accepted.json() == {"data": {"me": {"id": NORTHWIND}}}


def test_a_revoked_keys_session_is_refused_at_the_next_request(
    console: ConsoleWorld, page: Page
) -> None:
    owner = console.actor(NORTHWIND)
    spare = SigningKey.generate()
    ledger = console.world.ledger
    subject = party_subject(NORTHWIND)
    owner.submit(
        ledger,
        "KeyAdded",
        subject,
        {"public_key": encode_public_key(spare), "purpose": "party"},
        meaning="authored",
    )
    response = open_link(page, console.link(Actor(NORTHWIND, spare)))
    assert response is not None and response.status == 200
    csrf, cookies = _csrf(page), {SESSION_COOKIE: _session(page)}
    owner.submit(
        ledger,
        "KeyRevoked",
        subject,
        {"key": key_id(spare.verify_key)},
        meaning="revoked",
        reason="laptop lost",
    )
    refused = page.goto("/console")
    assert refused is not None and refused.status == 401
    assert "revoked" in page.locator("#message").inner_text()
    with httpx2.Client(base_url=console.url, cookies=cookies) as http:
        answer = http.post(
            "/graphql",
            content=json.dumps({"query": ME}),
            headers={"content-type": "application/json", CSRF_HEADER: csrf},
        )
    assert answer.status_code == 401
    assert answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def _socket_answer(url: str, headers: dict[str, str]) -> dict[str, object]:
    """``{ me { id } }`` over an unsigned websocket with ``headers``: the operation's
    payload, ``{"closed": code}`` when the server closes the socket, ``{"refused": status}``
    when it refuses the handshake."""
    ws_url = url.replace("http://", "ws://", 1) + "/graphql"
    protocols: Any = ["graphql-transport-ws"]
    try:
        socket = connect(ws_url, subprotocols=protocols, additional_headers=headers)
    except InvalidStatus as refused:
        return {"refused": refused.response.status_code}
    with socket:
        socket.send(json.dumps({"type": "connection_init", "payload": {}}))
        try:
            assert json.loads(socket.recv(timeout=30))["type"] == "connection_ack"
            socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": ME}}))
            message = json.loads(socket.recv(timeout=30))
        except ConnectionClosed as closed:
            assert closed.rcvd is not None
            return {"closed": closed.rcvd.code}
    assert message["type"] == "next", message
    return dict(message["payload"])


def test_graphiql_s_websocket_runs_as_the_session_s_party_from_its_own_pages_only(
    console: ConsoleWorld, page: Page
) -> None:
    open_link(page, console.link(NORTHWIND))
    cookie = f"{SESSION_COOKIE}={_session(page)}"
    host = console.url.split("://", 1)[1]
    own = {"cookie": cookie, "origin": f"http://{host}"}
    assert _socket_answer(console.url, own) == {"data": {"me": {"id": NORTHWIND}}}
    foreign = {"cookie": cookie, "origin": "https://evil.example"}
    assert _socket_answer(console.url, foreign) == {"refused": 403}
    assert _socket_answer(console.url, {"cookie": cookie}) == {"closed": 4401}
