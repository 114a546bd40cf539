"""Errors as clients see them: every GraphQL error carries ``extensions.code``.

Codes come from the ledger's refusals (``VALIDATION_FAILED``, ``BAD_SIGNATURE``,
``VERSION_CONFLICT``, ...) plus the API's own ``UNAUTHENTICATED`` and ``LIMIT_EXCEEDED``.
Ledger refusals also carry ``extensions.field``. A malformed or invalid GraphQL document
answers ``VALIDATION_FAILED``; the depth, alias and token limiters and the parser's nesting
limit answer ``LIMIT_EXCEEDED``: the depth and alias rules report a
:class:`~api.validation.LimitExceededError`, a document refused by the parser is over the
token limit when :func:`~api.validation.over_token_limit` says so, and only the parser's own
nesting limit (graphql-core's, which has no type of its own) is recognised by its message.

Driver errors are translated here, at the boundary, with fixed messages (a driver's own
text names tables and SQL): a lost or refused connection answers ``UNAVAILABLE`` (retry),
a value the database cannot hold (PostgreSQL refuses NUL characters in text) answers
``VALIDATION_FAILED``. Any other error raised while resolving is masked as
``INTERNAL_ERROR`` with a fixed message, and logged in full.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from eventsourcing import persistence
from graphql import GraphQLError, GraphQLSyntaxError
from sqlalchemy import exc as driver
from strawberry.extensions import MaskErrors

from api.validation import LimitExceededError, over_token_limit
from ledger.errors import LedgerError, Unavailable

__all__ = [
    "INTERNAL_ERROR",
    "INTERNAL_MESSAGE",
    "LIMIT_EXCEEDED",
    "UNAUTHENTICATED",
    "UNAVAILABLE",
    "UNAVAILABLE_MESSAGE",
    "VALIDATION_FAILED",
    "ApiError",
    "CodedErrors",
    "Unauthenticated",
    "classify",
    "cut_echoes",
    "error_document",
    "is_masked",
]

UNAUTHENTICATED = "UNAUTHENTICATED"
LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
VALIDATION_FAILED = "VALIDATION_FAILED"
INTERNAL_ERROR = "INTERNAL_ERROR"
INTERNAL_MESSAGE = "Internal error: the server logged it; retry, or report the time."
UNAVAILABLE = Unavailable.code
UNAVAILABLE_MESSAGE = "The database is unavailable: retry in a moment."
UNSTORABLE_MESSAGE = (
    "An argument holds a value the database cannot hold (a NUL character, or a number out "
    "of range): remove it."
)
#: Errors of the driver (or of the event store, which wraps the driver's) that mean the
#: database could not be reached or lost the connection.
DATABASE_DOWN = (
    driver.OperationalError,
    driver.InterfaceError,
    persistence.OperationalError,
    persistence.InterfaceError,
)
#: ... and that mean a value reached the database that it cannot hold.
UNSTORABLE = (driver.DataError, persistence.DataError)
#: Errors answered with a code and a fixed message in place of their own text.
_TRANSLATED: tuple[tuple[tuple[type[Exception], ...], str, str], ...] = (
    ((Unavailable, *DATABASE_DOWN), UNAVAILABLE, UNAVAILABLE_MESSAGE),
    (UNSTORABLE, VALIDATION_FAILED, UNSTORABLE_MESSAGE),
)

MAX_MESSAGE = 1000
"""Characters of an error message before the values it quotes are cut."""
MAX_ECHO = 64
"""Characters of a quoted value kept in a cut message."""
_QUOTED = re.compile(r"""(['"])(.{""" + str(MAX_ECHO + 1) + r""",}?)\1""", re.DOTALL)

log = logging.getLogger("api.errors")

# graphql-core's parser refuses a document nested past its recursion limit with a plain
# syntax error: its message is all that tells it apart.
_NESTED_TOO_DEEPLY = re.compile(r"Document is nested too deeply\. Parsing aborted\.$")


class ApiError(Exception):
    """A refusal by the API layer with a stable ``code``."""

    code = "API_ERROR"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class Unauthenticated(ApiError):
    """The request is unsigned (where a signature is needed) or its signature is refused."""

    code = UNAUTHENTICATED


def classify(error: GraphQLError) -> tuple[str, str | None]:
    """``(code, field)`` for a GraphQL error; ``INTERNAL_ERROR`` means mask it."""
    original = error.original_error
    if isinstance(original, (LedgerError, ApiError)):
        return original.code, original.field
    translated = _translation(original)
    if translated is not None:
        return translated[0], None
    if isinstance(original, GraphQLError):
        return classify(original)
    if isinstance(error, LimitExceededError) or _NESTED_TOO_DEEPLY.search(error.message):
        return LIMIT_EXCEEDED, None
    if error.path is None:
        # Before execution: parsing, validation or variable coercion of the document.
        return VALIDATION_FAILED, None
    return INTERNAL_ERROR, None


def cut_echoes(message: str) -> str:
    """``message`` with each quoted value over ``MAX_ECHO`` characters cut, when the
    message is over ``MAX_MESSAGE``: a refusal names the value, it does not send it back."""
    if len(message) <= MAX_MESSAGE:
        return message
    cut = _QUOTED.sub(_shortened, message)
    if len(cut) > MAX_MESSAGE:
        cut = f"{cut[: MAX_MESSAGE - 30]}... ({len(message):,} characters)"
    return cut


def _shortened(match: re.Match[str]) -> str:
    quote, value = match.group(1), match.group(2)
    return f"{quote}{value[:MAX_ECHO]}...{quote} ({len(value):,} characters)"


def error_document(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """A GraphQL response body holding one error, for refusals made outside GraphQL."""
    extensions: dict[str, Any] = {"code": code}
    if field is not None:
        extensions["field"] = field
    return {"data": None, "errors": [{"message": cut_echoes(message), "extensions": extensions}]}


def _translation(original: BaseException | None) -> tuple[str, str] | None:
    """``(code, fixed message)`` for a database error, or None."""
    for kinds, code, message in _TRANSLATED:
        if isinstance(original, kinds):
            return code, message
    return None


def _masked_message(error: GraphQLError) -> str | None:
    """The fixed message that replaces ``error``'s own, or None to keep it."""
    original = error.original_error
    if isinstance(original, GraphQLError):
        return _masked_message(original)
    translated = _translation(original)
    if translated is not None:
        return translated[1]
    if classify(error)[0] == INTERNAL_ERROR:
        return INTERNAL_MESSAGE
    return None


def is_masked(error: GraphQLError) -> bool:
    """True when the client gets a fixed message in place of ``error``'s own (and the
    server logs it)."""
    return _masked_message(error) is not None


class CodedErrors(MaskErrors):
    """Adds ``extensions.code`` (and ``field``) to every error; masks internal ones."""

    def __init__(
        self,
        should_mask_error: Callable[[GraphQLError], bool] = is_masked,
        error_message: str = INTERNAL_MESSAGE,
        *,
        max_tokens: int | None = None,
    ) -> None:
        super().__init__(should_mask_error=should_mask_error, error_message=error_message)
        self.max_tokens = max_tokens

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        code, field = classify(error)
        masked = super().anonymise_error(error)
        masked.message = _masked_message(error) or self.error_message
        masked.extensions = {"code": code} if field is None else {"code": code, "field": field}
        return masked

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        for error in processed:
            error.message = cut_echoes(error.message)
            if self._over_tokens(error):
                error.extensions = {**(error.extensions or {}), "code": LIMIT_EXCEEDED}
            if not (error.extensions and "code" in error.extensions):
                code, field = classify(error)
                extensions: dict[str, Any] = {**(error.extensions or {}), "code": code}
                if field is not None:
                    extensions["field"] = field
                error.extensions = extensions
            self._count(str(error.extensions["code"]))
        return processed

    def _over_tokens(self, error: GraphQLError) -> bool:
        if self.max_tokens is None or not isinstance(error, GraphQLSyntaxError):
            return False
        document = getattr(self.execution_context, "query", None)
        return isinstance(document, str) and over_token_limit(document, self.max_tokens)

    def _count(self, code: str) -> None:
        services = getattr(getattr(self.execution_context, "context", None), "services", None)
        if services is not None:
            services.metrics.error(code)
