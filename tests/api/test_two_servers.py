"""Two servers on one database, each with its own cache of aggregates and its own group
commit: appending to the same subjects in turn, neither accepts a stale ``version`` or
``prev`` nor refuses a valid one, and of racing submissions of one version exactly one
lands."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from nacl.signing import SigningKey

from ledger.config import Settings
from ledger.domain.subjects import party_subject
from ledger.keys import encode_public_key
from tests.support.server import SUBMIT, Server, codes, running_server
from tests.support.world import World

CMO = "contoso-cmo"


@pytest.fixture(scope="module")
def servers(api_settings: Settings, api_world: World) -> Iterator[tuple[Server, Server]]:
    with (
        running_server(api_settings, api_world.notary.key) as first,
        running_server(api_settings, api_world.notary.key) as second,
    ):
        yield first, second


def _key_added(server: Server, world: World) -> tuple[dict[str, Any], str]:
    payload = {"public_key": encode_public_key(SigningKey.generate()), "purpose": "party"}
    return server.prepare(world[CMO], "KeyAdded", party_subject(CMO), payload, meaning="authored")


def _submit(server: Server, world: World, item: tuple[dict[str, Any], str]) -> list[str]:
    _, errors = server.call(world[CMO], SUBMIT, {"e": item[0], "s": item[1]})
    return codes(errors)


def test_servers_appending_in_turn_never_accept_a_stale_version_nor_refuse_a_valid_one(
    servers: tuple[Server, Server], api_world: World
) -> None:
    for turn in range(6):
        writer, other = servers if turn % 2 == 0 else servers[::-1]
        stale = _key_added(other, api_world)  # signed before the writer's append
        assert _submit(writer, api_world, _key_added(writer, api_world)) == []
        assert _submit(other, api_world, stale) == ["VERSION_CONFLICT"]
        assert _submit(other, api_world, _key_added(other, api_world)) == []


def _race(
    servers: tuple[Server, Server], world: World, items: list[tuple[dict[str, Any], str]]
) -> list[list[str]]:
    """Submit ``items`` at once, alternately to each server; each one's error codes."""
    outcomes: list[list[str]] = [[] for _ in items]

    def submit(index: int) -> None:
        outcomes[index] = _submit(servers[index % 2], world, items[index])

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(items))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def test_racing_submissions_of_one_version_on_two_servers_store_exactly_one(
    servers: tuple[Server, Server], api_world: World
) -> None:
    for _ in range(4):
        items = [_key_added(servers[0], api_world) for _ in range(4)]
        outcomes = _race(servers, api_world, items)
        assert sorted(outcomes) == [[], *[["VERSION_CONFLICT"]] * 3], outcomes
