"""Countersignatures: a second party's signature carried inside one envelope.

Some events need both parties at once (a completed review, a resolved enhancement).
The submitting party signs the envelope; the counterparty signs the same ``body``
beforehand, and the payload carries::

    "countersignature": {"signer": PARTY, "key": KEY_ID, "signed_at": TIME, "signature": B64}

Countersigned bytes are ``b"cmo-ledger/countersignature/v1\\n"`` followed by
``RFC8785({"ledger", "type", "subject", "body", "signer", "key", "signed_at"})``, so a
countersignature cannot be moved to another ledger, event type, subject or body.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey

from ledger.canonical import canonical_bytes
from ledger.clock import SYSTEM, Clock
from ledger.domain.fields import Fields
from ledger.errors import BadSignature, Forbidden, UnknownSigner
from ledger.keys import decode_public_key, key_id
from ledger.log.envelope import decode_signature
from ledger.timeutil import format_utc

if TYPE_CHECKING:
    from ledger.domain.catalogue import Command

__all__ = ["COUNTERSIGN_DOMAIN", "countersign", "countersigned_bytes", "verify_countersignature"]

COUNTERSIGN_DOMAIN = b"cmo-ledger/countersignature/v1\n"


def countersigned_bytes(
    ledger: str,
    event_type: str,
    subject: str,
    body: Mapping[str, Any],
    signer: str,
    key: str,
    signed_at: str,
) -> bytes:
    """The bytes a countersigner signs."""
    document = {
        "ledger": ledger,
        "type": event_type,
        "subject": subject,
        "body": dict(body),
        "signer": signer,
        "key": key,
        "signed_at": signed_at,
    }
    return COUNTERSIGN_DOMAIN + canonical_bytes(document)


def countersign(
    ledger: str,
    event_type: str,
    subject: str,
    body: Mapping[str, Any],
    signer: str,
    signing_key: SigningKey,
    *,
    clock: Clock = SYSTEM,
) -> dict[str, str]:
    """The ``countersignature`` object for ``body``, signed by ``signer`` at ``clock``'s now."""
    kid = key_id(signing_key.verify_key)
    signed_at = format_utc(clock.now())
    message = countersigned_bytes(ledger, event_type, subject, body, signer, kid, signed_at)
    signature = base64.b64encode(signing_key.sign(message).signature).decode("ascii")
    return {"signer": signer, "key": kid, "signed_at": signed_at, "signature": signature}


def verify_countersignature(
    command: Command, body: Mapping[str, Any], expected_signer: str, *, field: str
) -> None:
    """Refuse unless ``expected_signer`` countersigned ``body`` with a valid key."""
    cosig = Fields(command.envelope.payload.get(field), f"payload.{field}")
    cosig.only("signer", "key", "signed_at", "signature")
    signer = cosig.text("signer", max_len=63)
    if signer != expected_signer:
        raise Forbidden(f"must be countersigned by {expected_signer}", field=cosig.field("signer"))
    if signer == command.signer:
        raise Forbidden("a party cannot countersign its own event", field=cosig.field("signer"))
    party = command.state.party(signer)
    if party is None:
        raise UnknownSigner(f"no admitted party {signer!r}", field=cosig.field("signer"))
    kid = cosig.text("key", max_len=32)
    signed_at = cosig.time("signed_at")
    public = party.key_for_new_signature(kid, signed_at, command.state.max_clock_skew)
    # The signer signed the text it sent; re-formatting it would change the bytes.
    signed_at_text = str(cosig.raw("signed_at"))
    message = countersigned_bytes(
        command.envelope.ledger,
        command.envelope.type,
        str(command.envelope.subject),
        body,
        signer,
        kid,
        signed_at_text,
    )
    try:
        decode_public_key(public).verify(message, decode_signature(cosig.raw("signature")))
    except BadSignatureError as exc:
        raise BadSignature(
            "countersignature does not verify", field=cosig.field("signature")
        ) from exc
