"""Validation rules of the ledger's own, run with graphql-core's on every document."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError, StringValueNode
from graphql.validation import ASTValidationRule

__all__ = ["NoNulInText"]


class NoNulInText(ASTValidationRule):
    """Refuses string literals holding a NUL character: PostgreSQL cannot store one and no
    field of the ledger needs one (variables are checked as the JSON body is read)."""

    def enter_string_value(self, node: StringValueNode, *_args: Any) -> None:
        if "\x00" in node.value:
            self.report_error(GraphQLError("A string argument holds a NUL character.", node))
