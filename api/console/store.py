"""Sign-in challenges and console sessions, in the ledger database.

Two side tables, created at start-up like the replay table of :mod:`api.auth`, so that every
worker process (and host) sharing the database sees the same challenges and sessions:

* ``console_challenges``: one row per challenge issued to a party key over a signed
  request, keyed by the SHA-256 of the challenge; it expires ``CHALLENGE_SECONDS`` after
  issue and is consumed by one conditional ``UPDATE`` (``used_at IS NULL``), so a link
  signs in once, whichever worker serves it;
* ``console_sessions``: one row per signed-in browser, keyed by the SHA-256 of the session
  token (the token itself is only in the browser's cookie), with the party and key it
  signed in with, its start, its last use and its absolute end.

Every use of a session re-reads the key it signed in with (``Authenticator.resolve``, the
rule signed requests follow), so a revoked key or a removed party ends its sessions at the
next request. Times are milliseconds on the ledger's clock.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from sqlalchemy import BigInteger, Column, MetaData, String, Table, delete, select, update

from api.console.challenge import CHALLENGE_BYTES, sign_in_message
from api.console.security import CSRF_HEADER, SESSION_COOKIE, csrf_matches, same_origin
from api.errors import Unauthenticated
from api.threads import in_thread

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection, Request

    from api.auth import Authenticator, Caller
    from ledger.application import Ledger
    from ledger.config import Settings

__all__ = [
    "CHALLENGE_SECONDS",
    "Challenge",
    "ConsoleStore",
    "SessionRefused",
    "SignInRefused",
    "browser_caller",
    "challenge_table",
    "session_table",
    "token_digest",
    "websocket_caller",
]

CHALLENGE_SECONDS = 60
"""How long a challenge, and so a sign-in link, stays usable."""

_KEEP_CHALLENGES_MS = 3600 * 1000
_metadata = MetaData()
challenge_table = Table(
    "console_challenges",
    _metadata,
    Column("digest", String(64), primary_key=True),
    Column("party", String(200), nullable=False),
    Column("key_id", String(200), nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
    Column("used_at", BigInteger, nullable=True),
)
session_table = Table(
    "console_sessions",
    _metadata,
    Column("digest", String(64), primary_key=True),
    Column("party", String(200), nullable=False, index=True),
    Column("key_id", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
)


def token_digest(token: str | bytes) -> str:
    """The SHA-256 (hex) under which a challenge or session token is stored."""
    data = token.encode("utf-8") if isinstance(token, str) else token
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class Challenge:
    """A challenge issued to ``party``'s key ``key_id``."""

    value: bytes
    party: str
    key_id: str
    expires_at: datetime


class SignInRefused(Exception):
    """A sign-in link refused: ``outcome`` is ``failed``, ``expired``, ``replayed`` or
    ``locked`` (the security log locked the party);
    ``party`` is the challenge's party (``unknown`` when no challenge matched)."""

    def __init__(self, outcome: str, party: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.party = party
        self.message = message


class SessionRefused(Unauthenticated):
    """A console session that no longer authenticates (unknown, idle, expired, revoked)."""


class ConsoleStore:
    """Challenges and sessions of one process, shared through the database."""

    prune_every = 60.0

    def __init__(self, ledger: Ledger, auth: Authenticator, settings: Settings) -> None:
        self._ledger = ledger
        self._auth = auth
        self.idle_ms = int(settings.session_idle * 1000)
        self.lifetime_ms = int(settings.session_lifetime * 1000)
        self._last_prune = 0
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- tables

    def create_tables(self) -> None:
        """Create the two tables if missing."""
        _metadata.create_all(self._ledger.engine, checkfirst=True)

    def _now(self) -> int:
        return int(self._ledger.clock.now().timestamp() * 1000)

    # ------------------------------------------------------------ challenges

    def issue(self, caller: Caller) -> Challenge:
        """A new challenge for the key ``caller`` signed its request with."""
        value = secrets.token_bytes(CHALLENGE_BYTES)
        expires = self._now() + CHALLENGE_SECONDS * 1000
        row = {
            "digest": token_digest(value),
            "party": caller.party_id,
            "key_id": caller.key_id,
            "expires_at": expires,
            "used_at": None,
        }
        with self._ledger.storage.transaction(commit=True) as session:
            session.execute(challenge_table.insert().values(**row))
        self._maybe_prune()
        when = datetime.fromtimestamp(expires / 1000, UTC)
        return Challenge(value, caller.party_id, caller.key_id, when)

    def check(self, challenge: bytes, signature: bytes) -> Caller:
        """The caller ``challenge`` signed by its key would sign in, without consuming it
        (the confirmation page of a link opened with ``GET``); refused as :meth:`sign_in`."""
        return self._checked(challenge, signature)[0]

    def sign_in(self, challenge: bytes, signature: bytes) -> tuple[str, Caller]:
        """Consume ``challenge`` signed by its key; a new session token and its caller.

        Refused (:class:`SignInRefused`) when the challenge is unknown, expired or used, the
        key no longer valid, or the signature does not verify; nothing is stored then."""
        caller, party, now = self._checked(challenge, signature)
        digest = token_digest(challenge)
        token = secrets.token_urlsafe(32)
        with self._ledger.storage.transaction(commit=True) as session:
            consumed = session.execute(
                update(challenge_table)
                .where(challenge_table.c.digest == digest, challenge_table.c.used_at.is_(None))
                .values(used_at=now)
            )
            if consumed.rowcount != 1:  # type: ignore[attr-defined]
                raise SignInRefused(
                    "replayed",
                    party,
                    "this sign-in link was already used: a link signs in once; "
                    "run `cmo-ledger login` for a new one",
                )
            session.execute(
                session_table.insert().values(
                    digest=token_digest(token),
                    party=caller.party_id,
                    key_id=caller.key_id,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + self.lifetime_ms,
                )
            )
        return token, caller

    def _checked(self, challenge: bytes, signature: bytes) -> tuple[Caller, str, int]:
        digest = token_digest(challenge)
        with self._ledger.engine.connect() as conn:
            row = conn.execute(
                select(challenge_table).where(challenge_table.c.digest == digest)
            ).first()
        if row is None:
            raise SignInRefused(
                "failed",
                "unknown",
                "this sign-in link is not one this ledger issued: run `cmo-ledger login` again",
            )
        found = row._mapping
        party = str(found["party"])
        now = self._now()
        if found["used_at"] is not None:
            raise SignInRefused(
                "replayed",
                party,
                "this sign-in link was already used: a link signs in once; "
                "run `cmo-ledger login` for a new one",
            )
        if now >= int(found["expires_at"]):
            raise SignInRefused(
                "expired",
                party,
                f"this sign-in link expired ({CHALLENGE_SECONDS} s after it was made): "
                "run `cmo-ledger login` for a new one",
            )
        try:
            caller, public_key = self._auth.resolve(f"{party}/{found['key_id']}")
        except Unauthenticated as error:
            raise SignInRefused("failed", party, error.message) from None
        try:
            public_key.verify(signature, sign_in_message(challenge))
        except InvalidSignature:
            raise SignInRefused(
                "failed",
                party,
                f"the signature does not verify with key {caller.key_id} of {party}: "
                "use the link exactly as `cmo-ledger login` printed it",
            ) from None
        try:
            self._refuse_if_locked(party)
        except Unauthenticated as error:
            raise SignInRefused("locked", party, error.message) from None
        return caller, party, now

    def _refuse_if_locked(self, party: str) -> None:
        """The security log's lock-out holds for the console as for signed requests."""
        if self._auth.security is not None:
            self._auth.security.refuse_if_locked(party)

    # -------------------------------------------------------------- sessions

    def authenticate(self, token: str) -> Caller:
        """The caller of a session token; :class:`SessionRefused` saying why not."""
        digest = token_digest(token)
        with self._ledger.engine.connect() as conn:
            row = conn.execute(
                select(session_table).where(session_table.c.digest == digest)
            ).first()
        if row is None:
            raise SessionRefused(
                "this console session is unknown or signed out: sign in again (`cmo-ledger login`)"
            )
        found = row._mapping
        now = self._now()
        if now >= int(found["expires_at"]):
            self._end(digest)
            raise SessionRefused(
                f"this console session reached its lifetime ({self.lifetime_ms // 1000} s): "
                "sign in again (`cmo-ledger login`)"
            )
        if now - int(found["last_seen_at"]) >= self.idle_ms:
            self._end(digest)
            raise SessionRefused(
                f"this console session was idle for over {self.idle_ms // 1000} s: "
                "sign in again (`cmo-ledger login`)"
            )
        try:
            caller, _ = self._auth.resolve(f"{found['party']}/{found['key_id']}")
        except Unauthenticated as error:
            self._end(digest)
            raise SessionRefused(f"console session ended: {error.message}") from None
        try:
            self._refuse_if_locked(caller.party_id)
        except Unauthenticated as error:
            raise SessionRefused(error.message) from None
        if now - int(found["last_seen_at"]) >= 1000:
            with self._ledger.storage.transaction(commit=True) as session:
                session.execute(
                    update(session_table)
                    .where(session_table.c.digest == digest)
                    .values(last_seen_at=now)
                )
        self._maybe_prune()
        return caller

    def sign_out(self, token: str) -> None:
        """End the session of ``token`` (nothing when there is none)."""
        self._end(token_digest(token))

    def _end(self, digest: str) -> None:
        with self._ledger.storage.transaction(commit=True) as session:
            session.execute(delete(session_table).where(session_table.c.digest == digest))

    def _maybe_prune(self) -> None:
        now = self._now()
        with self._lock:
            if now - self._last_prune < self.prune_every * 1000:
                return
            self._last_prune = now
        with self._ledger.storage.transaction(commit=True) as session:
            # Used and expired challenges stay an hour, so a replay is named as one.
            kept = now - _KEEP_CHALLENGES_MS
            session.execute(delete(challenge_table).where(challenge_table.c.expires_at < kept))
            session.execute(
                delete(session_table).where(
                    (session_table.c.expires_at < now)
                    | (session_table.c.last_seen_at < now - self.idle_ms)
                )
            )


async def browser_caller(store: ConsoleStore, request: Request) -> Caller | None:
    """The caller of an unsigned ``POST /graphql`` sent from a signed-in browser: ``None``
    without a session cookie; refused without the session's CSRF header, from another
    origin, or when the session no longer authenticates."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    if not same_origin(request):
        raise Unauthenticated(
            "a console session's request must come from this ledger's own pages "
            "(its Origin names another host)"
        )
    if not csrf_matches(token, request.headers.get(CSRF_HEADER)):
        raise Unauthenticated(
            f"a console session's request must carry its page's {CSRF_HEADER} header: "
            "reload GraphiQL"
        )
    return await in_thread(store.authenticate, token)


async def websocket_caller(store: ConsoleStore, websocket: HTTPConnection) -> Caller | None:
    """The caller of an unsigned websocket opened by a signed-in browser: ``None`` without
    a session cookie; refused unless the browser names this host as its ``Origin`` (a page
    of another site could otherwise open it with the cookie), or when the session no
    longer authenticates."""
    token = websocket.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    if websocket.headers.get("origin") is None or not same_origin(websocket):
        raise Unauthenticated(
            "a console session's websocket must come from this ledger's own pages "
            "(its Origin is missing or names another host)"
        )
    return await in_thread(store.authenticate, token)
