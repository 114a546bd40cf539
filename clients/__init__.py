"""The ledger's clients: the Python client, the offline verifier, importers, the CLI.

``from clients import LedgerClient`` is the usual start; errors are drawn in
:mod:`clients.errors`. Names are imported on first use, so that ``clients.offline``
(the offline verifier) stays free of the server's and the database's code.
"""

from __future__ import annotations

import importlib
from typing import Any

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

_HOMES = {
    "ClientError": "clients.errors",
    "NotCheckpointed": "clients.errors",
    "ProofFailed": "clients.errors",
    "ServerRefused": "clients.errors",
    "TransportFailure": "clients.errors",
    "VersionConflict": "clients.errors",
    "Draft": "clients.client",
    "InclusionProof": "clients.client",
    "LedgerClient": "clients.client",
    "Submitted": "clients.client",
    "VerifiedCheckpoint": "clients.client",
    "ImportRefused": "clients.importers",
    "PartyAuth": "clients.http_signing",
    "VerificationError": "clients.offline",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'clients' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
