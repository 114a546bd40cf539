"""The security log (R9): failed sign-ins per claimed identity, lockouts and their alerts.

Every refused request signature that claims a party (``keyid="<party>/<key>"``) and
every refused console sign-in is appended to ``security_events`` (identity, kind, reason,
time). When one identity's failures within ``CMO_LEDGER_LOCKOUT_WINDOW`` seconds reach
``CMO_LEDGER_LOCKOUT_THRESHOLD``, it is locked for ``CMO_LEDGER_LOCKOUT_COOLDOWN``
seconds (a row of ``security_lockouts``): its correctly signed requests are refused with
``UNAUTHENTICATED`` saying until when and why. The process that locks it counts
``cmo_ledger_lockouts_total{party}`` and has the notary append a signed ``SecurityAlert``
(:mod:`ledger.domain.security`), readable by the party concerned and the notary.

Both tables are only ever inserted into. Every worker shares them through the database:
a failure is recorded, counted and judged in one transaction, serialised per identity (a
PostgreSQL advisory transaction lock; SQLite's single writer), so a burst spread over
several workers locks the identity once, when the shared count reaches the threshold.
Failures from before the last lock ended do not count towards the next one.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from nacl.signing import SigningKey
from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
    select,
)
from sqlalchemy.orm import Session
from starlette.requests import Request

from api.auth import REQUEST_SIGNATURE
from api.errors import Unauthenticated
from api.metrics import Metrics
from api.threads import in_thread
from ledger.application import Appended, Ledger
from ledger.domain.parties import NOTARY
from ledger.log.envelope import sign_envelope
from ledger.log.locks import lock_key, xact_lock
from ledger.timeutil import format_utc

__all__ = [
    "CONSOLE_SIGN_IN",
    "REQUEST_SIGNATURE",
    "Lockout",
    "SecurityLog",
    "record_console_refusal",
    "security_events",
    "security_lockouts",
]

log = logging.getLogger(__name__)

CONSOLE_SIGN_IN = "console-sign-in"
_MAX_IDENTITY = 200
_MAX_REASON = 1000

_metadata = MetaData()
_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER keys
security_events = Table(
    "security_events",
    _metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("identity", String(_MAX_IDENTITY), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("reason", String(_MAX_REASON), nullable=False),
    Column("at", Float, nullable=False),
    Column("recorded_at", String(40), nullable=False),
    Index("ix_security_events_identity_at", "identity", "at"),
)
security_lockouts = Table(
    "security_lockouts",
    _metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("identity", String(_MAX_IDENTITY), nullable=False),
    Column("locked_at", Float, nullable=False),
    Column("locked_until", Float, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("kinds", String(100), nullable=False),
    Column("reason", String(_MAX_REASON), nullable=False),
    Index("ix_security_lockouts_identity_until", "identity", "locked_until"),
)


@dataclass(frozen=True, slots=True)
class Lockout:
    """An identity locked until ``locked_until`` (POSIX seconds) after ``failures``."""

    identity: str
    locked_at: float
    locked_until: float
    failures: int
    kinds: tuple[str, ...]
    reason: str

    @property
    def until_text(self) -> str:
        """``locked_until`` as RFC 3339 UTC."""
        return format_utc(datetime.fromtimestamp(self.locked_until, UTC))

    def refusal(self, window: float) -> Unauthenticated:
        """The refusal of the locked identity's requests, saying until when and why."""
        return Unauthenticated(
            f"{self.identity} is locked until {self.until_text}: {self.failures} failed "
            f"sign-in attempts within {int(window)} s (last: {self.reason}); wait, or ask "
            "the ledger's operator"
        )


class SecurityLog:
    """Records failed sign-ins, locks identities and alerts through the notary."""

    def __init__(self, ledger: Ledger, notary_key: SigningKey, metrics: Metrics) -> None:
        settings = ledger.settings
        self._ledger = ledger
        self._key = notary_key
        self._metrics = metrics
        self.threshold = settings.lockout_threshold
        self.window = settings.lockout_window
        self.cooldown = settings.lockout_cooldown

    def create_tables(self) -> None:
        """Create ``security_events`` and ``security_lockouts`` if missing."""
        _metadata.create_all(self._ledger.engine, checkfirst=True)

    # ------------------------------------------------------------------ reading

    def locked(self, identity: str) -> Lockout | None:
        """The lock on ``identity`` in force now, or ``None``."""
        now = self._ledger.clock.now().timestamp()
        with self._ledger.engine.connect() as conn:
            row = conn.execute(
                select(security_lockouts)
                .where(
                    security_lockouts.c.identity == _identity(identity),
                    security_lockouts.c.locked_until > now,
                )
                .order_by(security_lockouts.c.locked_until.desc())
                .limit(1)
            ).first()
        return None if row is None else _lockout(row)

    def refuse_if_locked(self, identity: str) -> None:
        """``Unauthenticated`` saying until when and why, when ``identity`` is locked."""
        found = self.locked(identity)
        if found is not None:
            raise found.refusal(self.window)

    def failures(self, identity: str) -> list[tuple[str, str, str]]:
        """``identity``'s recorded failures, oldest first: (kind, reason, recorded_at)."""
        table = security_events
        with self._ledger.engine.connect() as conn:
            rows = conn.execute(
                select(table.c.kind, table.c.reason, table.c.recorded_at)
                .where(table.c.identity == _identity(identity))
                .order_by(table.c.id)
            ).all()
        return [(str(k), str(r), str(t)) for k, r, t in rows]

    # ------------------------------------------------------------------ writing

    def failed(self, identity: str, kind: str, reason: str) -> Lockout | None:
        """Record one failure; when it locks ``identity``, count it and alert."""
        lockout = self.record_failure(identity, kind, reason)
        if lockout is None:
            return None
        self._metrics.lockout(lockout.identity)
        try:
            self.alert(lockout)
        except Exception:  # the lock holds; the operator sees the failure in the log
            log.exception("the notary could not record the SecurityAlert of %s", identity)
        return lockout

    def record_failure(self, identity: str, kind: str, reason: str) -> Lockout | None:
        """Append the failure; the new lock when it brings ``identity`` to the threshold."""
        who = _identity(identity)
        now_time = self._ledger.clock.now()
        now = now_time.timestamp()
        with self._serialised(who) as session:
            session.execute(
                security_events.insert().values(
                    identity=who,
                    kind=kind,
                    reason=reason[:_MAX_REASON],
                    at=now,
                    recorded_at=format_utc(now_time),
                )
            )
            last_end = session.execute(
                select(func.max(security_lockouts.c.locked_until)).where(
                    security_lockouts.c.identity == who
                )
            ).scalar()
            if last_end is not None and float(last_end) > now:
                return None  # already locked: recorded, not locked again
            since = now - self.window
            if last_end is not None:
                since = max(since, float(last_end))
            counted = session.execute(
                select(security_events.c.kind, func.count())
                .where(security_events.c.identity == who, security_events.c.at >= since)
                .group_by(security_events.c.kind)
            ).all()
            failures = sum(int(n) for _, n in counted)
            if failures < self.threshold:
                return None
            lockout = Lockout(
                identity=who,
                locked_at=now,
                locked_until=now + self.cooldown,
                failures=failures,
                kinds=tuple(sorted(str(k) for k, _ in counted)),
                reason=reason[:_MAX_REASON],
            )
            session.execute(
                security_lockouts.insert().values(
                    identity=who,
                    locked_at=lockout.locked_at,
                    locked_until=lockout.locked_until,
                    failures=failures,
                    kinds=",".join(lockout.kinds),
                    reason=lockout.reason,
                )
            )
            return lockout

    def alert(self, lockout: Lockout) -> Appended:
        """The notary's signed ``SecurityAlert`` for ``lockout``, appended to the log."""
        ledger = self._ledger
        identity = ledger.identity
        envelope = {
            "ledger": identity.origin,
            "type": "SecurityAlert",
            "subject": str(uuid.uuid4()),
            "version": 1,
            "prev": None,
            "payload": {
                "identity": lockout.identity,
                "failures": lockout.failures,
                "window_seconds": max(1, int(self.window)),
                "locked_until": lockout.until_text,
                "kinds": list(lockout.kinds),
            },
            "signer": NOTARY,
            "key": identity.notary_key_id,
            "signed_at": format_utc(ledger.clock.now()),
            "meaning": "alerted",
            "reason": (
                f"{lockout.failures} failed sign-in attempts by {lockout.identity} within "
                f"{int(self.window)} s: locked until {lockout.until_text}"
            ),
        }
        appended = ledger.append(envelope, sign_envelope(envelope, self._key))
        self._metrics.appended(1)
        return appended

    @contextmanager
    def _serialised(self, identity: str) -> Iterator[Session]:
        # The library's transaction holds SQLite's process-wide write lock; on PostgreSQL
        # an advisory lock per identity orders the workers' transactions.
        with self._ledger.storage.transaction(commit=True) as session:
            if self._ledger.settings.is_postgres:
                xact_lock(session, [lock_key(self._ledger.engine, f"security/{identity}")])
            yield session


async def record_console_refusal(request: Request, party: str, outcome: str, reason: str) -> None:
    """Record a refused console sign-in of ``party`` (the console's pages call this)."""
    security: SecurityLog | None = getattr(request.app.state, "security", None)
    if security is None or not party or party == "unknown" or outcome == "locked":
        return  # a locked party's attempt proves nothing new about its key
    await in_thread(security.failed, party, CONSOLE_SIGN_IN, f"{outcome}: {reason}")


def _identity(identity: str) -> str:
    return identity[:_MAX_IDENTITY]


def _lockout(row: object) -> Lockout:
    values = row._mapping  # type: ignore[attr-defined]
    return Lockout(
        identity=str(values["identity"]),
        locked_at=float(values["locked_at"]),
        locked_until=float(values["locked_until"]),
        failures=int(values["failures"]),
        kinds=tuple(k for k in str(values["kinds"]).split(",") if k),
        reason=str(values["reason"]),
    )
