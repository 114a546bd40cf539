"""The bytes of a leaf and of an event hash: one definition for the mapper that stores them,
the envelope that hashes them and ``verify`` that recomputes them.

A signed event's Merkle leaf is ``RFC8785({"envelope", "recorded_at", "signature"})``; the
events table stores exactly those bytes (:mod:`ledger.log.mapper`). Its event hash, the
next envelope's ``prev``, is ``SHA-256(RFC8785({"envelope", "signature"}))``. RFC 8785 sorts
members, so both start with ``{"envelope":`` and the envelope's own canonical bytes; the
``*_from_parts`` forms build them from those bytes without canonicalising again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ledger.canonical import canonical_bytes

__all__ = [
    "LEAF_HEAD",
    "LEAF_PREFIX",
    "event_hash",
    "event_hash_bytes",
    "event_hash_from_parts",
    "is_leaf",
    "leaf_bytes",
    "leaf_from_parts",
    "plain_tail",
]

LEAF_HEAD = b'{"envelope":'
"""How every leaf starts."""
LEAF_PREFIX = b"\x00"
"""RFC 6962: a leaf's hash is ``SHA-256(0x00 || leaf bytes)``."""


def is_leaf(state: bytes) -> bool:
    """True when ``state`` is in leaf form (it may still be tampered with)."""
    return state[:12] == LEAF_HEAD


def leaf_bytes(envelope: Mapping[str, Any], recorded_at: str, signature: str) -> bytes:
    """The leaf of a signed event."""
    document = {"envelope": dict(envelope), "recorded_at": recorded_at, "signature": signature}
    return canonical_bytes(document)


def event_hash_bytes(envelope: Mapping[str, Any], signature: str) -> bytes:
    """What an event hash is the SHA-256 of."""
    return canonical_bytes({"envelope": dict(envelope), "signature": signature})


def event_hash(envelope: Mapping[str, Any], signature: str) -> str:
    """``SHA-256(RFC8785({"envelope", "signature"}))`` as hex: the next event's ``prev``."""
    return hashlib.sha256(event_hash_bytes(envelope, signature)).hexdigest()


def leaf_from_parts(envelope: bytes, recorded_at: bytes, signature: bytes) -> bytes:
    """The leaf from the envelope's canonical bytes and the JSON strings of the others."""
    return b"".join(
        (LEAF_HEAD, envelope, b',"recorded_at":', recorded_at, b',"signature":', signature, b"}")
    )


def event_hash_from_parts(envelope: bytes, signature: bytes) -> bytes:
    """What the event hash is taken of, from the same parts as :func:`leaf_from_parts`."""
    return b"".join((LEAF_HEAD, envelope, b',"signature":', signature, b"}"))


def plain_tail(recorded_at: str, signature: str) -> bytes:
    """How a leaf ends when neither text needs escaping (the ledger's own times and base64)."""
    return b"".join(
        (b',"recorded_at":"', recorded_at.encode(), b'","signature":"', signature.encode(), b'"}')
    )
