"""The schema's SDL is committed, and every GraphQL error carries a code (internal ones masked)."""

from __future__ import annotations

from pathlib import Path

import strawberry

from api.errors import INTERNAL_ERROR, INTERNAL_MESSAGE, CodedErrors
from api.limits import Limits
from api.schema import build_schema, data_query_types, sdl
from tests.support.loop import run as run_coroutine

SDL_FILE = Path(__file__).resolve().parents[2] / "api" / "schema.graphql"


def test_the_committed_sdl_matches_the_code() -> None:
    assert SDL_FILE.read_text(encoding="utf-8") == sdl(), (
        "api/schema.graphql is out of date: run `python -m api.schema > api/schema.graphql`"
    )


def test_the_contract_names_are_in_the_schema() -> None:
    text = sdl()
    for name in (
        "ledger: LedgerInfo!",
        "me: AuthenticatedParty!",
        "event(leafIndex: Int!): LogEvent!",
        "inclusionProof(leafIndex: Int!, treeSize: Int = null): InclusionProof!",
        "consistencyProof(fromSize: Int!, toSize: Int = null): ConsistencyProof!",
        "nextVersion(subject: ID!, person: String = null): NextVersion!",
        "submitEvent(envelope: JSON!, signature: String!, openings: [OpeningInput!] = null): "
        "Submitted!",
        "submitEvents(events: [SignedEnvelopeInput!]!): [Submitted!]!",
        "cosignCheckpoint(treeSize: Int!, cosignature: String!): Checkpoint!",
        "events(filter: EventFilter = null): LogEvent!",
    ):
        assert name in text, name


def test_data_queries_are_merged_only_when_installed() -> None:
    installed = (Path(__file__).resolve().parents[2] / "api" / "queries").exists()
    assert (len(data_query_types()) > 0) == installed


def codes_of(query: str, limits: Limits) -> list[str | None]:
    result = run_coroutine(build_schema(limits).execute(query))
    return [(error.extensions or {}).get("code") for error in result.errors or []]


def test_each_limiter_refusal_is_coded_limit_exceeded() -> None:
    limits = Limits(max_query_depth=1, max_aliases=1, max_tokens=20)
    assert codes_of("{ log { events { type } } }", limits) == ["LIMIT_EXCEEDED"]
    assert codes_of("{ a: ledger { origin } b: ledger { origin } }", limits) == ["LIMIT_EXCEEDED"]
    assert codes_of("{ ledger { " + "origin " * 30 + "} }", limits) == ["LIMIT_EXCEEDED"]


def test_a_malformed_document_is_coded_validation_failed() -> None:
    assert codes_of("{ ledger { origin ", Limits()) == ["VALIDATION_FAILED"]
    assert codes_of("{ nothingHere }", Limits()) == ["VALIDATION_FAILED"]


def test_an_internal_error_is_masked_and_coded() -> None:
    @strawberry.type
    class Query:
        @strawberry.field
        def boom(self) -> str:
            raise RuntimeError("password=hunter2")

    schema = strawberry.Schema(query=Query, extensions=[CodedErrors])
    result = run_coroutine(schema.execute("{ boom }"))
    assert result.errors is not None
    (error,) = result.errors
    assert error.message == INTERNAL_MESSAGE
    assert error.extensions == {"code": INTERNAL_ERROR}
    assert "hunter2" not in str(error.formatted)
