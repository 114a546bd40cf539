"""One served data world per backend and test process, shared by the data-query tests.

Building the world and starting a server cost more than the tests that read them, so
``shared_data_server`` builds each backend's once per process (pytest-xdist worker) and
stops it when the session ends. Tests that append events only add keys or grants that
no other test counts.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from ledger.application import Ledger
from ledger.clock import FakeClock
from ledger.config import Settings
from tests.support.data_world import DataWorld, build_data_world
from tests.support.server import Server, running_server
from tests.support.world import ORIGIN, build_world, notary_actor

__all__ = ["Served", "shared_data_server"]


@dataclass
class Served:
    """A running server over a data world."""

    server: Server
    data: DataWorld

    def call(self, party: str | None, query: str, variables: dict[str, Any] | None = None) -> Any:
        """``(data, errors)`` of one operation signed by ``party`` (None: unsigned)."""
        actor = None if party is None else self.data.world[party]
        return self.server.call(actor, query, variables)


_running: dict[str, Served] = {}


def _database_url(request: pytest.FixtureRequest, backend: str, stack: Any) -> str:
    if backend == "sqlite":
        folder = request.getfixturevalue("tmp_path_factory").mktemp("data-queries")
        return f"sqlite:///{folder / 'ledger.db'}"
    base = request.getfixturevalue("pg_url")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    # pool_pre_ping: `make reliability` restarts PostgreSQL before this drops the schema.
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))

    def drop() -> None:
        with engine.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()

    stack.callback(drop)
    return f"{base}?options=-csearch_path%3D{schema}"


def shared_data_server(request: pytest.FixtureRequest, backend: str) -> Served:
    """The process's served data world on ``backend`` (``sqlite`` or ``postgres``)."""
    found = _running.get(backend)
    if found is not None:
        return found
    stack = contextlib.ExitStack()
    request.config.add_cleanup(stack.close)
    url = _database_url(request, backend, stack)
    folder = request.getfixturevalue("tmp_path_factory").mktemp("data-dir")
    settings = Settings(database_url=url, data_dir=folder, kdf_profile="min")
    notary = notary_actor()
    # Running with the machine's clock; the short grant's expiry is reached by moving it
    # forward, not by sleeping.
    clock = FakeClock(ticking=True)
    ledger = Ledger.initialise(settings, ORIGIN, notary.public_key, clock)
    stack.callback(ledger.close)
    data = build_data_world(build_world(ledger, notary))
    server = stack.enter_context(running_server(settings, notary.key, clock=clock))
    stack.callback(_running.pop, backend, None)
    _running[backend] = Served(server, data)
    return _running[backend]
