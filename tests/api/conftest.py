"""API fixtures: one served ledger per test module and backend (SQLite and PostgreSQL).

Starting a server costs more than a test, so the tests of a module share one world and
one server and only assert on what they themselves added.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.application import Ledger
from ledger.config import Settings
from tests.conftest import BACKENDS, fresh_database
from tests.support.server import Server, running_server
from tests.support.world import ORIGIN, World, build_world, notary_actor


@pytest.fixture(scope="module", params=BACKENDS)
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh ledger database for one module: a SQLite file or a private PG schema."""
    with fresh_database(request.param, request, tmp_path_factory.mktemp("api")) as url:
        yield url


@pytest.fixture(scope="module")
def api_settings(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir: Path = tmp_path_factory.mktemp("data")
    return Settings(database_url=module_database_url, data_dir=data_dir, kdf_profile="min")


@pytest.fixture(scope="module")
def api_world(api_settings: Settings) -> Iterator[World]:
    """The parties of WORLD.md admitted in-process (the notary's job, not the API's)."""
    notary = notary_actor()
    ledger = Ledger.initialise(api_settings, ORIGIN, notary.public_key)
    try:
        yield build_world(ledger, notary)
    finally:
        ledger.close()


@pytest.fixture(scope="module")
def server(api_settings: Settings, api_world: World) -> Iterator[Server]:
    with running_server(api_settings, api_world.notary.key) as running:
        yield running
