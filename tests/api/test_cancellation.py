"""A field's cancellation stays its own: a load another field shares still answers it, and a
cancellation no one aimed at the request answers a coded error, not a broken connection."""

from __future__ import annotations

import asyncio

import httpx2
import pytest
from starlette.requests import Request
from starlette.responses import Response

from api.queries.common import SharedLoader
from tests.conftest import BACKENDS
from tests.support.data_server import Served, shared_data_server
from tests.support.loop import run as run_coroutine

pytestmark = pytest.mark.xdist_group("data_queries")


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest) -> Served:
    return shared_data_server(request, request.param)


def test_a_shared_load_answers_the_field_still_waiting_when_another_is_cancelled() -> None:
    async def scenario() -> tuple[bool, str]:
        release = asyncio.Event()

        async def load(keys: list[str]) -> list[str]:
            await release.wait()
            return [f"row of {key}" for key in keys]

        loads = SharedLoader(load_fn=load)

        async def field() -> str:
            return await loads.load("agreement-1")

        cancelled_field = asyncio.ensure_future(field())
        waiting_field = asyncio.ensure_future(field())
        await asyncio.sleep(0)
        cancelled_field.cancel()
        await asyncio.sleep(0)
        release.set()
        answer = await waiting_field
        return cancelled_field.cancelled(), answer

    cancelled, answer = run_coroutine(scenario())
    assert cancelled
    assert answer == "row of agreement-1"


def test_a_cancellation_from_within_an_operation_answers_a_coded_internal_error(
    served: Served,
) -> None:
    server = served.server
    view = server.app.state.graphql

    async def cancelled_from_within(request: Request) -> Response:
        shared = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(shared.cancel)
        await shared
        raise AssertionError("unreachable")

    original = view.run
    view.run = cancelled_from_within
    try:
        with httpx2.Client(base_url=server.url, timeout=30) as client:
            refused = client.post("/graphql", json={"query": "{ ledger { origin } }"})
    finally:
        view.run = original
    assert refused.status_code == 500
    errors = refused.json()["errors"]
    assert [error["extensions"]["code"] for error in errors] == ["INTERNAL_ERROR"]
    with httpx2.Client(base_url=server.url, timeout=30) as client:
        answered = client.post("/graphql", json={"query": "{ ledger { origin } }"})
    assert answered.status_code == 200
    assert answered.json()["data"]["ledger"]["origin"]
