"""Command-line fixtures: a served sponsor-CMO world per module and backend, a keystore
per party and a runner (:class:`tests.support.cli.Cli`) that signs as any of them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.keystore import create_keystore, kdf_limits_from_env
from tests.conftest import BACKENDS, fresh_world
from tests.support.cli import ENV, PASSPHRASE, Cli
from tests.support.server import Server, running_server
from tests.support.world import World


@pytest.fixture(scope="module", params=BACKENDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("cli")
    with fresh_world(request.param, request, directory) as world:
        yield world


@pytest.fixture(scope="module")
def server(world: World) -> Iterator[Server]:
    with running_server(world.ledger.settings, world.notary.key) as running:
        yield running


@pytest.fixture(scope="module")
def keystores(world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A keystore for the notary and each party of the world, with the world's keys."""
    directory = tmp_path_factory.mktemp("keys")
    opslimit, memlimit = kdf_limits_from_env(ENV)
    paths = {}
    for actor in [world.notary, *world.actors.values()]:
        path = directory / f"{actor.party_id}.key"
        create_keystore(
            path,
            actor.party_id,
            PASSPHRASE,
            signing_key=actor.key,
            opslimit=opslimit,
            memlimit=memlimit,
        )
        paths[actor.party_id] = path
    return paths


@pytest.fixture
def cli(server: Server, keystores: dict[str, Path]) -> Cli:
    return Cli(server, keystores)
