"""The console's sign-in message: what ``cmo-ledger login`` signs with the party key.

The server issues a random challenge over a signed request; the party's key signs
``SIGN_IN_DOMAIN + challenge`` (Ed25519), so that the signature can serve nothing else (not
an envelope, not a request, not a checkpoint). The sign-in link carries both, base64url
without padding, as the query parameters ``challenge`` and ``signature``.
"""

from __future__ import annotations

import base64
import binascii

__all__ = [
    "CHALLENGE_BYTES",
    "CHALLENGE_PATH",
    "SIGN_IN_DOMAIN",
    "SIGN_IN_PATH",
    "b64url",
    "from_b64url",
    "sign_in_message",
]

SIGN_IN_DOMAIN = b"cmo-ledger console sign-in v1\n"
CHALLENGE_BYTES = 32
CHALLENGE_PATH = "/console/challenge"
"""``POST`` here, signed (RFC 9421), answers a new challenge."""
SIGN_IN_PATH = "/console/sign-in"
"""``GET`` here with ``challenge`` and ``signature`` signs the browser in."""


def sign_in_message(challenge: bytes) -> bytes:
    """The bytes a party key signs to sign a browser in with ``challenge``."""
    return SIGN_IN_DOMAIN + challenge


def b64url(data: bytes) -> str:
    """``data`` as base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    """The bytes of base64url text (padding optional); ``ValueError`` when it is not."""
    if not text or any(c not in _ALPHABET for c in text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")
