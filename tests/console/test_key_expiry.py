"""R8 in the console: the home page tells the signed-in party to rotate a key that expires
within the rotation warning window, and says nothing while every key lasts longer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from playwright.sync_api import Browser, Page

from clients.cli.login import sign_in_link
from ledger.clock import FakeClock
from ledger.domain.key_history import ROTATION_WARNING
from ledger.domain.subjects import party_subject
from ledger.keys import encode_public_key, key_id
from ledger.timeutil import format_utc, now_utc
from tests.conftest import BACKENDS, fresh_world
from tests.console.conftest import CONTOSO, NORTHWIND, open_link
from tests.support.agreements import propose_and_sign
from tests.support.server import Server, running_server
from tests.support.world import World

pytestmark = pytest.mark.xdist_group("console")


@pytest.fixture(params=BACKENDS)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[World, Server]]:
    """A world of its own (A1 in force), served: the key it adds is no other test's."""
    with fresh_world(request.param, request, tmp_path) as world:
        propose_and_sign(world)
        clock = FakeClock(ticking=True)
        with running_server(world.ledger.settings, world.notary.key, clock=clock) as server:
            yield world, server


@pytest.fixture
def page(browser: Browser, served: tuple[World, Server]) -> Iterator[Page]:
    context = browser.new_context(base_url=served[1].url)
    try:
        yield context.new_page()
    finally:
        context.close()


def _home(world: World, server: Server, page: Page, party: str) -> None:
    response = open_link(page, sign_in_link(server.url, party, world[party].key).url)
    assert response is not None and response.status == 200


def test_r8_the_home_page_warns_of_a_key_expiring_soon(
    served: tuple[World, Server], page: Page
) -> None:
    world, server = served
    soon = format_utc(now_utc() + ROTATION_WARNING - timedelta(days=1))
    added = SigningKey.generate()
    world[NORTHWIND].submit(
        world.ledger,
        "KeyAdded",
        party_subject(NORTHWIND),
        {"public_key": encode_public_key(added), "purpose": "party", "expires_at": soon},
        meaning="authored",
    )

    _home(world, server, page, NORTHWIND)
    notice = page.locator("#key-expiry .expiring-key")
    assert notice.count() == 1
    text = notice.inner_text()
    assert key_id(added.verify_key) in text and f"rotate before {soon}" in text, text


def test_r8_the_home_page_is_quiet_while_every_key_lasts(
    served: tuple[World, Server], page: Page
) -> None:
    world, server = served
    _home(world, server, page, CONTOSO)
    assert page.locator("#agreements").count() == 1
    assert page.locator("#key-expiry").count() == 0
