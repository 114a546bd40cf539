# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""``enhancements``: process-enhancement claims under the agreements the caller may see.

The dossier is served only once ``EnhancementDisclosed`` recorded it (before that the
views hold only its salted commitment).
"""

from __future__ import annotations

import json
from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.engine import Connection
from strawberry.scalars import JSON

from api.queries.agreements import require_agreement
from api.queries.common import At, Info, Scope, at_position, by_agreement, loader, scope_of
from projections.enhancements import DOSSIERS, ENHANCEMENTS

__all__ = ["Dossier", "Enhancement", "agreement_enhancements", "list_enhancements"]


@strawberry.type(description="A disclosed dossier: check SHA-256(salt || dossier) = commitment.")
class Dossier:
    dossier: str = strawberry.field(description="The dossier, base64.")
    salt: str
    disclosed_at: str


@strawberry.type(description="A claim to an improvement of the process, and its outcome.")
class Enhancement:
    id: strawberry.ID
    agreement_id: strawberry.ID
    claimant: str
    claimed_at: str
    priority: int = strawberry.field(description="Log position of the claim: earlier wins.")
    title: str
    summary: str
    commitment: str = strawberry.field(description="Salted SHA-256 of the confidential dossier.")
    parameter_versions: JSON
    evidence: JSON
    ownership_claimed: str
    status: str = strawberry.field(description="claimed, acknowledged, disputed or resolved.")
    responded_by: str | None
    responded_at: str | None
    dispute_reason: str | None
    owner: str | None = strawberry.field(description="sponsor, cmo or joint, once resolved.")
    resolved_by: str | None
    countersigned_by: str | None
    resolved_at: str | None
    disclosed_at: str | None
    at: strawberry.Private[At]

    @strawberry.field(description="The dossier; null until it is disclosed.")
    async def dossier(self, info: Info) -> Dossier | None:
        if self.disclosed_at is None:
            return None
        return await loader(info, "dossiers", _dossiers).load((self.at, str(self.id)))


def _dossiers(conn: Connection, keys: list[tuple[At, str]]) -> list[Dossier | None]:
    found: dict[tuple[At, str], Dossier] = {}
    for at in {at for at, _ in keys}:
        ids = sorted({e for k_at, e in keys if k_at == at})
        query = select(DOSSIERS).where(DOSSIERS.c.enhancement.in_(ids), at_position(DOSSIERS, at))
        for row in conn.execute(query):
            found[(at, row.enhancement)] = Dossier(
                dossier=row.dossier, salt=row.salt, disclosed_at=row.disclosed_at
            )
    return [found.get(key) for key in keys]


def enhancement_of(row: Any, at: At) -> Enhancement:
    """The GraphQL view of a ``proj_enhancements`` row."""
    return Enhancement(
        id=strawberry.ID(row.enhancement),
        agreement_id=strawberry.ID(row.agreement),
        claimant=row.claimant,
        claimed_at=row.claimed_at,
        priority=row.priority,
        title=row.title,
        summary=row.summary,
        commitment=row.commitment,
        parameter_versions=json.loads(row.parameter_versions),
        evidence=json.loads(row.evidence),
        ownership_claimed=row.ownership_claimed,
        status=row.status,
        responded_by=row.responded_by,
        responded_at=row.responded_at,
        dispute_reason=row.dispute_reason,
        owner=row.owner,
        resolved_by=row.resolved_by,
        countersigned_by=row.countersigned_by,
        resolved_at=row.resolved_at,
        disclosed_at=row.disclosed_at,
        at=at,
    )


_BY_AGREEMENT = by_agreement(ENHANCEMENTS, (ENHANCEMENTS.c.priority,), enhancement_of)


async def agreement_enhancements(scope: Scope, info: Info, agreement: str) -> list[Enhancement]:
    """The claims under an agreement the caller may see (none without ``enhancements``)."""
    if not scope.authority.sees_enhancements(agreement, scope.now):
        return []
    return await loader(info, "enhancements", _BY_AGREEMENT).load((scope.at, agreement))


async def list_enhancements(
    source: Any, info: Info, agreement: str | None = None
) -> list[Enhancement]:
    """The root ``enhancements``: under one agreement, or every visible one."""
    scope = await scope_of(source, info)
    if agreement is not None:
        require_agreement(scope, agreement, "agreementId")
        agreements = [agreement]
    else:
        agreements = scope.authority.visible_agreements(scope.now)
    agreements = [a for a in agreements if scope.authority.sees_enhancements(a, scope.now)]
    result: list[Enhancement] = []
    found = await loader(info, "enhancements", _BY_AGREEMENT).load_many(
        [(scope.at, a) for a in agreements]
    )
    for claims in found:
        result.extend(claims)
    return sorted(result, key=lambda e: e.priority)
