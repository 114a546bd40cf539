"""Sign-in by challenge, in a real browser: the link signs in once, within 60 s, as the
party whose key signed it; sign-out ends the session."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
from playwright.sync_api import Page

from api.console.challenge import b64url, from_b64url
from api.console.security import SESSION_COOKIE
from tests.console.conftest import CONTOSO, NORTHWIND, REGULATOR, ConsoleWorld, open_link

pytestmark = pytest.mark.xdist_group("console")


def _metric(console: ConsoleWorld, party: str, outcome: str) -> float:
    with httpx2.Client(base_url=console.url) as http:
        text = http.get("/metrics").text
    wanted = f'cmo_ledger_console_sign_ins_total{{party="{party}",outcome="{outcome}"}} '
    for line in text.splitlines():
        if line.startswith(wanted):
            return float(line[len(wanted) :])
    return 0.0


@pytest.mark.parametrize("party", [NORTHWIND, CONTOSO, REGULATOR])
def test_sign_in_by_challenge_as_each_role(console: ConsoleWorld, page: Page, party: str) -> None:
    accepted = _metric(console, party, "accepted")
    response = open_link(page, console.link(party))
    assert response is not None and response.status == 200, page.content()
    assert urlsplit(page.url).path == "/console"
    assert page.locator("#party").inner_text() == party
    cookies = [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    assert len(cookies) == 1
    cookie = cookies[0]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert not cookie["secure"]  # plain http here; Secure over https
    assert _metric(console, party, "accepted") == accepted + 1


def test_a_used_link_is_refused(console: ConsoleWorld, page: Page) -> None:
    link = console.link(NORTHWIND)
    replayed = _metric(console, NORTHWIND, "replayed")
    assert open_link(page, link).status == 200  # type: ignore[union-attr]
    page.context.clear_cookies()
    again = page.goto(link)
    assert again is not None and again.status == 401
    assert "already used" in page.locator("#message").inner_text()
    assert page.locator("#party").count() == 0
    assert not [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    assert _metric(console, NORTHWIND, "replayed") == replayed + 1


def test_an_expired_link_is_refused(console: ConsoleWorld, page: Page) -> None:
    link = console.link(CONTOSO)
    expired = _metric(console, CONTOSO, "expired")
    console.clock.advance(timedelta(seconds=61))
    response = page.goto(link)
    assert response is not None and response.status == 401
    assert "expired" in page.locator("#message").inner_text()
    assert not [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    assert _metric(console, CONTOSO, "expired") == expired + 1


def test_a_link_with_a_forged_signature_is_refused(console: ConsoleWorld, page: Page) -> None:
    link = console.link(REGULATOR)
    query = parse_qs(urlsplit(link).query)
    signature = bytearray(from_b64url(query["signature"][0]))
    signature[0] ^= 1
    forged = {"challenge": query["challenge"][0], "signature": b64url(bytes(signature))}
    failed = _metric(console, REGULATOR, "failed")
    response = page.goto("/console/sign-in?" + urlencode(forged))
    assert response is not None and response.status == 401
    assert "does not verify" in page.locator("#message").inner_text()
    assert _metric(console, REGULATOR, "failed") == failed + 1
    # The challenge was not consumed by the forgery: the real link still signs in.
    assert open_link(page, link).status == 200  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "challenge"),
        ({"challenge": "AAAA"}, "signature"),
        ({"challenge": "not base64!", "signature": "AAAA"}, "challenge"),
    ],
)
def test_a_malformed_link_is_refused_naming_the_field(
    console: ConsoleWorld, query: dict[str, str], field: str
) -> None:
    with httpx2.Client(base_url=console.url) as http:
        response = http.get("/console/sign-in?" + urlencode(query))
    assert response.status_code == 400
    assert f"VALIDATION_FAILED ({field})" in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


def test_a_challenge_needs_a_signed_request(console: ConsoleWorld) -> None:
    with httpx2.Client(base_url=console.url) as http:
        response = http.post("/console/challenge")
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_sign_out_ends_the_session(console: ConsoleWorld, page: Page) -> None:
    open_link(page, console.link(NORTHWIND))
    token = next(c["value"] for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    page.click("#sign-out")
    assert "signed out" in page.locator("#message").inner_text()
    assert not [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    response = page.goto("/console")
    assert response is not None and response.status == 401
    # The token itself no longer authenticates, from any client.
    with httpx2.Client(base_url=console.url, cookies={SESSION_COOKIE: token}) as http:
        assert http.get("/console").status_code == 401


def test_sign_out_without_the_csrf_token_is_refused(console: ConsoleWorld, page: Page) -> None:
    open_link(page, console.link(NORTHWIND))
    token = next(c["value"] for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    with httpx2.Client(base_url=console.url, cookies={SESSION_COOKIE: token}) as http:
        assert http.post("/console/sign-out", data={"csrf": "guess"}).status_code == 403
        assert http.get("/console").status_code == 200  # still signed in
