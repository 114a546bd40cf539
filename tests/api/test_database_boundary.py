"""What the database cannot take or cannot answer reaches the client as a coded refusal
with a fixed message, never as an internal error or the driver's own text."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from eventsourcing import persistence

from ledger.errors import Unavailable
from tests.support.server import Server, codes
from tests.support.world import World

pytestmark = pytest.mark.xdist_group("api_database_boundary")

SPONSOR = "northwind-bio"
DELIVERIES = "query($b: String) { deliveries(batch: $b) { batch } }"


def post(server: Server, world: World, body: bytes) -> tuple[int, dict[str, Any]]:
    with server.http(world[SPONSOR]) as client:
        response = client.post(
            "/graphql", content=body, headers={"content-type": "application/json"}
        )
    return response.status_code, response.json()


def test_a_nul_character_in_a_variable_is_refused_naming_where_it_is(
    server: Server, api_world: World
) -> None:
    body = json.dumps({"query": DELIVERIES, "variables": {"b": "NWB101\u0000"}}).encode()
    status, document = post(server, api_world, body)
    assert status == 400
    assert codes(document["errors"]) == ["VALIDATION_FAILED"]
    assert "variables.b" in document["errors"][0]["message"]


def test_a_nul_character_in_a_member_name_is_refused_naming_where_it_is(
    server: Server, api_world: World
) -> None:
    variables = {"b": "NWB101-24-001", "extra": {"a\u0000b": 1}}
    status, document = post(
        server, api_world, json.dumps({"query": DELIVERIES, "variables": variables}).encode()
    )
    assert status == 400
    assert codes(document["errors"]) == ["VALIDATION_FAILED"]
    assert "variables.extra.a" in document["errors"][0]["message"]


@pytest.mark.parametrize(
    "text", ["NWB101\udb01", "\udc00", "NWB\ud83e"], ids=["high", "low", "high-at-end"]
)
def test_a_lone_surrogate_in_a_variable_is_refused_naming_where_it_is(
    server: Server, api_world: World, text: str
) -> None:
    # json.dumps escapes the surrogate: the body is valid UTF-8, the decoded text is not
    # Unicode, and no database driver can encode it.
    body = json.dumps({"query": DELIVERIES, "variables": {"b": text}}).encode()
    status, document = post(server, api_world, body)
    assert status == 400
    assert codes(document["errors"]) == ["VALIDATION_FAILED"]
    assert "variables.b holds a lone surrogate" in document["errors"][0]["message"]


def test_a_surrogate_pair_in_a_variable_is_one_character_and_answered(
    server: Server, api_world: World
) -> None:
    body = json.dumps({"query": DELIVERIES, "variables": {"b": "NWB\U0001f9ea"}}).encode()
    status, document = post(server, api_world, body)
    assert status == 200
    assert "surrogate" not in json.dumps(document)


def test_a_nul_character_in_a_string_literal_is_refused(server: Server, api_world: World) -> None:
    query = '{ deliveries(batch: "NWB101\\u0000") { batch } }'
    _, document = post(server, api_world, json.dumps({"query": query}).encode())
    assert codes(document["errors"]) == ["VALIDATION_FAILED"]
    assert "NUL" in document["errors"][0]["message"]


def test_an_escaped_backslash_before_u0000_is_plain_text(server: Server, api_world: World) -> None:
    body = json.dumps({"query": DELIVERIES, "variables": {"b": "NWB101\\u0000"}}).encode()
    _, document = post(server, api_world, body)
    # Read as the batch name it spells, which is no batch the sponsor may read.
    assert codes(document["errors"]) == ["FORBIDDEN"], document
    assert document["errors"][0]["extensions"]["field"] == "batch"


def fail_reads(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    """The server's ``deliveries`` resolver raises ``error`` (the server runs in-process)."""

    async def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr("api.queries.fields.list_deliveries", refuse)


SQL = "SELECT secret_column FROM proj_deliveries WHERE batch = %s"
LOST = sa.exc.OperationalError(SQL, {}, OSError("server closed the connection"))
UNSTORABLE = sa.exc.DataError(SQL, {}, ValueError("text fields cannot contain NUL"))
STORE_LOST = persistence.OperationalError(f"connection lost [SQL: {SQL}]")
STORE_UNSTORABLE = persistence.DataError(f"NUL [SQL: {SQL}]")
WRITE_LOST = Unavailable(f"the database is unavailable: [SQL: {SQL}]")


@pytest.mark.parametrize(
    ("error", "code", "said"),
    [
        (LOST, "UNAVAILABLE", "retry"),
        (STORE_LOST, "UNAVAILABLE", "retry"),
        (WRITE_LOST, "UNAVAILABLE", "retry"),
        (UNSTORABLE, "VALIDATION_FAILED", "cannot hold"),
        (STORE_UNSTORABLE, "VALIDATION_FAILED", "cannot hold"),
    ],
    ids=[
        "connection lost",
        "event store lost",
        "ledger unavailable",
        "unstorable value",
        "event store unstorable",
    ],
)
def test_a_driver_error_while_reading_is_coded_and_hides_the_sql(
    server: Server,
    api_world: World,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    code: str,
    said: str,
) -> None:
    body = json.dumps({"query": DELIVERIES, "variables": {"b": "NWB101-24-001"}}).encode()
    fail_reads(monkeypatch, error)
    status, document = post(server, api_world, body)
    monkeypatch.undo()
    text = json.dumps(document)
    assert codes(document["errors"]) == [code], text
    assert said in document["errors"][0]["message"]
    assert "SELECT" not in text and "proj_" not in text
    assert status == 200


def test_a_database_lost_while_checking_the_signature_answers_503_unavailable(
    server: Server, api_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def lost(*_args: Any, **_kwargs: Any) -> Any:
        raise STORE_LOST

    monkeypatch.setattr(server.services.auth, "authenticate_http", lost)
    body = json.dumps({"query": DELIVERIES, "variables": {"b": "NWB101-24-001"}}).encode()
    status, document = post(server, api_world, body)
    monkeypatch.undo()
    assert status == 503
    assert codes(document["errors"]) == ["UNAVAILABLE"]
    assert "SELECT" not in json.dumps(document)
