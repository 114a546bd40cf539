"""cmo-ledger's core: signed envelopes, parties, agreement rules, the command path, the log.

Names are loaded on first use, so light modules (``ledger.log.merkle``, ``ledger.log.notes``)
can be imported by an offline verifier without pulling in the database stack.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Appended",
    "BadSignature",
    "ConfigurationError",
    "Envelope",
    "Forbidden",
    "KeyRevoked",
    "Ledger",
    "LedgerError",
    "LimitExceeded",
    "NotFound",
    "Settings",
    "StoredEvent",
    "Unavailable",
    "UnknownSigner",
    "ValidationFailed",
    "VersionConflict",
    "event_hash",
    "key_id",
    "sign_envelope",
]

_HOMES = {
    "Appended": "ledger.application",
    "Ledger": "ledger.application",
    "Settings": "ledger.config",
    "Envelope": "ledger.log.envelope",
    "StoredEvent": "ledger.log.envelope",
    "event_hash": "ledger.log.envelope",
    "sign_envelope": "ledger.log.envelope",
    "key_id": "ledger.keys",
}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'ledger' has no attribute {name!r}")
    module = importlib.import_module(_HOMES.get(name, "ledger.errors"))
    return getattr(module, name)


def __dir__() -> list[str]:
    return sorted(__all__)
