"""The ledger's one exception hierarchy.

Every refusal carries a stable ``code`` (what clients branch on) and the ``field``
it concerns (a dotted path into the envelope, or ``None``)::

    LedgerError
     ├── ValidationFailed    VALIDATION_FAILED   malformed envelope, payload or setting
     ├── BadSignature        BAD_SIGNATURE       signature does not verify
     ├── UnknownSigner       UNKNOWN_SIGNER      signer or key id is not on the ledger
     ├── KeyRevoked          KEY_REVOKED         key revoked or expired, or signed after compromise
     ├── VersionConflict     VERSION_CONFLICT    stale ``version`` or ``prev``: re-read and re-sign
     ├── Forbidden           FORBIDDEN           signer lacks the authority for this event
     ├── NotFound            NOT_FOUND           the subject or a referenced record is missing
     ├── LimitExceeded       LIMIT_EXCEEDED      a size or count limit was hit
     ├── Unavailable         UNAVAILABLE         the database could not be reached: retry later
     └── ConfigurationError  CONFIGURATION_ERROR a ``CMO_LEDGER_*`` setting is missing or bad

Nothing is stored when any of them is raised.
"""

from __future__ import annotations

__all__ = [
    "BadSignature",
    "ConfigurationError",
    "Forbidden",
    "KeyRevoked",
    "LedgerError",
    "LimitExceeded",
    "NotFound",
    "Unavailable",
    "UnknownSigner",
    "ValidationFailed",
    "VersionConflict",
]


class LedgerError(Exception):
    """Base class: a refusal with a stable ``code`` and the ``field`` it concerns."""

    code = "LEDGER_ERROR"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def as_dict(self) -> dict[str, str | None]:
        """The error as clients see it."""
        return {"code": self.code, "field": self.field, "message": self.message}


class ValidationFailed(LedgerError):
    code = "VALIDATION_FAILED"


class BadSignature(LedgerError):
    code = "BAD_SIGNATURE"


class UnknownSigner(LedgerError):
    code = "UNKNOWN_SIGNER"


class KeyRevoked(LedgerError):
    code = "KEY_REVOKED"


class VersionConflict(LedgerError):
    code = "VERSION_CONFLICT"


class Forbidden(LedgerError):
    code = "FORBIDDEN"


class NotFound(LedgerError):
    code = "NOT_FOUND"


class LimitExceeded(LedgerError):
    code = "LIMIT_EXCEEDED"


class Unavailable(LedgerError):
    code = "UNAVAILABLE"


class ConfigurationError(LedgerError):
    code = "CONFIGURATION_ERROR"
