"""Validation rules of the ledger's own, run with graphql-core's on every document."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError, Lexer, Source, StringValueNode, TokenKind
from graphql.validation import ASTValidationRule, ValidationContext

__all__ = ["LimitExceededError", "NoNulInText", "limiting", "over_token_limit"]


class LimitExceededError(GraphQLError):
    """A document over one of the API's limits (depth, aliases): answered ``LIMIT_EXCEEDED``."""


def limiting(rule: type[ASTValidationRule]) -> type[ASTValidationRule]:
    """``rule`` reporting its errors as :class:`LimitExceededError`, so they are told apart by
    type (strawberry's limiters report plain ``GraphQLError`` s to their context)."""

    class Limiting(rule):  # type: ignore[valid-type,misc]
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(_LimitReporting(context))

    Limiting.__name__ = f"Limiting{rule.__name__}"
    return Limiting


class _LimitReporting:
    """A validation context whose reported errors become :class:`LimitExceededError`."""

    def __init__(self, context: ValidationContext) -> None:
        self._context = context

    def report_error(self, error: GraphQLError) -> None:
        self._context.report_error(LimitExceededError(error.message, error.nodes))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def over_token_limit(document: str, limit: int) -> bool:
    """True when ``document`` has more than ``limit`` lexical tokens, counted as the parser
    counts them for its ``max_tokens`` option (the parser's refusal is a syntax error)."""
    lexer = Lexer(Source(document))
    count = 0
    try:
        while lexer.advance().kind != TokenKind.EOF:
            count += 1
            if count > limit:
                return True
    except GraphQLSyntaxError:
        return False
    return False


class NoNulInText(ASTValidationRule):
    """Refuses string literals holding a NUL character: PostgreSQL cannot store one and no
    field of the ledger needs one (variables are checked as the JSON body is read)."""

    def enter_string_value(self, node: StringValueNode, *_args: Any) -> None:
        if "\x00" in node.value:
            self.report_error(GraphQLError("A string argument holds a NUL character.", node))
