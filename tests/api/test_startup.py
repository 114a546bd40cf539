"""A starting server waits out a database that does not answer (a restart) instead of
exiting, which under ``serve --workers N`` would stop every worker with it; it closes what
each try opened, gives up after ``START_PATIENCE``, and raises any other failure at once."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

import api.app
from api.app import create_app
from api.services import Services
from tests.support.world import World


def _database_gone() -> sa.exc.OperationalError:
    return sa.exc.OperationalError(
        "SELECT 1", {}, OSError("FATAL: the database system is shutting down")
    )


async def _start_and_stop(app: Starlette) -> int:
    """Run the app's start-up and shutdown; the log head its services saw."""
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        return services.ledger.head()


def _tries(
    monkeypatch: pytest.MonkeyPatch, failures: int, error: BaseException
) -> list[tuple[str, int]]:
    """Make the first ``failures`` starts raise ``error`` (the services opened, then the
    database gone); return each start that succeeded and each close, in order, by the
    services' identity."""
    told: list[tuple[str, int]] = []
    left = [failures]
    start, close = Services.start, Services.close

    def starting(self: Services) -> None:
        if left[0] > 0:
            left[0] -= 1
            raise error
        start(self)
        told.append(("start", id(self)))

    def closing(self: Services) -> None:
        told.append(("close", id(self)))
        close(self)

    monkeypatch.setattr(Services, "start", starting)
    monkeypatch.setattr(Services, "close", closing)
    return told


def test_a_server_starting_while_the_database_restarts_waits_for_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    story = _tries(monkeypatch, 2, _database_gone())
    app = create_app(world.ledger.settings, notary_key=world.notary.key)
    assert asyncio.run(_start_and_stop(app)) == world.ledger.head()
    started = [who for what, who in story if what == "start"]
    closed = [who for what, who in story if what == "close"]
    assert len(started) == 1, "the two tries without a database never started"
    assert len(closed) == 3, "each try's services were closed: two failed, one shut down"
    assert closed[-1] == started[0]


def test_a_database_away_longer_than_the_patience_fails_the_start() -> None:
    tries: list[int] = []
    ticks = iter(range(100))  # a try takes a second by this clock

    async def start() -> Services:
        tries.append(len(tries))
        raise _database_gone()

    with pytest.raises(sa.exc.OperationalError):
        asyncio.run(api.app._waiting_for_the_database(start, 3.0, clock=lambda: next(ticks)))
    # Tried at 0, 1 and 2 s; at 3 s the next wait would end past the patience.
    assert len(tries) == 3


def test_any_other_start_up_failure_is_raised_at_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    story = _tries(monkeypatch, 1000, RuntimeError("a bug"))
    app = create_app(world.ledger.settings, notary_key=world.notary.key)
    with pytest.raises(RuntimeError, match="a bug"):
        asyncio.run(_start_and_stop(app))
    assert [what for what, _ in story] == ["close"], "one try, its services closed"
