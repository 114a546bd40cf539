"""One parse of each GraphQL document text, shared by the request's checks and the schema.

A request's document is parsed where the view checks its operations (one operation
without ``operationName``, no subscription over HTTP) and again where the schema runs
it: the same text, the same result. :func:`parsed` keeps the last
:data:`DOCUMENTS_KEPT` documents by text; :class:`SharedParse` hands the schema the one
already parsed. Only documents that parse are kept: a syntax error is raised again by
the schema's own parse, inside the operation, where :class:`api.errors.CodedErrors`
gives it its code (strawberry's ``ParserCache`` would raise it outside).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from functools import lru_cache

from graphql import DocumentNode, GraphQLError, parse
from strawberry.extensions import SchemaExtension

__all__ = ["DOCUMENTS_KEPT", "SharedParse", "parsed"]

DOCUMENTS_KEPT = 256
"""Parsed documents kept, the least recently used out first."""


@lru_cache(maxsize=DOCUMENTS_KEPT)
def parsed(query: str, max_tokens: int) -> DocumentNode:
    """``query`` parsed as the schema parses it (locations kept, at most ``max_tokens``
    tokens); the same object for the same text while it is kept. Raises ``GraphQLError``
    (nothing kept) when it does not parse."""
    return parse(query, max_tokens=max_tokens)


class SharedParse(SchemaExtension):
    """Gives the schema the document :func:`parsed` already holds for the request's text."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        options = context.parse_options
        max_tokens = options.get("max_tokens")
        if (
            context.graphql_document is None
            and isinstance(context.query, str)
            and isinstance(max_tokens, int)
            and options.keys() == {"max_tokens"}
        ):
            # One that does not parse is parsed again by the schema, which gives its code.
            with suppress(GraphQLError):
                context.graphql_document = parsed(context.query, max_tokens)
        yield
