"""Parties and their keys: ``PartyAdmitted``, ``KeyAdded``, ``KeyRevoked``.

A party's subject id is derived from its party id (see :func:`party_subject`), so any
client can address it without a lookup. The notary admits parties; a party adds keys
with a key it already holds; the party or the notary revokes a key, saying since when
it may have been compromised. Each key expires (``expires_at``, see
:mod:`ledger.domain.key_history`): its party rotates it by adding the next key before then.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from eventsourcing.domain import Aggregate, event

from ledger.domain.catalogue import Command, EventSpec, SignedAggregate, register
from ledger.domain.key_history import DEFAULT_KEY_LIFETIME, KeyHistory, KeyRecord
from ledger.domain.subjects import party_subject
from ledger.errors import Forbidden, ValidationFailed
from ledger.keys import decode_public_key, key_id
from ledger.timeutil import format_utc

__all__ = ["NOTARY", "ROLES", "KeyRecord", "Party", "check_revocation"]

NOTARY = "notary"
ROLES = ("sponsor", "cmo", "regulator", "auditor")
_PARTY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}\Z")


class Party(SignedAggregate):
    """An admitted organisation and the history of its keys."""

    TOPIC = "cmo.Party.v1"

    class Created(Aggregate.Created):
        TOPIC = "cmo.Party.Created.v1"

    @event("PartyAdmitted", topic="cmo.PartyAdmitted.v1")
    def __init__(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        payload = envelope["payload"]
        self.party_id: str = payload["party"]
        self.legal_name: str = payload["legal_name"]
        self.role: str = payload["role"]
        self.keys: dict[str, KeyRecord] = {}
        self.key_history.apply("PartyAdmitted", payload, recorded_at)

    @event("KeyAdded", topic="cmo.KeyAdded.v1")
    def _key_added(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        self.key_history.apply("KeyAdded", envelope["payload"], recorded_at)

    @event("KeyRevoked", topic="cmo.KeyRevoked.v1")
    def _key_revoked(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        self.key_history.apply("KeyRevoked", envelope["payload"], recorded_at)

    @property
    def key_history(self) -> KeyHistory:
        """The party's keys through time (read and written in :attr:`keys`)."""
        return KeyHistory(self.party_id, self.keys)

    def key_for_new_signature(self, kid: str, signed_at: datetime, skew: float) -> str:
        """The public key text for a new envelope; refuse unknown, revoked or not-yet keys."""
        return self.key_history.key_for_new_signature(kid, signed_at, skew)


def _admit_rule(command: Command) -> None:
    command.require_signer(NOTARY)
    payload = command.payload
    party_id = payload.text("party", max_len=63)
    if not _PARTY_ID.match(party_id) or party_id == NOTARY:
        raise ValidationFailed(
            "party ids are lowercase letters, digits and hyphens, 2-63 long; 'notary' is reserved",
            field="payload.party",
        )
    payload.text("legal_name")
    payload.choice("role", ROLES)
    decode_public_key(payload.raw("public_key"), field="payload.public_key")
    _check_expiry(command)
    if command.envelope.subject != party_subject(party_id):
        raise ValidationFailed(
            f"a party's subject must be {party_subject(party_id)}", field="subject"
        )


def _key_added_rule(command: Command) -> None:
    party: Party = command.subject
    command.require_signer(party.party_id)
    payload = command.payload
    public_key = decode_public_key(payload.raw("public_key"), field="payload.public_key")
    purpose = payload.choice("purpose", ("party", "source-system"))
    if purpose == "source-system":
        payload.text("source", max_len=100)
    elif payload.has("source"):
        raise ValidationFailed("only source-system keys name a source", field="payload.source")
    if key_id(public_key) in party.keys:
        raise ValidationFailed("key is already registered", field="payload.public_key")
    _check_expiry(command)


def _check_expiry(command: Command) -> None:
    """A new key's ``expires_at``: in canonical spelling, after now, and within the ledger's
    maximum key lifetime (which a key naming none, lasting the default, must fit too)."""
    payload = command.payload
    asked = payload.optional_time("expires_at")
    if asked is not None and payload.raw("expires_at") != format_utc(asked):
        # One spelling per instant keeps comparisons in projections exact.
        raise ValidationFailed(f"write it as {format_utc(asked)}", field="payload.expires_at")
    if asked is not None and asked <= command.now:
        raise ValidationFailed(
            "expires_at is not in the future: give a later expiry", field="payload.expires_at"
        )
    days = command.state.max_key_lifetime_days
    latest = command.now + timedelta(days=days)
    if (asked or command.now + DEFAULT_KEY_LIFETIME) > latest:
        raise ValidationFailed(
            f"keys on this ledger last at most {days} days: "
            f"give an expires_at no later than {format_utc(latest)}",
            field="payload.expires_at",
        )


def _key_revoked_rule(command: Command) -> None:
    party: Party = command.subject
    command.require_signer(party.party_id, NOTARY)
    check_revocation(command, party.keys, party.party_id)


def check_revocation(command: Command, keys: Mapping[str, KeyRecord], owner: str) -> None:
    """``payload.key`` is a key of ``owner`` (in ``keys``) not yet revoked, and
    ``payload.compromised_since``, when given, a past time in its one spelling."""
    payload = command.payload
    kid = payload.text("key", max_len=32)
    record = keys.get(kid)
    if record is None:
        raise ValidationFailed(f"{owner} has no key {kid}", field="payload.key")
    if record["revoked_at"] is not None:
        raise Forbidden("key is already revoked", field="payload.key")
    since = payload.optional_time("compromised_since")
    if since is not None and since > command.now:
        raise ValidationFailed(
            "compromised_since is in the future", field="payload.compromised_since"
        )
    if since is not None and payload.raw("compromised_since") != format_utc(since):
        # One spelling per instant keeps comparisons in projections exact.
        raise ValidationFailed(
            f"write it as {format_utc(since)}", field="payload.compromised_since"
        )


register(
    EventSpec(
        "PartyAdmitted",
        Party,
        frozenset({"approved"}),
        _admit_rule,
        signers="the notary",
        description="admits an organisation with its role and first key",
    ),
    EventSpec(
        "KeyAdded",
        Party,
        frozenset({"authored"}),
        _key_added_rule,
        apply="_key_added",
        signers="the party, with a valid key",
        description="adds a party key or a source-system key, expiring at expires_at "
        "(else two years after it is recorded)",
    ),
    EventSpec(
        "KeyRevoked",
        Party,
        frozenset({"revoked"}),
        _key_revoked_rule,
        apply="_key_revoked",
        reason_required=True,
        signers="the party or the notary",
        description="revokes a key; signatures at or after compromised_since are flagged",
    ),
)
