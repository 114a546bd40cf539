"""The ledger's clients: the Python client, the offline verifier, importers, the CLI.

``from clients import LedgerClient`` is the usual start; errors are drawn in
:mod:`clients.errors`. Names are imported on first use, so that ``clients.offline``
(the offline verifier) stays free of the server's and the database's code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clients.client import Draft, InclusionProof, LedgerClient, Submitted, VerifiedCheckpoint
    from clients.errors import (
        ClientError,
        NotCheckpointed,
        ProofFailed,
        ServerRefused,
        TransportFailure,
        VersionConflict,
    )
    from clients.http_signing import PartyAuth
    from clients.importers import ImportRefused
    from clients.offline import VerificationError

__all__ = [
    "ClientError",
    "Draft",
    "ImportRefused",
    "InclusionProof",
    "LedgerClient",
    "NotCheckpointed",
    "PartyAuth",
    "ProofFailed",
    "ServerRefused",
    "Submitted",
    "TransportFailure",
    "VerificationError",
    "VerifiedCheckpoint",
    "VersionConflict",
]

#: Where the public names live, lightest first: a name is looked up in each in turn.
_MODULES = (
    "clients.errors",
    "clients.offline",
    "clients.http_signing",
    "clients.importers",
    "clients.client",
)


def __getattr__(name: str) -> Any:
    if name in __all__:
        for module in _MODULES:
            found = getattr(importlib.import_module(module), name, None)
            if found is not None:
                return found
    raise AttributeError(f"module 'clients' has no attribute {name!r}")
