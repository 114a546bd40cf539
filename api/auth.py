"""Who is calling: RFC 9421 HTTP Message Signatures by party keys, and replay refusal.

The scheme (the client side is :mod:`clients.http_signing`):

* one signature, ``keyid="<party id>/<key id>"``, ``alg`` absent or ``"ed25519"``, with
  ``created`` and ``nonce`` parameters;
* an HTTP request covers ``"@method" "@path" "content-digest"``, and the RFC 9530
  Content-Digest (sha-256) must match the body, also when the body is empty;
* a websocket's ``connection_init`` payload carries ``signature-input`` and ``signature``
  for a synthetic ``GET <websocket path>`` covering ``"@method" "@path"``, tagged
  ``graphql-transport-ws``;
* ``created`` must be no older than the request window (``Limits.request_max_age``, five
  minutes) and no further ahead than the ledger's clock skew;
* the key must belong to an admitted party (or be the notary's key) and not be revoked;
* a signature is accepted once: its hash goes into a table with a unique key, shared by
  every worker process, and rows are pruned once their window has passed.

Every refusal raises :class:`~api.errors.Unauthenticated` saying what to fix. A request
with neither signature header is anonymous (``None``), not refused.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import http_sf
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eventsourcing.persistence import IntegrityError
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    algorithms,
)
from sqlalchemy import BigInteger, Column, MetaData, String, Table, delete
from sqlalchemy.exc import IntegrityError as SQLAlchemyIntegrityError

from api.errors import Unauthenticated
from ledger.application import Ledger
from ledger.domain.parties import NOTARY
from ledger.http_signatures import ALGORITHM, HTTP_COMPONENTS, WS_COMPONENTS, WS_TAG
from ledger.keys import decode_public_key

__all__ = ["Authenticator", "Caller", "ReplayGuard", "SignedRequest", "replay_table"]

_metadata = MetaData()
replay_table = Table(
    "api_request_signatures",
    _metadata,
    Column("digest", String(64), primary_key=True),
    Column("expires_at", BigInteger, nullable=False, index=True),
)


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated party and the key it signed with."""

    party_id: str
    key_id: str
    legal_name: str
    role: str

    @property
    def is_notary(self) -> bool:
        """True for the operator's notary key."""
        return self.party_id == NOTARY


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What verification reads from a request: ``url`` must be absolute."""

    method: str
    url: str
    headers: Mapping[str, str] | Any


class ReplayGuard:
    """Accepts each signature once, across every process sharing the database."""

    prune_every = 60.0

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._last_prune = 0.0
        self._lock = threading.Lock()

    def create_table(self) -> None:
        """Create the table of seen signatures if missing."""
        _metadata.create_all(self._ledger.engine, checkfirst=True)

    def accept(self, signature: bytes, expires_at: int) -> None:
        """Record ``signature``; refuse one recorded before."""
        digest = hashlib.sha256(signature).hexdigest()
        try:
            # The library's transaction shares the process's SQLite write lock.
            with self._ledger.storage.transaction(commit=True) as session:
                session.execute(replay_table.insert().values(digest=digest, expires_at=expires_at))
        except (IntegrityError, SQLAlchemyIntegrityError):
            raise Unauthenticated(
                "this request signature was already used (a replay): sign every request anew"
            ) from None
        self._maybe_prune()

    def _maybe_prune(self) -> None:
        now = self._ledger.clock.now().timestamp()
        with self._lock:
            if now - self._last_prune < self.prune_every:
                return
            self._last_prune = now
        with self._ledger.storage.transaction(commit=True) as session:
            session.execute(delete(replay_table).where(replay_table.c.expires_at < int(now)))


class _FixedKey(HTTPSignatureKeyResolver):
    def __init__(self, key: Ed25519PublicKey) -> None:
        self._key = key

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey:
        return self._key


@dataclass(frozen=True, slots=True)
class _Input:
    label: str
    keyid: str
    created: int


class Authenticator:
    """Verifies request signatures against the ledger's parties and keys."""

    def __init__(self, ledger: Ledger, replay: ReplayGuard, max_age: float) -> None:
        self._ledger = ledger
        self._replay = replay
        self._max_age = max_age
        self._skew = ledger.settings.max_clock_skew

    def authenticate_http(self, request: SignedRequest, body: bytes) -> Caller | None:
        """The caller of an HTTP request, ``None`` when it is unsigned."""
        headers = request.headers
        if "signature" not in headers and "signature-input" not in headers:
            return None
        return self._verify(request, body, HTTP_COMPONENTS, tag=None)

    def authenticate_ws(self, payload: Mapping[str, Any], path: str) -> Caller | None:
        """The caller of a websocket, from its ``connection_init`` payload."""
        if "signature" not in payload and "signature-input" not in payload:
            return None
        values = [payload.get("signature-input"), payload.get("signature")]
        if not all(isinstance(value, str) for value in values):
            raise Unauthenticated(
                "connection_init payload needs 'signature-input' and 'signature' strings"
            )
        headers = {"signature-input": values[0], "signature": values[1]}
        request = SignedRequest("GET", f"http://localhost{path}", headers)
        return self._verify(request, None, WS_COMPONENTS, tag=WS_TAG)

    def _verify(
        self,
        request: SignedRequest,
        body: bytes | None,
        components: tuple[str, ...],
        tag: str | None,
    ) -> Caller:
        if "signature" not in request.headers or "signature-input" not in request.headers:
            raise Unauthenticated("send both Signature-Input and Signature headers")
        parsed = _parse_input(request.headers["signature-input"])
        self._check_fresh(parsed.created)
        caller, key = self._resolve(parsed.keyid)
        verifier = HTTPMessageVerifier(
            signature_algorithm=algorithms.ED25519, key_resolver=_FixedKey(key)
        )
        verifier.max_clock_skew = timedelta(seconds=self._skew)
        try:
            verifier.verify(
                request,
                max_age=None,
                expect_tag=tag,
                expect_label=parsed.label if tag else None,
                require_components=components,
                body=body,
            )
        except HTTPMessageSignaturesException as exc:
            detail = str(exc) or f"it does not verify with key {parsed.keyid}"
            raise Unauthenticated(f"request signature refused: {detail}") from None
        signature = _signature_bytes(request.headers["signature"], parsed.label)
        self._replay.accept(signature, parsed.created + int(self._max_age + self._skew) + 1)
        return caller

    def _check_fresh(self, created: int) -> None:
        now = self._ledger.clock.now().timestamp()
        if created < now - self._max_age:
            raise Unauthenticated(
                f"request signature is stale (created over {int(self._max_age)} s ago): "
                "sign each request when sending it, and check the client's clock"
            )
        if created > now + self._skew:
            raise Unauthenticated(
                "request signature was created in the future: check the client's clock"
            )

    def _resolve(self, keyid: str) -> tuple[Caller, Ed25519PublicKey]:
        party_id, slash, kid = keyid.partition("/")
        if not slash or not party_id or not kid:
            raise Unauthenticated("keyid must be '<party id>/<key id>'")
        if party_id == NOTARY:
            identity = self._ledger.identity
            if kid != identity.notary_key_id:
                raise Unauthenticated(f"key {kid} is not the notary's key")
            caller = Caller(NOTARY, kid, "Ledger operator (notary)", NOTARY)
            return caller, _public(identity.notary_public_key)
        party = self._ledger.party(party_id)
        if party is None:
            raise Unauthenticated(f"no admitted party {party_id!r}: check the keyid")
        record = party.keys.get(kid)
        if record is None:
            raise Unauthenticated(f"key {kid} is not a key of {party_id}: check the keyid")
        if record["revoked_at"] is not None:
            raise Unauthenticated(
                f"key {kid} of {party_id} was revoked at {record['revoked_at']}: "
                "sign with a current key"
            )
        caller = Caller(party_id, kid, party.legal_name, party.role)
        return caller, _public(record["public_key"])


def _public(text: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(bytes(decode_public_key(text)))


def _parse_input(value: str) -> _Input:
    try:
        members: Any = http_sf.parse(value.encode("ascii"), tltype="dictionary")
    except (ValueError, TypeError, UnicodeEncodeError):
        raise Unauthenticated("Signature-Input is not a structured-field dictionary") from None
    if not isinstance(members, dict) or len(members) != 1:
        raise Unauthenticated("send exactly one signature in Signature-Input")
    label, (_, params) = next(iter(members.items()))
    keyid, created, nonce = params.get("keyid"), params.get("created"), params.get("nonce")
    if not isinstance(keyid, str):
        raise Unauthenticated("Signature-Input needs a keyid parameter '<party id>/<key id>'")
    if type(created) is not int:
        raise Unauthenticated("Signature-Input needs a created parameter (Unix seconds)")
    if not isinstance(nonce, str) or not nonce:
        raise Unauthenticated("Signature-Input needs a random nonce parameter")
    if params.get("alg", ALGORITHM) != ALGORITHM:
        raise Unauthenticated("alg must be ed25519")
    return _Input(str(label), keyid, created)


def _signature_bytes(value: str, label: str) -> bytes:
    try:
        members: Any = http_sf.parse(value.encode("ascii"), tltype="dictionary")
        member = members[label][0]
    except (ValueError, TypeError, KeyError, UnicodeEncodeError):
        raise Unauthenticated(f"Signature has no member {label!r}") from None
    if not isinstance(member, bytes):
        raise Unauthenticated("Signature member must be a byte sequence")
    return member
