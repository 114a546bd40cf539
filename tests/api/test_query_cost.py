"""One signed query cannot stop the server: its cost is bounded before it runs, its time
while it runs, and a client that hangs up stops its own work."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import pytest
import sqlalchemy as sa
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from graphql import parse
from starlette.requests import Request
from starlette.responses import Response

from api.cost import CostModel, document_cost
from api.limits import Limits
from api.schema import schema
from tests.conftest import BACKENDS
from tests.support.data_server import Served, shared_data_server
from tests.support.loop import run as run_coroutine
from tests.support.server import Server, codes, running_server

pytestmark = pytest.mark.xdist_group("data_queries")

SPONSOR = "northwind-bio"
#: The probe's query (depth 10, within the depth limit): its fan-out is exponential.
EXPONENTIAL = (
    "{ agreements { batches { agreement { batches { agreement { batches { agreement "
    "{ batches { agreement { id } } } } } } } } } }"
)
#: The same cycle, nested twice: within the cost limit.
WORST_ALLOWED = "{ agreements { batches { agreement { batches { agreement { id title } } } } } }"
MODEL = CostModel(assumed_list_size=25, max_page_size=500)
LIVENESS_BOUND = 1.0  # seconds /healthz may take while the worst allowed query runs


def cost(query: str, model: CostModel = MODEL) -> int:
    return document_cost(schema._schema, parse(query), model)


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest) -> Served:
    return shared_data_server(request, request.param)


# -- the estimate --------------------------------------------------------------------------


def test_each_nested_list_multiplies_the_cost_by_the_assumed_list_size() -> None:
    assert cost("{ agreements { id } }") == 1 + 25
    assert cost("{ agreements { batches { id } } }") == 1 + 25 + 25 * 25
    assert cost(EXPONENTIAL) > Limits().max_query_cost >= cost(WORST_ALLOWED)


def test_a_page_asked_for_replaces_the_assumed_list_size() -> None:
    assert cost("{ log(first: 3) { events { position } } }") == 1 + 1 + 3
    assert cost("{ auditTrail(first: 2) { edges { cursor } } }") == 1 + 1 + 2
    # Left out, the argument's default counts; as a variable, the largest page.
    assert cost("{ log { events { position } } }") == 1 + 1 + 100
    assert cost("query($n: Int!) { log(first: $n) { events { position } } }") == 1 + 1 + 500


def test_the_latest_batches_asked_for_count_as_their_page() -> None:
    assert cost("{ agreements { batches(latest: 3) { id } } }") == 1 + 25 + 25 * 3
    assert cost("query($n: Int!) { agreements { batches(latest: $n) { id } } }") == (
        1 + 25 + 25 * 500
    )
    # Left out, it is the whole list: counted as the assumed list size.
    assert cost("{ agreements { batches { id } } }") == 1 + 25 + 25 * 25
    nested = "{ agreements { batches(latest: 500) { agreement { batches(latest: 500) { id } } } } }"
    assert cost(nested) > Limits().max_query_cost


def test_fragments_count_as_the_fields_they_spread() -> None:
    inline = "{ agreements { ... on Agreement { batches { id } } } }"
    named = "{ agreements { ...A } } fragment A on Agreement { batches { id } }"
    assert cost(inline) == cost(named) == cost("{ agreements { batches { id } } }")


def test_introspection_costs_nothing() -> None:
    assert cost("{ __schema { types { name fields { name args { name } } } } }") == 0


def test_every_query_the_clients_and_the_console_send_is_within_the_default_cost_limit() -> None:
    from api.console import queries as console
    from clients import client
    from ledger.evidence import export

    documents = [
        value
        for module in (client, export, console)
        for value in vars(module).values()
        if isinstance(value, str) and value.lstrip().startswith(("query", "{", "mutation"))
    ]
    assert documents
    limit = Limits().max_query_cost
    assert max(cost(document) for document in documents) <= limit


# -- served --------------------------------------------------------------------------------


def test_an_exponential_query_is_refused_before_it_runs_naming_its_cost(served: Served) -> None:
    data, errors = served.call(SPONSOR, EXPONENTIAL)
    assert codes(errors) == ["LIMIT_EXCEEDED"], errors
    assert f"{cost(EXPONENTIAL):,}" in errors[0]["message"]
    assert data is None


STALLED_TABLE = "proj_batches"
STALL_SECONDS = 3.0  # over the liveness bound: a stall on the event loop fails the probe


@pytest.fixture()
def stalled_reads(served: Served) -> Iterator[list[float]]:
    """Make the server's first read of the batches view block for ``STALL_SECONDS``, as a
    query over a large ledger would: the stalls made so far."""
    engine = served.server.services.ledger.engine
    stalled: list[float] = []

    def stall(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if STALLED_TABLE in statement and not stalled:
            stalled.append(STALL_SECONDS)
            time.sleep(STALL_SECONDS)

    sa.event.listen(engine, "before_cursor_execute", stall)
    try:
        yield stalled
    finally:
        sa.event.remove(engine, "before_cursor_execute", stall)


def test_healthz_answers_while_the_worst_allowed_query_runs(
    served: Served, stalled_reads: list[float]
) -> None:
    server = served.server
    finished = threading.Event()
    answers: list[Any] = []

    def heavy() -> None:
        try:
            answers.append(served.call(SPONSOR, WORST_ALLOWED))
        finally:
            finished.set()

    worker = threading.Thread(target=heavy)
    probes: list[float] = []
    with httpx2.Client(base_url=server.url, timeout=30) as probe:
        worker.start()
        while not finished.is_set() or not probes:
            started = time.monotonic()
            assert probe.get("/healthz").status_code == 200
            probes.append(time.monotonic() - started)
    worker.join()
    assert stalled_reads, "the query never read the batches view"
    assert answers
    for data, errors in answers:
        assert errors == [], errors
        assert data["agreements"]
    assert max(probes) < LIVENESS_BOUND, probes


# -- while it runs -------------------------------------------------------------------------


@pytest.fixture()
def budget_server(served: Served) -> Iterator[Server]:
    settings = served.server.services.settings
    limits = Limits(query_time_budget=1e-6)
    with running_server(settings, served.data.world.notary.key, limits=limits) as running:
        yield running


def test_an_operation_over_its_time_budget_is_stopped(
    served: Served, budget_server: Server
) -> None:
    actor = served.data.world[SPONSOR]
    data, errors = budget_server.call(actor, "{ agreements { id } }")
    assert codes(errors) == ["LIMIT_EXCEEDED"], errors
    assert "time budget" in errors[0]["message"]
    assert data is None


def test_an_operation_over_a_websocket_keeps_the_same_time_budget(
    served: Served, budget_server: Server
) -> None:
    actor = served.data.world[SPONSOR]

    async def query_over_websocket() -> list[dict[str, Any]]:
        async with budget_server.ws(actor) as session:
            try:
                await session.execute(GraphQLRequest("{ agreements { id } }"))
            except TransportQueryError as error:
                return list(error.errors or [])
        return []

    errors = run_coroutine(asyncio.wait_for(query_over_websocket(), 60))
    assert codes(errors) == ["LIMIT_EXCEEDED"], errors
    assert "time budget" in errors[0]["message"]


def test_a_client_that_hangs_up_stops_its_operation(served: Served) -> None:
    server = served.server
    view = server.app.state.graphql
    running, stopped = threading.Event(), threading.Event()

    async def endless(request: Request) -> Response:
        running.set()
        try:
            await anyio.sleep_forever()
        finally:
            stopped.set()
        raise AssertionError("unreachable")

    original = view.run
    view.run = endless
    try:
        with (
            httpx2.Client(base_url=server.url, timeout=0.5) as client,
            pytest.raises(httpx2.TimeoutException),
        ):
            client.post("/graphql", json={"query": "{ ledger { origin } }"})
        assert running.is_set()
        assert stopped.wait(30), "the operation kept running after its client hung up"
    finally:
        view.run = original
