"""Signed envelopes: what a party signs, and what the ledger stores.

An envelope is a JSON object with exactly these members::

    ledger     the ledger's origin string (stops cross-ledger replay)
    type       event type, e.g. "DataSubmitted"
    subject    the aggregate id (UUID, lowercase hyphenated)
    version    the version this event gives the subject (1 for a new subject)
    prev       event hash (hex) of the subject's previous event; null for version 1
    payload    the event's data (JSON object)
    signer     party id ("notary" for the operator)
    key        key id of the signing key (see ledger.keys)
    signed_at  the signer's clock, RFC 3339 UTC
    meaning    Part 11 signature meaning ("submitted", "approved", ...)
    reason     optional; required by some event types
    person     optional; the person of ``signer`` who signed (a person id), whose key
               ``key`` then is (see ledger.domain.persons)

Signed bytes are ``b"cmo-ledger/envelope/v1\\n" + RFC8785(envelope)``; the signature
is Ed25519 over those bytes, base64-encoded.

The event hash, which the next envelope of the same subject carries as ``prev``, is
``SHA-256(RFC8785({"envelope": ..., "signature": ...}))``. It leaves out the server's
``recorded_at`` so that a signer can chain several events of one subject before any of
them is recorded (a batch, or an offline signing session).

A stored event adds ``recorded_at`` and, since R31, ``written_by`` (the software and
schema version that recorded it, unsigned); its leaf bytes (the Merkle leaf) are
``RFC8785({"envelope": ..., "recorded_at": ..., "signature": ..., "written_by": ...})``,
without ``written_by`` for events recorded before it was kept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from ledger.canonical import CanonicalObject, canonical_bytes, check_json_value
from ledger.errors import BadSignature, ValidationFailed
from ledger.log.leaf import event_hash_from_parts, leaf_bytes
from ledger.log.merkle import leaf_hash
from ledger.timeutil import parse_utc

__all__ = [
    "ENVELOPE_DOMAIN",
    "PERSON_ID",
    "REQUIRED_MEMBERS",
    "Envelope",
    "StoredEvent",
    "decode_signature",
    "event_hash",
    "sign_envelope",
]

ENVELOPE_DOMAIN = b"cmo-ledger/envelope/v1\n"
REQUIRED_MEMBERS = (
    "ledger",
    "type",
    "subject",
    "version",
    "prev",
    "payload",
    "signer",
    "key",
    "signed_at",
    "meaning",
)
_ALLOWED = frozenset((*REQUIRED_MEMBERS, "reason", "person"))
_IDENT = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}\Z")
PERSON_ID = _IDENT
"""A person id: the envelope's ``person``, and the one ``PersonAdmitted`` admits."""
_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}\Z")
_HEX32 = re.compile(r"^[0-9a-f]{64}\Z")
_KEY_ID = re.compile(r"^[0-9a-f]{32}\Z")


@dataclass(frozen=True, slots=True)
class Envelope:
    """A validated envelope; ``raw`` is exactly the object that was signed, ``canonical``
    its RFC 8785 bytes (taken once, by :meth:`parse`)."""

    raw: Mapping[str, Any]
    ledger: str
    type: str
    subject: uuid.UUID
    version: int
    prev: str | None
    payload: Mapping[str, Any]
    signer: str
    key: str
    signed_at: datetime
    meaning: str
    reason: str | None
    person: str | None = None
    canonical: bytes = field(default=b"", compare=False, repr=False)

    @classmethod
    def parse(cls, raw: object) -> Envelope:
        """Validate shape and types; every refusal names the field."""
        if not isinstance(raw, dict):
            raise ValidationFailed("envelope must be a JSON object", field="envelope")
        unknown = sorted(set(raw) - _ALLOWED)
        if unknown:
            raise ValidationFailed("unknown envelope member", field=unknown[0])
        for name in REQUIRED_MEMBERS:
            if name not in raw:
                raise ValidationFailed("required envelope member is missing", field=name)
        check_json_value(raw, field="envelope")
        # check_json_value refused every float, so orjson's sorted output is RFC 8785.
        canonical = canonical_bytes(raw, float_free=True)
        return cls(
            raw=raw,
            ledger=_text(raw, "ledger", max_len=200),
            type=_match(raw, "type", _TYPE, "an event type such as DataSubmitted"),
            subject=_subject(raw["subject"]),
            version=_version(raw["version"]),
            prev=_prev(raw["prev"]),
            payload=_payload(raw["payload"]),
            signer=_match(raw, "signer", _IDENT, "a party id such as northwind-bio"),
            key=_match(raw, "key", _KEY_ID, "a 32-hex-character key id"),
            signed_at=parse_utc(raw["signed_at"], field="signed_at"),
            meaning=_match(raw, "meaning", _IDENT, "a signature meaning such as submitted"),
            reason=_reason(raw.get("reason")),
            person=_person(raw.get("person")),
            canonical=canonical,
        )

    def signing_bytes(self) -> bytes:
        """Domain-separated canonical bytes: what the signature covers."""
        return ENVELOPE_DOMAIN + (self.canonical or canonical_bytes(dict(self.raw)))

    def signed_copy(self) -> CanonicalObject:
        """A copy of the signed object that keeps its canonical bytes, so the event hash
        and the leaf of the event it becomes need not encode it again."""
        return CanonicalObject(self.raw, self.canonical or canonical_bytes(dict(self.raw)))

    def signed_by(self, verify_key: VerifyKey, signature: str) -> tuple[bytes, bytes, bytes]:
        """What a check of ``signature`` by ``verify_key`` reads: the public key, the signed
        bytes and the signature's bytes (``ValidationFailed`` for a malformed signature)."""
        return bytes(verify_key), self.signing_bytes(), decode_signature(signature)

    def verify(self, verify_key: VerifyKey, signature: str) -> None:
        """Raise ``BadSignature`` unless ``signature`` is the key's signature of this envelope."""
        try:
            verify_key.verify(self.signing_bytes(), decode_signature(signature))
        except BadSignatureError as exc:
            raise BadSignature(
                "signature does not verify for this envelope and key", field="signature"
            ) from exc


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An accepted envelope with its signature and the server's receipt time.

    ``leaf`` is the stored state when it was read in leaf form (``ledger.log.mapper``): the
    bytes the tree hashed, so :meth:`leaf_bytes` need not encode them again.
    ``written_by`` is the leaf's ``{"schema_version", "software_version"}`` (R31), ``None``
    for an event recorded before releases kept it.
    """

    envelope: Mapping[str, Any]
    signature: str
    recorded_at: str
    leaf: bytes | None = field(default=None, compare=False, repr=False)
    written_by: Mapping[str, Any] | None = None

    def leaf_bytes(self) -> bytes:
        """The Merkle leaf: canonical form of envelope, signature, recorded_at (and
        written_by when kept)."""
        if self.leaf is not None:
            return self.leaf
        return leaf_bytes(self.envelope, self.recorded_at, self.signature, self.written_by)

    @property
    def software_version(self) -> str | None:
        """The software version that recorded the event, or ``None`` (an older event)."""
        value = None if self.written_by is None else self.written_by.get("software_version")
        return value if isinstance(value, str) else None

    @property
    def schema_version(self) -> int | None:
        """The catalogue schema version that recorded the event, or ``None``."""
        value = None if self.written_by is None else self.written_by.get("schema_version")
        return value if type(value) is int else None

    def leaf_hash(self) -> str:
        """RFC 6962 leaf hash of the leaf bytes, hex."""
        return leaf_hash(self.leaf_bytes()).hex()

    def event_hash(self) -> str:
        """The hash the subject's next envelope carries as ``prev``."""
        return event_hash(self.envelope, self.signature)


def event_hash(envelope: Mapping[str, Any], signature: str) -> str:
    """``SHA-256(RFC8785({"envelope", "signature"}))`` as hex: the next event's ``prev``
    (:func:`ledger.log.leaf.event_hash`), from the canonical bytes a
    :meth:`Envelope.signed_copy` keeps."""
    if isinstance(envelope, CanonicalObject):
        encoded = envelope.canonical
    else:
        encoded = canonical_bytes(dict(envelope))
    hashed = event_hash_from_parts(encoded, canonical_bytes(signature))
    return hashlib.sha256(hashed).hexdigest()


def sign_envelope(envelope: Mapping[str, Any], signing_key: SigningKey) -> str:
    """Sign an envelope (validated first) and return the base64 signature."""
    parsed = Envelope.parse(dict(envelope))
    signature = signing_key.sign(parsed.signing_bytes()).signature
    return base64.b64encode(signature).decode("ascii")


def decode_signature(signature: object) -> bytes:
    """Base64 of 64 bytes, or ``ValidationFailed`` naming ``signature``."""
    if not isinstance(signature, str):
        raise ValidationFailed("signature must be a base64 string", field="signature")
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed("signature is not valid base64", field="signature") from exc
    if len(raw) != 64:
        raise ValidationFailed(f"signature has {len(raw)} bytes, expected 64", field="signature")
    return raw


def _text(raw: Mapping[str, Any], name: str, *, max_len: int) -> str:
    value = raw[name]
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise ValidationFailed(f"expected a non-empty string of at most {max_len}", field=name)
    return value


def _match(raw: Mapping[str, Any], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = raw[name]
    if not isinstance(value, str) or not pattern.match(value):
        raise ValidationFailed(f"expected {what}", field=name)
    return value


def _subject(value: object) -> uuid.UUID:
    if isinstance(value, str):
        try:
            parsed = uuid.UUID(value)
        except ValueError:
            pass
        else:
            if str(parsed) == value:
                return parsed
    raise ValidationFailed("expected a lowercase hyphenated UUID", field="subject")


def _version(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationFailed("expected an integer >= 1", field="version")
    return value


def _prev(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and _HEX32.match(value):
        return value
    raise ValidationFailed("expected null or a 64-hex-character event hash", field="prev")


def _payload(value: object) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValidationFailed("payload must be a JSON object", field="payload")
    return value


def _person(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _IDENT.match(value):
        raise ValidationFailed("expected a person id such as j.smith", field="person")
    return value


def _reason(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 2000:
        raise ValidationFailed("reason must be a non-empty string (max 2000)", field="reason")
    return value
