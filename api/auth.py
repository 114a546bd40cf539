"""Who is calling: RFC 9421 HTTP Message Signatures by party keys, and replay refusal.

The scheme (shared in :mod:`ledger.http_signatures`; the client side is
:mod:`clients.http_signing`):

* one signature, ``keyid="<party id>/<key id>"``, ``alg`` absent or ``"ed25519"``, with
  ``created`` and ``nonce`` parameters;
* an HTTP request covers ``"@method" "@authority" "@path" "content-digest"
  "ledger-origin"``: ``"@authority"`` is the ``Host`` the server received, ``Ledger-Origin``
  must be this ledger's origin, and the RFC 9530 Content-Digest must carry a ``sha-256``
  member (other members may be present) and every member must match the body, also when
  the body is empty;
* a websocket's ``connection_init`` payload carries ``signature-input`` and ``signature``
  for a synthetic ``GET <websocket path>`` covering ``"@method" "@authority" "@path"
  "ledger-origin"``, tagged ``graphql-transport-ws``, and the values of its two fields:
  ``host`` (the ``Host`` the websocket was opened with, which must be the one the server
  received) and ``ledger-origin``;
* a signature not covering both ``"@authority"`` and ``"ledger-origin"`` comes from a
  client older than this binding, and is refused with the advice to update it;
* ``created`` must be no older than the request window (``Limits.request_max_age``, five
  minutes) and no further ahead than the ledger's clock skew;
* the key must belong to an admitted party (or be the notary's key) and not be revoked;
* a signature is accepted once: its hash goes into a table with a unique key, shared by
  every worker process, and rows are pruned once their window has passed.

So a request signed for one ledger is refused by another that admits the same key: its
origin (and normally its host) differ, and the signature covers both.

Every refusal raises :class:`~api.errors.Unauthenticated` saying what to fix. A request
with neither signature header is anonymous (``None``), not refused.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

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
from ledger.http_signatures import (
    ALGORITHM,
    BINDING_COMPONENTS,
    DIGEST_ALGORITHM,
    HTTP_COMPONENTS,
    ORIGIN_FIELD,
    WS_COMPONENTS,
    WS_HOST,
    WS_TAG,
)
from ledger.keys import decode_public_key
from ledger.timeutil import format_utc
from ledger.version import SOFTWARE_VERSION

if TYPE_CHECKING:
    from api.security_log import SecurityLog

REQUEST_SIGNATURE = "request-signature"
"""The security log's kind for a refused request signature (``api.security_log``)."""

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
    covered: frozenset[str]

    def require(self, components: tuple[str, ...]) -> None:
        """Refuse a signature that leaves any of ``components`` uncovered."""
        missing = [name for name in components if name not in self.covered]
        if any(name in BINDING_COMPONENTS for name in missing):
            # Short: a websocket's close reason holds 123 bytes.
            raise Unauthenticated(
                f'the signature must cover "@authority" and "{ORIGIN_FIELD}": '
                f"update the client (cmo-ledger >= {SOFTWARE_VERSION})"
            )
        if missing:
            raise Unauthenticated(
                f"the signature must cover {_listed(missing)}: cover {_listed(components)}"
            )


class Authenticator:
    """Verifies request signatures against the ledger's parties and keys.

    With a :attr:`security` log (the app attaches one on start-up), every well-formed,
    fresh signature for this ledger that claims a party but fails to prove it (no such
    party, not its key, a revoked key, a signature that does not verify) is recorded
    against that party, and a party locked after too many of them is refused even when it
    signs correctly (R9). Malformed, stale or other-ledger signatures are refused before
    any key is looked at and are not counted: they say nothing about the key."""

    security: SecurityLog | None = None

    def __init__(self, ledger: Ledger, replay: ReplayGuard, max_age: float) -> None:
        self._ledger = ledger
        self._replay = replay
        self._max_age = max_age
        self._skew = ledger.settings.max_clock_skew

    def authenticate_http(self, request: SignedRequest, body: bytes) -> Caller | None:
        """The caller of an HTTP request, ``None`` when it is unsigned.

        ``request.url`` must be built from the ``Host`` the request arrived with: it is the
        ``"@authority"`` the signature is checked against."""
        headers = request.headers
        if "signature" not in headers and "signature-input" not in headers:
            return None
        return self._verify(request, body, HTTP_COMPONENTS, tag=None)

    def authenticate_ws(
        self, payload: Mapping[str, Any], path: str, authority: str | None = None
    ) -> Caller | None:
        """The caller of a websocket, from its ``connection_init`` payload.

        ``authority`` is the ``Host`` the websocket request arrived with; the payload's
        ``host`` must be it. Without it, the payload's ``host`` is checked against the
        signature only (the origin still binds the signature to this ledger)."""
        if "signature" not in payload and "signature-input" not in payload:
            return None
        fields = _payload_fields(payload)
        _parse_input(fields["signature-input"]).require(WS_COMPONENTS)
        host = fields.get(WS_HOST)
        if host is None:
            raise Unauthenticated(
                f"connection_init payload needs a {WS_HOST!r} string: the host (and port) "
                "of the websocket URL, as sent in its Host header"
            )
        if authority is not None and host.lower() != authority.lower():
            raise Unauthenticated(
                # The advice first: a websocket's close reason holds 123 bytes.
                f"sign connection_init for the URL you open: signed for host {host!r}, "
                f"this websocket reached {authority!r}"
            )
        request = SignedRequest("GET", f"http://{host}{path}", fields)
        return self._verify(request, None, WS_COMPONENTS, tag=WS_TAG)

    def recheck(self, caller: Caller) -> None:
        """Refuse ``caller`` if, since it signed, its key was revoked or expired, its party
        is gone, or the security log locked its party."""
        self.resolve(f"{caller.party_id}/{caller.key_id}")
        if self.security is not None:
            self.security.refuse_if_locked(caller.party_id)

    def _verify(
        self,
        request: SignedRequest,
        body: bytes | None,
        components: tuple[str, ...],
        tag: str | None,
    ) -> Caller:
        headers = request.headers
        if "signature" not in headers or "signature-input" not in headers:
            raise Unauthenticated("send both Signature-Input and Signature headers")
        parsed = _parse_input(headers["signature-input"])
        parsed.require(components)
        self._check_fresh(parsed.created)
        self._check_origin(headers.get(ORIGIN_FIELD), websocket=tag is not None)
        if body is not None:
            _check_digest(headers.get("content-digest"))
        # The form is right: what follows proves (or fails to prove) the claimed identity.
        try:
            caller = self._verify_signature(request, body, components, tag, parsed)
        except Unauthenticated as refused:
            if self.security is not None:
                claimed = parsed.keyid.partition("/")[0] or parsed.keyid
                self.security.failed(claimed, REQUEST_SIGNATURE, refused.message)
            raise
        if self.security is not None:
            self.security.refuse_if_locked(caller.party_id)
        signature = _signature_bytes(headers["signature"], parsed.label)
        self._replay.accept(signature, parsed.created + int(self._max_age + self._skew) + 1)
        return caller

    def _verify_signature(
        self,
        request: SignedRequest,
        body: bytes | None,
        components: tuple[str, ...],
        tag: str | None,
        parsed: _Input,
    ) -> Caller:
        """The claimed party's key checked (admitted, its own, not revoked) and the
        signature verified with it; a refusal here is a failed sign-in of that party."""
        caller, key = self.resolve(parsed.keyid)
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
            detail = str(exc) or (
                f"it does not verify with key {parsed.keyid}: sign the request as it is sent "
                "(method, host and port, path, Ledger-Origin and body)"
            )
            raise Unauthenticated(f"request signature refused: {detail}") from None
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

    def _check_origin(self, signed_for: object, *, websocket: bool) -> None:
        own = self._ledger.identity.origin
        if not isinstance(signed_for, str):
            where = (
                f"a {ORIGIN_FIELD!r} string in the connection_init payload"
                if websocket
                else "a Ledger-Origin header"
            )
            raise Unauthenticated(f"send {where} carrying this ledger's origin {own!r}")
        if signed_for != own:
            raise Unauthenticated(
                f"request signed for ledger {signed_for!r}, this ledger is {own!r}: sign for "
                "the ledger you send to (its origin is answered unsigned by { ledger { origin } })"
            )

    def resolve(self, keyid: str) -> tuple[Caller, Ed25519PublicKey]:
        """The caller and public key of ``<party id>/<key id>``; ``Unauthenticated`` when
        the party or key is unknown, or the key is revoked or expired."""
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
        expiry = party.key_history.expires_at(kid)
        if expiry <= self._ledger.clock.now():
            raise Unauthenticated(
                f"key {kid} of {party_id} expired at {format_utc(expiry)}: sign with a current key"
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
    return _Input(str(label), keyid, created, _covered(members[label][0]))


def _covered(items: object) -> frozenset[str]:
    # A component with parameters (e.g. one member of Content-Digest) is not the whole one.
    if not isinstance(items, list):
        raise Unauthenticated("Signature-Input must list the covered components in parentheses")
    return frozenset(value for value, params in items if isinstance(value, str) and not params)


def _listed(components: tuple[str, ...] | list[str]) -> str:
    return " ".join(f'"{name}"' for name in components)


def _payload_fields(payload: Mapping[str, Any]) -> dict[str, str]:
    """The synthetic request's fields carried by a ``connection_init`` payload."""
    if not all(isinstance(payload.get(name), str) for name in ("signature-input", "signature")):
        raise Unauthenticated(
            "connection_init payload needs 'signature-input' and 'signature' strings"
        )
    fields = {}
    for name in ("signature-input", "signature", WS_HOST, ORIGIN_FIELD):
        value = payload.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise Unauthenticated(f"connection_init payload member {name!r} must be a string")
        fields[name] = value
    return fields


def _check_digest(value: str | None) -> None:
    # The signing library accepts any supported digest alone; this API promises sha-256.
    advice = (
        f"send Content-Digest: {DIGEST_ALGORITHM}=:<base64 SHA-256 of the body>: (RFC 9530), "
        "also for an empty body"
    )
    if value is None:
        raise Unauthenticated(f"no Content-Digest header: {advice}")
    try:
        members: Any = http_sf.parse(value.encode("ascii"), tltype="dictionary")
    except (ValueError, TypeError, UnicodeEncodeError):
        raise Unauthenticated(
            f"Content-Digest is not a structured-field dictionary: {advice}"
        ) from None
    if not isinstance(members, dict) or DIGEST_ALGORITHM not in members:
        raise Unauthenticated(f"Content-Digest has no {DIGEST_ALGORITHM} member: {advice}")


def _signature_bytes(value: str, label: str) -> bytes:
    try:
        members: Any = http_sf.parse(value.encode("ascii"), tltype="dictionary")
        member = members[label][0]
    except (ValueError, TypeError, KeyError, UnicodeEncodeError):
        raise Unauthenticated(f"Signature has no member {label!r}") from None
    if not isinstance(member, bytes):
        raise Unauthenticated("Signature member must be a byte sequence")
    return member
