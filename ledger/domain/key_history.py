"""A party's keys through time: when each was added, revoked, and compromised since.

One definition for every layer that asks whether a key could sign: the command path
(:class:`~ledger.domain.parties.Party`), ``verify``, the notary checking a cosignature,
the API's ``LogEvent.compromised`` and the offline bundle verifier. Light: the standard
library and :mod:`ledger.keys` only.

The compromise rule: an event whose ``signed_at`` *or* ``recorded_at`` is at or after its
key's ``compromised_since`` is **signed under a compromised key** (:func:`compromised`).
Either time alone could be the forger's: a stolen key can sign with any ``signed_at``,
and whatever the ledger recorded after the compromise may be the thief's.

The expiry rule: every key expires, at the ``expires_at`` its ``PartyAdmitted`` or
``KeyAdded`` named, else :data:`DEFAULT_KEY_LIFETIME` after it was recorded. Decided from
the events alone, so replay needs no setting. An expired key makes no new signature
(:meth:`KeyHistory.key_for_new_signature`); what it signed before its expiry still verifies.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from ledger.errors import KeyRevoked, UnknownSigner
from ledger.keys import decode_public_key, key_id
from ledger.timeutil import format_utc, parse_utc

__all__ = [
    "ALL_KEY_EVENTS",
    "COMPROMISED",
    "DEFAULT_KEY_LIFETIME",
    "EXIT_BROKEN",
    "EXIT_COMPROMISED",
    "EXIT_OK",
    "KEY_EVENTS",
    "PERSON_KEY_EVENTS",
    "ROTATION_WARNING",
    "KeyHistory",
    "KeyRecord",
    "compromised",
    "exit_status",
    "finding",
    "key_expiry",
]

COMPROMISED = "signed under a compromised key"
"""The words every layer uses for an event the compromise rule catches."""
KEY_EVENTS = frozenset({"PartyAdmitted", "KeyAdded", "KeyRevoked"})
PERSON_KEY_EVENTS = {
    "PersonAdmitted": "PartyAdmitted",
    "PersonKeyAdded": "KeyAdded",
    "PersonKeyRevoked": "KeyRevoked",
}
"""A person's key events, each replayed as the party key event it mirrors: to a verifier a
person's keys are keys of the person's party (which person may sign what is the command
path's rule)."""
ALL_KEY_EVENTS = KEY_EVENTS | PERSON_KEY_EVENTS.keys()

EXIT_OK, EXIT_BROKEN, EXIT_COMPROMISED = 0, 1, 2
"""Exit statuses of ``verify`` and ``verify-bundle``: clean; the log (or bundle) is not
intact; intact, but some events are signed under a compromised key."""

DEFAULT_KEY_LIFETIME = timedelta(days=730)
"""How long a key whose event names no ``expires_at`` lasts (two years from being recorded)."""
ROTATION_WARNING = timedelta(days=30)
"""How long before a key expires its party is told to rotate it."""

KeyRecord = dict[str, Any]
"""``{"public_key", "added_at", "revoked_at", "compromised_since", "purpose", "source",
"expires_at"}``; ``expires_at`` is the event's own (``None`` when it named none: see
:func:`key_expiry`)."""


class _Ordered(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...
    def __le__(self, other: Any, /) -> bool: ...


_T = TypeVar("_T", bound=_Ordered)


def compromised(signed_at: _T, recorded_at: _T, compromised_since: _T | None) -> bool:
    """The compromise rule, over times of one kind (datetimes, or POSIX timestamps)."""
    if compromised_since is None:
        return False
    return compromised_since <= signed_at or compromised_since <= recorded_at


def exit_status(*, intact: bool, compromised: bool) -> int:
    """The exit status of a verification: a broken log outranks a compromised key."""
    if not intact:
        return EXIT_BROKEN
    return EXIT_COMPROMISED if compromised else EXIT_OK


def finding(party: str, kid: str, since: str) -> str:
    """The one sentence every layer reports a caught event with."""
    return f"{COMPROMISED}: key {kid} of {party}, compromised since {since}"


def key_expiry(expires_at: str | None, added_at: str) -> datetime:
    """When a key expires: the ``expires_at`` its event named, else its lifetime's end."""
    if expires_at is not None:
        return _key_time(expires_at, "expires_at")
    return _key_time(added_at, "added_at") + DEFAULT_KEY_LIFETIME


@lru_cache(maxsize=4096)
def _key_time(text: str, field: str) -> datetime:
    """A time a key record holds, parsed once: every envelope a key signs reads the same
    few (a refused text is not kept, and is refused again naming ``field``)."""
    return parse_utc(text, field=field)


class KeyHistory:
    """One party's keys, replayed from its key events, keyed by key id.

    It reads and writes ``records`` in place (a :class:`~ledger.domain.parties.Party`
    keeps them in its state, so snapshots hold plain JSON).
    """

    def __init__(self, party: str, records: MutableMapping[str, KeyRecord] | None = None) -> None:
        self.party = party
        self.records: MutableMapping[str, KeyRecord] = {} if records is None else records

    def apply(self, event_type: str, payload: Mapping[str, Any], recorded_at: str) -> None:
        """Replay one ``PartyAdmitted``, ``KeyAdded`` or ``KeyRevoked`` (or the person's
        event that mirrors it, :data:`PERSON_KEY_EVENTS`)."""
        event_type = PERSON_KEY_EVENTS.get(event_type, event_type)
        if event_type == "KeyRevoked":
            since = payload.get("compromised_since")
            self.revoke(str(payload["key"]), recorded_at, None if since is None else str(since))
            return
        purpose = str(payload.get("purpose") or "party")
        source = payload.get("source")
        expires_at = payload.get("expires_at")
        self.add(
            str(payload["public_key"]),
            recorded_at,
            purpose,
            source,
            expires_at=None if expires_at is None else str(expires_at),
        )

    def add(
        self,
        public_key: str,
        at: str,
        purpose: str = "party",
        source: Any = None,
        *,
        expires_at: str | None = None,
    ) -> str:
        """Register a key added at ``at`` (expiring at ``expires_at``, else after
        :data:`DEFAULT_KEY_LIFETIME`); its key id."""
        kid = key_id(decode_public_key(public_key))
        self.records[kid] = {
            "public_key": public_key,
            "added_at": at,
            "revoked_at": None,
            "compromised_since": None,
            "purpose": purpose,
            "source": source,
            "expires_at": expires_at,
        }
        return kid

    def revoke(self, kid: str, at: str, compromised_since: str | None) -> None:
        """Revoke a key at ``at``; without a compromise time, it is compromised from then."""
        record = self.records[kid]
        record["revoked_at"] = at
        record["compromised_since"] = compromised_since or at

    def get(self, kid: str) -> KeyRecord | None:
        """The key's record, or ``None`` when it is not this party's."""
        return self.records.get(kid)

    def expires_at(self, kid: str) -> datetime:
        """When key ``kid`` expires (``KeyError`` when it is not this party's)."""
        record = self.records[kid]
        # A record kept (in a snapshot) from before keys had expiries has no member.
        return key_expiry(record.get("expires_at"), record["added_at"])

    def in_force(self, at: datetime) -> list[str]:
        """Ids of the keys neither revoked nor expired at ``at``, soonest to expire first."""
        kids = [
            kid
            for kid, record in self.records.items()
            if record["revoked_at"] is None and self.expires_at(kid) > at
        ]
        return sorted(kids, key=self.expires_at)

    def expiring(self, at: datetime) -> list[str]:
        """Ids of the keys in force at ``at`` that expire within :data:`ROTATION_WARNING`."""
        return [kid for kid in self.in_force(at) if self.expires_at(kid) <= at + ROTATION_WARNING]

    def compromised(self, kid: str, signed_at: str, recorded_at: str) -> bool:
        """Whether an event signed with ``kid`` falls under the compromise rule."""
        record = self.records.get(kid)
        since = None if record is None else record["compromised_since"]
        if since is None:
            return False
        at = parse_utc(since, field="compromised_since")
        signed = parse_utc(signed_at, field="signed_at")
        return compromised(signed, parse_utc(recorded_at, field="recorded_at"), at)

    def key_for_new_signature(self, kid: str, signed_at: datetime, skew: float) -> str:
        """The public key text for a new envelope; refuse unknown, revoked, expired or
        not-yet keys."""
        record = self.records.get(kid)
        if record is None:
            raise UnknownSigner(f"key {kid} is not a key of {self.party}", field="key")
        if record["revoked_at"] is not None:
            since = record["compromised_since"]
            raise KeyRevoked(
                f"key {kid} of {self.party} was revoked (compromised since {since})", field="key"
            )
        added = _key_time(record["added_at"], "key")
        if (added - signed_at).total_seconds() > skew:
            raise UnknownSigner(
                f"key {kid} was not yet registered to {self.party} at signed_at",
                field="signed_at",
            )
        self._refuse_expired(kid, signed_at, field="key")
        return str(record["public_key"])

    def _refuse_expired(self, kid: str, at: datetime, *, field: str) -> None:
        expiry = self.expires_at(kid)
        if expiry <= at:
            raise KeyRevoked(
                f"key {kid} of {self.party} expired at {format_utc(expiry)}: rotate it: "
                "add a new key, signed with a current one, and sign with that",
                field=field,
            )

    def check_signed_at(self, kid: str, at: datetime, skew: timedelta, *, field: str) -> None:
        """Refuse a signature ``kid`` made at ``at`` (both times it was signed and arrived):
        ``UnknownSigner`` for a key not (yet) the party's, ``KeyRevoked`` for one revoked,
        compromised (in the compromise rule's words) or expired by then."""
        record = self.records.get(kid)
        if record is None:
            raise UnknownSigner(f"key {kid} is not a key of {self.party}", field=field)
        if parse_utc(record["added_at"], field="added_at") - skew > at:
            raise UnknownSigner(
                f"the key of {self.party} was added after {at.isoformat()}", field=field
            )
        since = record["compromised_since"]
        if since is not None and compromised(at, at, parse_utc(since, field="since")):
            raise KeyRevoked(finding(self.party, kid, since), field=field)
        revoked = record["revoked_at"]
        if revoked is not None and at >= parse_utc(revoked, field="revoked_at"):
            raise KeyRevoked(f"the key of {self.party} was revoked at {revoked}", field=field)
        self._refuse_expired(kid, at, field=field)
