"""The GraphQL schema: the log's fields merged with the authorised data queries.

``Query`` merges :class:`~api.log_fields.LogQuery` with ``api.queries.QUERY_TYPES`` and
``Subscription`` merges :class:`~api.subscriptions.LogSubscription` with
``api.queries.SUBSCRIPTION_TYPES``, when that module exists (tuples of strawberry types).
The SDL is committed as ``api/schema.graphql``; regenerate it with
``python -m api.schema > api/schema.graphql``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLError
from graphql.validation import ASTValidationRule
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    SchemaExtension,
    ValidationCache,
    max_aliases,
    query_depth_limiter,
)
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext
from strawberry.utils.logging import StrawberryLogger

from api.cost import CostModel, query_cost_rule
from api.errors import CodedErrors, is_masked
from api.limits import Limits
from api.log_fields import LogQuery
from api.mutations import LogMutation
from api.parsing import SharedParse
from api.read_log import ReadLogging
from api.subscriptions import LogSubscription
from api.validation import NoNulInText, limiting

__all__ = ["LedgerSchema", "Mutation", "Query", "Subscription", "build_schema", "schema", "sdl"]


def _extra_types(name: str) -> tuple[type, ...]:
    try:
        module = importlib.import_module("api.queries")
    except ModuleNotFoundError as error:
        if error.name == "api.queries":
            return ()
        raise
    return tuple(getattr(module, name, ()))


def data_query_types() -> tuple[type, ...]:
    """``api.queries.QUERY_TYPES`` when the data queries are installed, else ``()``."""
    return _extra_types("QUERY_TYPES")


def data_subscription_types() -> tuple[type, ...]:
    """``api.queries.SUBSCRIPTION_TYPES`` when present, else ``()``."""
    return _extra_types("SUBSCRIPTION_TYPES")


Query = merge_types("Query", (LogQuery, *data_query_types()))
Mutation = merge_types("Mutation", (LogMutation,))
Subscription = merge_types("Subscription", (LogSubscription, *data_subscription_types()))


class LedgerSchema(strawberry.Schema):
    """Logs only masked errors (internal faults, database trouble): refusals are answers,
    not faults."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            if is_masked(error):
                StrawberryLogger.error(error, execution_context)


def build_schema(limits: Limits | None = None) -> LedgerSchema:
    """The schema with the protective extensions configured from ``limits``."""
    chosen = limits or Limits()
    # The limiters' rule classes are built once per schema: built per request (as the
    # limiter extensions do) they would defeat the validation cache.
    rules: list[type[ASTValidationRule]] = [
        limiting(query_depth_limiter.create_validator(chosen.max_query_depth, None, None)),
        limiting(max_aliases.create_validator(chosen.max_aliases)),
        query_cost_rule(
            CostModel(chosen.assumed_list_size, chosen.max_page_size), chosen.max_query_cost
        ),
        NoNulInText,
    ]
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        lambda: CodedErrors(max_tokens=chosen.max_tokens),
        lambda: MaxTokensLimiter(max_token_count=chosen.max_tokens),
        SharedParse,  # not strawberry's ParserCache: see api.parsing
        lambda: AddValidationRules(rules),
        lambda: ValidationCache(maxsize=256),
        ReadLogging,
    ]
    return LedgerSchema(
        query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions
    )


schema = build_schema()


def sdl(built: Any = None) -> str:
    """The schema's SDL, as committed in ``api/schema.graphql``."""
    return (built or schema).as_str().rstrip("\n") + "\n"


if __name__ == "__main__":
    print(sdl(), end="")
