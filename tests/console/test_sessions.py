"""Sessions end to end: the real ``cmo-ledger login --no-open`` prints a link the browser
signs in with; opening a link only shows a confirmation page (a prefetcher cannot use it
up), whose same-origin ``POST`` signs in; a session ends after its idle time and at its
absolute lifetime, whatever its use.

Tests that move time serve the signing world's database from a server of their own on a
clock of their own, so the other modules' clocks stay where they are."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from playwright.sync_api import Browser, Page
from typer.testing import CliRunner

from api.console.security import SESSION_COOKIE
from clients.cli import app
from clients.cli.login import sign_in_link
from ledger.clock import FakeClock
from ledger.config import Settings
from tests.console.conftest import CONTOSO, NORTHWIND, SigningWorld, open_link
from tests.support.server import Server, running_server

pytestmark = pytest.mark.xdist_group("console")

IDLE, LIFETIME = 900, 28800
"""The defaults of CMO_LEDGER_SESSION_IDLE and CMO_LEDGER_SESSION_LIFETIME (seconds)."""


@pytest.fixture
def page(browser: Browser, signing: SigningWorld) -> Iterator[Page]:
    context = browser.new_context(base_url=signing.url)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def own_clock(signing: SigningWorld) -> Iterator[tuple[Server, FakeClock]]:
    """A server of the signing world's ledger on a ticking clock that only this test moves."""
    clock = FakeClock(ticking=True)
    settings: Settings = signing.settings
    with running_server(settings, signing.world.notary.key, clock=clock) as server:
        yield server, clock


def _session_cookie(page: Page) -> str:
    found = [c["value"] for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    assert len(found) == 1, page.context.cookies()
    return found[0]


def test_the_login_command_prints_a_link_the_browser_signs_in_with(
    signing: SigningWorld, page: Page
) -> None:
    result = CliRunner().invoke(app, ["login", "--no-open"], env=signing.env(CONTOSO))
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert f"sign-in link for {CONTOSO}" in result.stdout
    links = re.findall(r"http://\S+/console/sign-in\?\S+", result.stdout)
    assert len(links) == 1, result.stdout
    shown = page.goto(links[0])
    assert shown is not None and shown.status == 200
    assert page.locator("#confirm-party").inner_text() == CONTOSO
    with page.expect_navigation() as signed_in:
        page.click("#confirm-sign-in")
    assert signed_in.value is not None and signed_in.value.status == 200
    assert urlsplit(page.url).path == "/console"
    assert page.locator("#party").inner_text() == CONTOSO


def test_opening_a_link_only_asks_to_confirm_and_uses_nothing_up(
    signing: SigningWorld, page: Page
) -> None:
    link = signing.link(NORTHWIND)
    # A prefetcher (no browser, no cookies) fetches the link, twice: nothing is used up.
    for _ in range(2):
        prefetched = httpx2.get(link)
        assert prefetched.status_code == 200
        assert "confirm-sign-in" in prefetched.text
        assert SESSION_COOKIE not in prefetched.headers.get("set-cookie", "")
    assert prefetched.headers["cache-control"] == "no-store"
    assert "form-action 'self'" in prefetched.headers["content-security-policy"]
    response = open_link(page, link)
    assert response is not None and response.status == 200
    assert page.locator("#party").inner_text() == NORTHWIND
    _session_cookie(page)
    # Used once: the link's page now says so, and offers nothing to confirm.
    again = page.goto(link)
    assert again is not None and again.status == 401
    assert "already used" in page.locator("#message").inner_text()
    assert page.locator("#confirm-sign-in").count() == 0


def test_a_confirmation_posted_from_another_site_is_refused_and_uses_nothing_up(
    signing: SigningWorld, page: Page
) -> None:
    link = signing.link(NORTHWIND)
    form = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    for headers in (
        {"origin": "https://attacker.example"},
        {"origin": "null"},
        {"sec-fetch-site": "cross-site", "origin": "https://attacker.example"},
    ):
        refused = httpx2.post(f"{signing.url}/console/sign-in", data=form, headers=headers)
        assert refused.status_code == 403, headers
        assert "FORBIDDEN (origin)" in refused.text
        assert SESSION_COOKIE not in refused.headers.get("set-cookie", "")
    response = open_link(page, link)
    assert response is not None and response.status == 200
    assert page.locator("#party").inner_text() == NORTHWIND


def test_a_malformed_confirmation_is_refused_naming_the_field(signing: SigningWorld) -> None:
    sent = {"challenge": "AAAA", "signature": "not base64!"}
    refused = httpx2.post(f"{signing.url}/console/sign-in", data=sent)
    assert refused.status_code == 400
    assert "VALIDATION_FAILED (signature)" in refused.text


def test_a_session_unused_for_its_idle_time_ends(
    own_clock: tuple[Server, FakeClock], page: Page, signing: SigningWorld
) -> None:
    server, clock = own_clock
    actor = signing.world[NORTHWIND]
    response = open_link(page, sign_in_link(server.url, actor.party_id, actor.key).url)
    assert response is not None and response.status == 200
    cookies = {SESSION_COOKIE: _session_cookie(page)}
    with httpx2.Client(base_url=server.url, cookies=cookies) as http:
        clock.advance(timedelta(seconds=IDLE - 60))
        assert http.get("/console/browser-key").status_code == 200  # used: idle from now
        clock.advance(timedelta(seconds=IDLE - 60))
        assert http.get("/console/browser-key").status_code == 200
        clock.advance(timedelta(seconds=IDLE + 1))
        ended = http.get("/console/browser-key")
    assert ended.status_code == 401
    assert f"idle for over {IDLE} s" in ended.text


def test_a_session_in_use_ends_at_its_lifetime(
    own_clock: tuple[Server, FakeClock], page: Page, signing: SigningWorld
) -> None:
    server, clock = own_clock
    actor = signing.world[NORTHWIND]
    response = open_link(page, sign_in_link(server.url, actor.party_id, actor.key).url)
    assert response is not None and response.status == 200
    cookies = {SESSION_COOKIE: _session_cookie(page)}
    step = IDLE - 100
    used = 0
    with httpx2.Client(base_url=server.url, cookies=cookies) as http:
        while used + step < LIFETIME - 10:
            clock.advance(timedelta(seconds=step))
            used += step
            assert http.get("/console/browser-key").status_code == 200, used
        clock.advance(timedelta(seconds=LIFETIME - used + 1))
        ended = http.get("/console/browser-key")
    assert ended.status_code == 401
    assert f"reached its lifetime ({LIFETIME} s)" in ended.text
