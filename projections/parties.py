"""Parties and their keys, with each key's validity interval.

``proj_parties``: one row per admitted party (id, subject, legal name, role, admitted_at).
``proj_party_keys``: one row per key: its party, public key, purpose (``party`` or
``source-system``) and source, ``added_at``, and once revoked ``revoked_at`` and
``compromised_since`` (signatures from then on are flagged) with the reason, and
``expires_at`` (:func:`~ledger.domain.key_history.key_expiry`). A key is valid for new
signatures from ``added_at`` until ``revoked_at`` or ``expires_at``, whichever comes first.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Index, MetaData, String, Text

from ledger.domain.key_history import key_expiry
from ledger.keys import decode_public_key, key_id
from ledger.timeutil import format_utc
from projections.temporal import temporal_table
from projections.view import Fact, Page, View, handles

__all__ = ["KEYS", "PARTIES", "PartiesView"]

metadata = MetaData()

PARTIES = temporal_table(
    "proj_parties",
    metadata,
    [Column("party", String(64), nullable=False)],
    Column("subject", String(36), nullable=False),
    Column("legal_name", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("admitted_at", String(30), nullable=False),
)

KEYS = temporal_table(
    "proj_party_keys",
    metadata,
    [Column("key", String(32), nullable=False)],
    Column("party", String(64), nullable=False),
    Column("public_key", Text, nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("source", Text),
    Column("added_at", String(30), nullable=False),
    Column("revoked_at", String(30)),
    Column("compromised_since", String(30)),
    Column("revoke_reason", Text),
    Column("expires_at", String(30), nullable=False),
    Index("ix_proj_party_keys_party", "party", "valid_from"),
)


class PartiesView(View):
    """Admitted parties and the history of their keys."""

    name = "parties"
    tables = (PARTIES, KEYS)

    @handles("PartyAdmitted")
    def _admitted(self, page: Page, fact: Fact) -> None:
        payload = fact.payload
        party = payload["party"]
        page.versions(PARTIES).insert(
            (party,),
            fact.position,
            {
                "subject": fact.subject,
                "legal_name": payload["legal_name"],
                "role": payload["role"],
                "admitted_at": fact.recorded_at,
            },
        )
        _add_key(page, fact, party, payload["public_key"], "party", None)

    @handles("KeyAdded")
    def _key_added(self, page: Page, fact: Fact) -> None:
        payload = fact.payload
        # Only the party itself adds its keys, so the signer names the party.
        _add_key(
            page,
            fact,
            fact.signer,
            payload["public_key"],
            payload.get("purpose", "party"),
            payload.get("source"),
        )

    @handles("KeyRevoked")
    def _key_revoked(self, page: Page, fact: Fact) -> None:
        payload = fact.payload
        page.versions(KEYS).update(
            (payload["key"],),
            fact.position,
            revoked_at=fact.recorded_at,
            compromised_since=payload.get("compromised_since") or fact.recorded_at,
            revoke_reason=fact.reason,
        )


def _add_key(
    page: Page, fact: Fact, party: str, public_key: str, purpose: str, source: Any
) -> None:
    page.versions(KEYS).put(
        (key_id(decode_public_key(public_key)),),
        fact.position,
        {
            "party": party,
            "public_key": public_key,
            "purpose": purpose,
            "source": source,
            "added_at": fact.recorded_at,
            "revoked_at": None,
            "compromised_since": None,
            "revoke_reason": None,
            "expires_at": format_utc(key_expiry(fact.payload.get("expires_at"), fact.recorded_at)),
        },
    )
