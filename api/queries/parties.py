# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""``parties``: the public directory of admitted parties; keys only of the caller itself."""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.engine import Connection

from api.permissions import forbidden
from api.queries.common import At, Info, at_position, read, scope_of
from ledger.domain.key_history import KeyHistory
from ledger.timeutil import format_utc
from projections.parties import KEYS, PARTIES

__all__ = ["Party", "PartyKey", "keys_in_force", "list_parties"]


@strawberry.type(description="A key of a party, with its validity.")
class PartyKey:
    id: str
    public_key: str
    purpose: str = strawberry.field(description="party or source-system.")
    source: str | None = strawberry.field(description="The source system a source key vouches for.")
    added_at: str
    revoked_at: str | None
    compromised_since: str | None = strawberry.field(
        description="Signatures from this time on are flagged."
    )
    revoke_reason: str | None
    expires_at: str = strawberry.field(
        description="From this time on the key signs nothing: rotate it (add the next key) "
        "before then."
    )


@strawberry.type(description="An admitted party (the directory every caller may read).")
class Party:
    id: strawberry.ID
    legal_name: str
    role: str = strawberry.field(description="sponsor, cmo, regulator or auditor.")
    admitted_at: str
    at: strawberry.Private[At]

    @strawberry.field(description="The party's keys: only the caller's own (FORBIDDEN otherwise).")
    async def keys(self, info: Info) -> list[PartyKey] | None:
        caller = info.context.require_party()
        if caller.party_id != self.id:
            raise forbidden(f"keys are listed only to their own party, not of {self.id}", "keys")
        return await read(info, _keys, str(self.id), self.at)


def _keys(conn: Connection, party: str, at: At) -> list[PartyKey]:
    query = (
        select(KEYS)
        .where(KEYS.c.party == party, at_position(KEYS, at))
        .order_by(KEYS.c.added_at, KEYS.c.key)
    )
    return [
        PartyKey(
            id=row.key,
            public_key=row.public_key,
            purpose=row.purpose,
            source=row.source,
            added_at=row.added_at,
            revoked_at=row.revoked_at,
            compromised_since=row.compromised_since,
            revoke_reason=row.revoke_reason,
            expires_at=row.expires_at,
        )
        for row in conn.execute(query)
    ]


def keys_in_force(history: KeyHistory, kids: list[str]) -> list[PartyKey]:
    """The keys ``kids`` of ``history``, none of them revoked, as the API shows keys."""
    return [_key_in_force(history, kid) for kid in kids]


def _key_in_force(history: KeyHistory, kid: str) -> PartyKey:
    record = history.records[kid]
    return PartyKey(
        id=kid,
        public_key=record["public_key"],
        purpose=record["purpose"],
        source=record["source"],
        added_at=record["added_at"],
        revoked_at=None,
        compromised_since=None,
        revoke_reason=None,
        expires_at=format_utc(history.expires_at(kid)),
    )


def _parties(conn: Connection, at: At) -> list[Party]:
    query = select(PARTIES).where(at_position(PARTIES, at)).order_by(PARTIES.c.party)
    return [
        Party(
            id=strawberry.ID(row.party),
            legal_name=row.legal_name,
            role=row.role,
            admitted_at=row.admitted_at,
            at=at,
        )
        for row in conn.execute(query)
    ]


async def list_parties(source: Any, info: Info) -> list[Party]:
    """Every admitted party, as of the scope's position."""
    scope = await scope_of(source, info)
    return await read(info, _parties, scope.at)
