"""Requests the endpoint cannot run are refused with a code and the field to mend, and a
refusal never sends back the whole value it refused."""

from __future__ import annotations

from typing import Any

import pytest

from api.errors import MAX_MESSAGE
from tests.support.server import Server, codes
from tests.support.world import World

pytestmark = pytest.mark.xdist_group("api_refused")

CMO = "contoso-cmo"
TWO_OPERATIONS = "query A { me { id } } query B { ledger { origin } }"


def post(server: Server, world: World | None, body: dict[str, Any]) -> tuple[int, Any]:
    actor = None if world is None else world[CMO]
    with server.http(actor) as client:
        response = client.post("/graphql", json=body)
    return response.status_code, response.json()


def test_a_subscription_over_http_is_refused_with_a_code(server: Server, api_world: World) -> None:
    query = "subscription { events { position } }"
    status, answer = post(server, api_world, {"query": query})
    assert status == 400
    assert codes(answer["errors"]) == ["VALIDATION_FAILED"]
    assert answer["errors"][0]["extensions"]["field"] == "query"
    assert "websocket" in answer["errors"][0]["message"]


def test_several_operations_without_an_operation_name_are_refused(
    server: Server, api_world: World
) -> None:
    status, answer = post(server, api_world, {"query": TWO_OPERATIONS})
    assert status == 400
    assert codes(answer["errors"]) == ["VALIDATION_FAILED"]
    assert answer["errors"][0]["extensions"]["field"] == "operationName"
    assert "2 operations" in answer["errors"][0]["message"]


def test_the_named_operation_of_several_runs(server: Server, api_world: World) -> None:
    body = {"query": TWO_OPERATIONS, "operationName": "B"}
    status, answer = post(server, api_world, body)
    assert status == 200, answer
    assert answer["data"] == {"ledger": {"origin": server.origin}}


def test_a_refusal_does_not_echo_a_long_argument(server: Server, api_world: World) -> None:
    huge = "NWB" + "9" * 1_000_000
    query = "query($b: String!) { batch(id: $b) { id } }"
    status, answer = post(server, api_world, {"query": query, "variables": {"b": huge}})
    assert status == 200
    errors = answer["errors"]
    assert errors, answer
    for error in errors:
        assert len(error["message"]) <= MAX_MESSAGE, len(error["message"])
        assert huge not in error["message"]


def test_an_unsigned_caller_may_read_the_schema(server: Server) -> None:
    status, answer = post(server, None, {"query": "{ __schema { queryType { name } } }"})
    assert status == 200, answer
    assert answer["data"] == {"__schema": {"queryType": {"name": "Query"}}}


def test_an_unsigned_caller_reads_nothing_but_the_ledger(server: Server) -> None:
    status, answer = post(server, None, {"query": "{ agreements { id } }"})
    assert status == 200
    assert codes(answer["errors"]) == ["UNAUTHENTICATED"], answer
    assert answer.get("data") is None
