"""Commitments: a hash that binds a party to a value it does not disclose yet.

A commitment is hex ``SHA-256(salt || value)``; whoever later receives the salt and the
value checks them against it. Light (standard library only), for clients and verifiers.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["commitment_of", "opens"]


def commitment_of(salt: bytes, value: bytes) -> str:
    """The commitment to ``value``: hex ``SHA-256(salt || value)``."""
    return hashlib.sha256(salt + value).hexdigest()


def opens(commitment: str, salt: bytes, value: bytes) -> bool:
    """True when ``salt`` and ``value`` are the opening of ``commitment``."""
    return hmac.compare_digest(commitment_of(salt, value), commitment)
