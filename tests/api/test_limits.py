"""Every limit is configurable and every refusal answers LIMIT_EXCEEDED."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError

from api.limits import Limits
from clients.http_signing import PartyAuth
from ledger.config import Settings
from tests.support.loop import run as run_coroutine
from tests.support.server import Server, codes, running_server
from tests.support.world import World

pytestmark = pytest.mark.xdist_group("api_limits")

CMO = "contoso-cmo"
LIMITS = Limits(
    max_query_depth=2,
    max_aliases=2,
    max_tokens=60,
    max_page_size=5,
    max_body_bytes=2048,
    max_subscriptions=1,
)
SUBSCRIBE = "subscription { events { position } }"


@pytest.fixture(scope="module")
def api_settings(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=module_database_url,
        data_dir=tmp_path_factory.mktemp("data"),
        kdf_profile="min",
        max_batch=3,
    )


@pytest.fixture(scope="module")
def server(api_settings: Settings, api_world: World) -> Iterator[Server]:
    with running_server(api_settings, api_world.notary.key, limits=LIMITS) as running:
        yield running


def refused_with_limit(server: Server, world: World, query: str, **variables: Any) -> str:
    _, errors = server.call(world[CMO], query, variables or None)
    assert codes(errors) == ["LIMIT_EXCEEDED"], errors
    return str(errors[0]["message"])


def test_queries_within_every_limit_are_answered(server: Server, api_world: World) -> None:
    data, errors = server.call(
        api_world[CMO], "{ a: ledger { origin } log(first: 5) { events { type } } }"
    )
    assert errors == []
    assert len(data["log"]["events"]) <= 5


def test_a_query_nested_too_deep_is_refused(server: Server, api_world: World) -> None:
    query = "{ log { events { inclusionProof { hashes } } } }"
    assert "depth" in refused_with_limit(server, api_world, query)


def test_too_many_aliases_are_refused(server: Server, api_world: World) -> None:
    query = "{ a: ledger { origin } b: ledger { origin } c: ledger { origin } }"
    assert "aliases" in refused_with_limit(server, api_world, query)


def test_a_document_with_too_many_tokens_is_refused(server: Server, api_world: World) -> None:
    query = "{ ledger { " + " ".join(["origin"] * 70) + " } }"
    assert "tokens" in refused_with_limit(server, api_world, query)


def test_a_page_larger_than_the_limit_is_refused(server: Server, api_world: World) -> None:
    message = refused_with_limit(server, api_world, "{ log(first: 6) { reached } }")
    assert "at most 5" in message


def test_a_batch_larger_than_the_limit_is_refused(server: Server, api_world: World) -> None:
    items = [{"envelope": {}, "signature": "x"}] * 4
    query = "mutation($e: [SignedEnvelopeInput!]!) { submitEvents(events: $e) { position } }"
    assert "at most 3" in refused_with_limit(server, api_world, query, e=items)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_request_body_over_the_limit_is_refused(
    server: Server, api_world: World, chunked: bool
) -> None:
    actor = api_world[CMO]
    body = ('{"query": "{ ledger { origin } }", "pad": "' + "x" * 3000 + '"}').encode()
    content: Any = iter([body[:1000], body[1000:]]) if chunked else body
    with httpx2.Client(auth=PartyAuth(actor.party_id, actor.key)) as client:
        response = client.post(
            server.graphql_url, content=content, headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert codes(response.json()["errors"]) == ["LIMIT_EXCEEDED"]


def test_subscriptions_beyond_the_limit_on_one_connection_are_refused(
    server: Server, api_world: World
) -> None:
    async def two_subscriptions() -> list[dict[str, Any]]:
        async with server.ws(api_world[CMO]) as session:
            first = session.subscribe(GraphQLRequest(SUBSCRIBE))
            pending = asyncio.ensure_future(anext(first))
            while server.services.feed.subscribers == 0:
                await asyncio.sleep(0.01)
            second = session.subscribe(GraphQLRequest(SUBSCRIBE))
            try:
                await anext(second)
            except TransportQueryError as error:
                return list(error.errors or [])
            finally:
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pending
                await first.aclose()
            return []

    errors = run_coroutine(asyncio.wait_for(two_subscriptions(), 60))
    assert codes(errors) == ["LIMIT_EXCEEDED"]


def test_limits_default_to_the_documented_values_until_settings_carry_them() -> None:
    limits = Limits.from_settings(Settings())
    assert limits == Limits()
    assert (limits.max_query_depth, limits.max_aliases, limits.max_page_size) == (10, 15, 500)
    assert limits.request_max_age == 300.0


def test_limits_read_settings_that_carry_them() -> None:
    limits = Limits.from_settings(Settings(max_query_depth=4, max_body_bytes=1024))
    assert (limits.max_query_depth, limits.max_body_bytes) == (4, 1024)


def test_the_cost_limit_and_the_time_budget_are_settings() -> None:
    environ = {
        "CMO_LEDGER_MAX_QUERY_COST": "1000",
        "CMO_LEDGER_ASSUMED_LIST_SIZE": "10",
        "CMO_LEDGER_QUERY_TIME_BUDGET": "2.5",
    }
    limits = Limits.from_settings(Settings.from_env(environ))
    assert (limits.max_query_cost, limits.assumed_list_size) == (1000, 10)
    assert limits.query_time_budget == 2.5
