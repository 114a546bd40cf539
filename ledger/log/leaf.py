"""The bytes of a leaf and of an event hash: one definition for the mapper that stores them,
the envelope that hashes them and ``verify`` that recomputes them.

A signed event's Merkle leaf is ``RFC8785({"envelope", "recorded_at", "signature",
"written_by"})``; the events table stores exactly those bytes (:mod:`ledger.log.mapper`).
``written_by`` (``{"schema_version": N, "software_version": "X.Y.Z"}``, see
:mod:`ledger.version`) is absent from the leaves of events recorded before releases kept
it: those leaves are byte for byte what they were. It sorts last, so every leaf still
starts with the envelope and ends with ``recorded_at``, ``signature`` and, when kept,
``written_by``. Its event hash, the
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
    "written_by_part",
]

LEAF_HEAD = b'{"envelope":'
"""How every leaf starts."""
LEAF_PREFIX = b"\x00"
"""RFC 6962: a leaf's hash is ``SHA-256(0x00 || leaf bytes)``."""


def is_leaf(state: bytes) -> bool:
    """True when ``state`` is in leaf form (it may still be tampered with)."""
    return state[:12] == LEAF_HEAD


def leaf_bytes(
    envelope: Mapping[str, Any],
    recorded_at: str,
    signature: str,
    written_by: Mapping[str, Any] | None = None,
) -> bytes:
    """The leaf of a signed event (``written_by`` left out when ``None``)."""
    document: dict[str, Any] = {
        "envelope": dict(envelope),
        "recorded_at": recorded_at,
        "signature": signature,
    }
    if written_by is not None:
        document["written_by"] = dict(written_by)
    return canonical_bytes(document)


def written_by_part(written_by: Mapping[str, Any] | None) -> bytes:
    """How ``written_by`` appears at the end of a leaf: ``,"written_by":{...}`` or nothing."""
    if written_by is None:
        return b""
    return b',"written_by":' + canonical_bytes(dict(written_by))


def event_hash_bytes(envelope: Mapping[str, Any], signature: str) -> bytes:
    """What an event hash is the SHA-256 of."""
    return canonical_bytes({"envelope": dict(envelope), "signature": signature})


def event_hash(envelope: Mapping[str, Any], signature: str) -> str:
    """``SHA-256(RFC8785({"envelope", "signature"}))`` as hex: the next event's ``prev``."""
    return hashlib.sha256(event_hash_bytes(envelope, signature)).hexdigest()


def leaf_from_parts(
    envelope: bytes, recorded_at: bytes, signature: bytes, written_by: bytes = b""
) -> bytes:
    """The leaf from the envelope's canonical bytes, the JSON strings of ``recorded_at`` and
    ``signature``, and :func:`written_by_part`."""
    return b"".join(
        (
            LEAF_HEAD,
            envelope,
            b',"recorded_at":',
            recorded_at,
            b',"signature":',
            signature,
            written_by,
            b"}",
        )
    )


def event_hash_from_parts(envelope: bytes, signature: bytes) -> bytes:
    """What the event hash is taken of, from the same parts as :func:`leaf_from_parts`."""
    return b"".join((LEAF_HEAD, envelope, b',"signature":', signature, b"}"))


def plain_tail(recorded_at: str, signature: str, written_by: bytes = b"") -> bytes:
    """How a leaf ends when neither text needs escaping (the ledger's own times and base64);
    ``written_by`` is :func:`written_by_part`."""
    return b"".join(
        (
            b',"recorded_at":"',
            recorded_at.encode(),
            b'","signature":"',
            signature.encode(),
            b'"',
            written_by,
            b"}",
        )
    )
