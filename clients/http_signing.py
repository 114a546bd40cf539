"""Signing requests to the ledger's API with a party key (RFC 9421, Ed25519).

Every signed HTTP request carries three headers::

    Content-Digest:  sha-256=:<base64 SHA-256 of the body>:      (RFC 9530; also for b"")
    Signature-Input: sig=("@method" "@path" "content-digest");created=<unix s>;
                     keyid="<party id>/<key id>";alg="ed25519";nonce="<random>"
    Signature:       sig=:<base64 Ed25519 signature of the RFC 9421 signature base>:

* ``keyid`` is the party id, a slash, and the key id of ``ledger.keys`` (32 hex
  characters); the operator signs as ``notary/<notary key id>``.
* ``created`` must be within the server's window (5 minutes by default) of its clock.
* ``nonce`` is random per request, so two identical requests in the same second still
  have different signatures: the server refuses any signature it has seen before.

A websocket authenticates in its ``connection_init`` message instead. Its payload is::

    {"signature-input": "<Signature-Input value>", "signature": "<Signature value>"}

signed over a synthetic request ``GET <path of the websocket URL>`` (normally
``GET /graphql``) covering ``("@method" "@path")``, with ``created``, ``keyid``,
``alg="ed25519"``, ``nonce`` and ``tag="graphql-transport-ws"``; there is no body and no
Content-Digest. :func:`connection_init_payload` builds it.
"""

from __future__ import annotations

import secrets
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms
from nacl.signing import SigningKey

from ledger.clock import SYSTEM, Clock
from ledger.http_signatures import HTTP_COMPONENTS, LABEL, WS_COMPONENTS, WS_TAG
from ledger.keys import key_id as compute_key_id

__all__ = [
    "HTTP_COMPONENTS",
    "LABEL",
    "WS_COMPONENTS",
    "WS_TAG",
    "PartyAuth",
    "connection_init_payload",
    "keyid_for",
]


def keyid_for(party_id: str, signing_key: SigningKey) -> str:
    """The ``keyid`` parameter: ``<party id>/<key id>``."""
    return f"{party_id}/{compute_key_id(signing_key.verify_key)}"


class _OneKey(HTTPSignatureKeyResolver):
    def __init__(self, keyid: str, signing_key: SigningKey) -> None:
        self._keyid = keyid
        self._key = Ed25519PrivateKey.from_private_bytes(bytes(signing_key))

    def resolve_private_key(self, key_id: str) -> Ed25519PrivateKey:
        if key_id != self._keyid:
            raise KeyError(key_id)
        return self._key


def _signer(keyid: str, signing_key: SigningKey) -> HTTPMessageSigner:
    return HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519, key_resolver=_OneKey(keyid, signing_key)
    )


class PartyAuth(httpx2.Auth):
    """An ``httpx2`` auth (the client, gql's HTTP transport, starlette's TestClient) that
    signs each request with the party's key."""

    requires_request_body = True

    def __init__(self, party_id: str, signing_key: SigningKey, *, clock: Clock = SYSTEM) -> None:
        self.keyid = keyid_for(party_id, signing_key)
        self._signer = _signer(self.keyid, signing_key)
        self._clock = clock

    def auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        self.sign(request)
        yield request

    def sign(self, request: httpx2.Request, *, created: datetime | None = None) -> None:
        """Add Content-Digest, Signature-Input and Signature to ``request``."""
        for name in ("content-digest", "signature", "signature-input"):
            if name in request.headers:
                del request.headers[name]
        self._signer.sign(
            request,
            key_id=self.keyid,
            created=created or self._clock.now(),
            nonce=secrets.token_urlsafe(16),
            label=LABEL,
            covered_component_ids=HTTP_COMPONENTS,
            body=request.content,
        )


@dataclass
class _SyntheticRequest:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


def connection_init_payload(
    party_id: str,
    signing_key: SigningKey,
    *,
    path: str = "/graphql",
    created: datetime | None = None,
    clock: Clock = SYSTEM,
) -> dict[str, str]:
    """The ``connection_init`` payload that authenticates a websocket."""
    keyid = keyid_for(party_id, signing_key)
    # Only @method and @path are covered, so the host is a placeholder.
    request = _SyntheticRequest("GET", f"http://localhost{path}")
    _signer(keyid, signing_key).sign(
        request,
        key_id=keyid,
        created=created or clock.now(),
        nonce=secrets.token_urlsafe(16),
        label=LABEL,
        tag=WS_TAG,
        covered_component_ids=WS_COMPONENTS,
    )
    return {
        "signature-input": request.headers["Signature-Input"],
        "signature": request.headers["Signature"],
    }
