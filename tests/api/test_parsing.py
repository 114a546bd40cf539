"""A request's document is parsed once: the view's operation checks and the schema share
the parse; a document that does not parse is refused with its code every time."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import strawberry.schema.schema

import api.parsing
from tests.support.server import Server, codes
from tests.support.world import World

CMO = "contoso-cmo"


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """The document texts graphql-core's parser is asked to parse, counted."""
    counted: Counter[str] = Counter()

    def counting(original: Any) -> Any:
        def parse(source: Any, *args: Any, **kwargs: Any) -> Any:
            counted[str(source)] += 1
            return original(source, *args, **kwargs)

        return parse

    monkeypatch.setattr(api.parsing, "parse", counting(api.parsing.parse))
    monkeypatch.setattr(strawberry.schema.schema, "parse", counting(strawberry.schema.schema.parse))
    yield counted


def _post(server: Server, api_world: World, query: str) -> dict[str, Any]:
    with server.http(api_world[CMO]) as client:
        response = client.post(server.graphql_url, json={"query": query})
    answer: dict[str, Any] = response.json()
    return answer


def test_a_document_asked_again_is_parsed_once(
    server: Server, api_world: World, parses: Counter[str]
) -> None:
    query = f"# {uuid.uuid4()}\n{{ me {{ id }} }}"  # a text no request sent before
    for _ in range(3):
        assert _post(server, api_world, query) == {"data": {"me": {"id": CMO}}}
    assert parses[query] == 1


def test_a_document_that_does_not_parse_is_refused_with_its_code_each_time(
    server: Server, api_world: World, parses: Counter[str]
) -> None:
    query = f"# {uuid.uuid4()}\n{{ me {{ id }}"
    for _ in range(2):
        answer = _post(server, api_world, query)
        assert answer.get("data") is None
        assert codes(answer["errors"]) == ["VALIDATION_FAILED"]
        assert "Syntax Error" in answer["errors"][0]["message"]
    assert parses[query] >= 2  # never kept: parsed again each time it is asked
