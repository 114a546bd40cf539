"""Signing requests to the ledger's API with a party key (RFC 9421, Ed25519).

Every signed HTTP request carries four headers::

    Ledger-Origin:   <the ledger's origin, as answered unsigned by { ledger { origin } }>
    Content-Digest:  sha-256=:<base64 SHA-256 of the body>:      (RFC 9530; also for b"")
    Signature-Input: sig=("@method" "@authority" "@path" "content-digest" "ledger-origin");
                     created=<unix s>;keyid="<party id>/<key id>";alg="ed25519";nonce="<random>"
    Signature:       sig=:<base64 Ed25519 signature of the RFC 9421 signature base>:

* ``"@authority"`` is the host (and port, unless the scheme's default) the request is sent
  to, which the server compares with the ``Host`` it receives; with ``Ledger-Origin`` it
  binds the signature to one ledger, so another ledger admitting the same key refuses it.
* ``keyid`` is the party id, a slash, and the key id of ``ledger.keys`` (32 hex
  characters); the operator signs as ``notary/<notary key id>``.
* ``created`` must be within the server's window (5 minutes by default) of its clock.
* ``nonce`` is random per request, so two identical requests in the same second still
  have different signatures: the server refuses any signature it has seen before.
* Content-Digest must carry a ``sha-256`` member; the server refuses one without it.

:class:`PartyAuth` signs for the origin it is given; given none, its first request asks
the ledger it is sent to (``{ ledger { origin } }`` at ``/graphql`` of the same host,
unsigned) and it keeps the answer.

A websocket authenticates in its ``connection_init`` message instead. Its payload is::

    {"signature-input": "<Signature-Input value>", "signature": "<Signature value>",
     "host": "<host[:port] of the websocket URL>", "ledger-origin": "<the ledger's origin>"}

signed over a synthetic request ``GET <path of the websocket URL>`` (normally
``GET /graphql``) whose authority is ``host`` (the ``Host`` the websocket is opened with:
the port is left out when it is the scheme's default), covering ``("@method" "@authority"
"@path" "ledger-origin")``, with ``created``, ``keyid``, ``alg="ed25519"``, ``nonce`` and
``tag="graphql-transport-ws"``; there is no body and no Content-Digest.
:func:`connection_init_payload` builds it.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms
from nacl.signing import SigningKey

from clients.errors import ClientError
from ledger.clock import SYSTEM, Clock
from ledger.http_signatures import (
    HTTP_COMPONENTS,
    LABEL,
    ORIGIN_FIELD,
    WS_COMPONENTS,
    WS_HOST,
    WS_TAG,
)
from ledger.keys import key_id as compute_key_id

__all__ = [
    "HTTP_COMPONENTS",
    "LABEL",
    "ORIGIN_FIELD",
    "WS_COMPONENTS",
    "WS_TAG",
    "PartyAuth",
    "connection_init_payload",
    "keyid_for",
]

ORIGIN_QUERY = "{ ledger { origin } }"


def keyid_for(party_id: str, signing_key: SigningKey) -> str:
    """The ``keyid`` parameter: ``<party id>/<key id>``."""
    return f"{party_id}/{compute_key_id(signing_key.verify_key)}"


def _origin_request(url: httpx2.URL | str) -> httpx2.Request:
    """The unsigned request asking the ledger at ``url``'s host for its origin."""
    return httpx2.Request("POST", httpx2.URL(url).join("/graphql"), json={"query": ORIGIN_QUERY})


def _read_origin(response: httpx2.Response) -> str:
    """The origin in the answer to :func:`_origin_request`."""
    try:
        origin = response.json()["data"]["ledger"]["origin"]
    except (ValueError, KeyError, TypeError):
        origin = None
    if not isinstance(origin, str) or not origin:
        raise ClientError(
            f"{response.request.url} did not answer {ORIGIN_QUERY} (HTTP {response.status_code}):"
            " check the URL, or pass the ledger's origin",
            field="origin",
        )
    return origin


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
    signs each request with the party's key, for the ledger whose origin is ``origin``.

    Without ``origin``, the first request sent through a client asks the ledger for it
    (unsigned, at ``/graphql`` of the request's host) and :attr:`origin` keeps the answer.
    Sign for the URL the request is sent to: the server checks the host it received."""

    requires_request_body = True

    def __init__(
        self,
        party_id: str,
        signing_key: SigningKey,
        *,
        origin: str | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        self.keyid = keyid_for(party_id, signing_key)
        self.origin = origin
        self._signer = _signer(self.keyid, signing_key)
        self._clock = clock

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, Any, None]:
        """Sign ``request`` for a known origin (the clients use the flows below)."""
        self.sign(request)
        yield request

    def sync_auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        request.read()
        if self.origin is None:
            answer = yield _origin_request(request.url)
            answer.read()
            self.origin = _read_origin(answer)
        self.sign(request)
        yield request

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        await request.aread()
        if self.origin is None:
            answer = yield _origin_request(request.url)
            await answer.aread()
            self.origin = _read_origin(answer)
        self.sign(request)
        yield request

    def sign(self, request: httpx2.Request, *, created: datetime | None = None) -> None:
        """Add Ledger-Origin, Content-Digest, Signature-Input and Signature to ``request``,
        signed for its URL's host."""
        if self.origin is None:
            raise ClientError(
                "no ledger origin to sign for: pass PartyAuth(..., origin=<the ledger's "
                f"{ORIGIN_QUERY}>), or send the request through a client using this auth",
                field="origin",
            )
        for name in ("content-digest", "signature", "signature-input", ORIGIN_FIELD):
            if name in request.headers:
                del request.headers[name]
        request.headers["Ledger-Origin"] = self.origin
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
    url: str,
    origin: str,
    created: datetime | None = None,
    clock: Clock = SYSTEM,
) -> dict[str, str]:
    """The ``connection_init`` payload that authenticates a websocket to ``url`` (e.g.
    ``wss://ledger.example.com/graphql``) of the ledger whose origin is ``origin``."""
    keyid = keyid_for(party_id, signing_key)
    target = httpx2.URL(url)
    # As the Host header carries it: without the scheme's default port.
    host = target.netloc.decode("ascii")
    fields = {WS_HOST: host, ORIGIN_FIELD: origin}
    request = _SyntheticRequest("GET", f"http://{host}{target.path}", dict(fields))
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
        **fields,
    }
