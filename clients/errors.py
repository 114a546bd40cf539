"""What a ledger client raises; every error has a ``code``, a ``field`` and says what to do::

    ClientError         CLIENT_ERROR        base class
     ├── ServerRefused  <the server's code> the server refused the request (GraphQL error)
     │    └── VersionConflict  VERSION_CONFLICT  another writer moved the subject first
     ├── TransportFailure TRANSPORT_FAILURE the server could not be reached, or failed (5xx)
     ├── ProofFailed    PROOF_FAILED        a checkpoint or proof from the server did not verify
     └── NotCheckpointed NOT_CHECKPOINTED   no signed checkpoint covers the leaf yet

A ``ServerRefused`` carries the server's ``extensions.code`` and ``extensions.field``
(``VALIDATION_FAILED``, ``FORBIDDEN``, ``UNAUTHENTICATED``, ...); nothing was stored.
"""

from __future__ import annotations

__all__ = [
    "ClientError",
    "NotCheckpointed",
    "ProofFailed",
    "ServerRefused",
    "TransportFailure",
    "VersionConflict",
]


class ClientError(Exception):
    """Base class: a request that did not give a trustworthy answer."""

    code = "CLIENT_ERROR"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ServerRefused(ClientError):
    """The server answered with a GraphQL error; ``code`` and ``field`` are the server's."""

    def __init__(self, code: str, field: str | None, message: str) -> None:
        super().__init__(message, field=field)
        self.code = code

    @classmethod
    def of(cls, code: str, field: str | None, message: str) -> ServerRefused:
        """The refusal for ``code``: a :class:`VersionConflict` for ``VERSION_CONFLICT``."""
        if code == VersionConflict.code:
            return VersionConflict(code, field, message)
        return cls(code, field, message)


class VersionConflict(ServerRefused):
    """The subject moved on since its version was read: re-read it and sign again."""

    code = "VERSION_CONFLICT"


class TransportFailure(ClientError):
    """No usable answer: the server is unreachable, timed out or failed; retry later."""

    code = "TRANSPORT_FAILURE"


class ProofFailed(ClientError):
    """A checkpoint signature or a Merkle proof did not verify: do not trust this server's
    answer; keep it as evidence and report it to the ledger's operator."""

    code = "PROOF_FAILED"


class NotCheckpointed(ClientError):
    """No signed checkpoint covers the leaf yet: retry in a few seconds."""

    code = "NOT_CHECKPOINTED"
