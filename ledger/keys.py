"""Ed25519 public keys: their text form and their key ids.

A public key is written ``ed25519:<base64 of the 32 raw bytes>``; that string is what
``cmo-ledger keygen`` prints and ``party admit`` accepts.

A key id is derived from the key alone, so anyone can recompute it::

    key_id = hex(SHA-256(b"cmo-ledger/key/v1\\n" || raw public key))[:32]

(the first 16 bytes of the digest, as 32 lowercase hex characters).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from functools import lru_cache

from nacl.signing import SigningKey, VerifyKey

from ledger.errors import ValidationFailed

__all__ = ["KEY_ID_DOMAIN", "decode_public_key", "encode_public_key", "key_id"]

KEY_ID_DOMAIN = b"cmo-ledger/key/v1\n"
_PREFIX = "ed25519:"


def key_id(public_key: VerifyKey | bytes) -> str:
    """The key id of an Ed25519 public key."""
    raw = bytes(public_key)
    return hashlib.sha256(KEY_ID_DOMAIN + raw).hexdigest()[:32]


def encode_public_key(key: VerifyKey | SigningKey) -> str:
    """``ed25519:<base64>`` for a public key (or a signing key's public half)."""
    verify_key = key.verify_key if isinstance(key, SigningKey) else key
    return _PREFIX + base64.b64encode(bytes(verify_key)).decode("ascii")


def decode_public_key(text: str, *, field: str = "public_key") -> VerifyKey:
    """Parse ``ed25519:<base64>``; raise ``ValidationFailed`` naming ``field`` otherwise."""
    if not isinstance(text, str) or not text.startswith(_PREFIX):
        raise ValidationFailed("expected 'ed25519:<base64 of 32 bytes>'", field=field)
    return _decoded(text, field)


@lru_cache(maxsize=1024)
def _decoded(text: str, field: str) -> VerifyKey:
    # Every append decodes its signer's key; a VerifyKey is immutable, and a refusal is
    # raised each time, not kept.
    try:
        raw = base64.b64decode(text[len(_PREFIX) :], validate=True)
    except binascii.Error as exc:
        raise ValidationFailed("public key is not valid base64", field=field) from exc
    if len(raw) != 32:
        raise ValidationFailed(f"public key has {len(raw)} bytes, expected 32", field=field)
    return VerifyKey(raw)
