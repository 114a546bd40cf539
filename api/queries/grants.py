# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""``grants``: the access grants the caller may see: those under agreements it may see,
and its own (as grantor or grantee) whatever their state."""

from __future__ import annotations

import json
from typing import Any

import strawberry
from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from api.queries.agreements import require_agreement
from api.queries.common import At, Info, Scope, at_position, loader, read, scope_of
from ledger.domain.scope import GrantScope
from ledger.errors import ValidationFailed
from projections.access import GRANTS

__all__ = [
    "Grant",
    "agreement_grants",
    "grant_of",
    "grants_at",
    "list_grants",
    "with_current",
]


@strawberry.type(description="An access grant: who may see which data of an agreement, when.")
class Grant:
    id: strawberry.ID
    agreement_id: strawberry.ID
    grantor: str
    grantee: str
    data_classes: list[str]
    parameters: list[str] = strawberry.field(description="Empty: every parameter.")
    batches: list[str] = strawberry.field(description="Empty: every batch.")
    window_from: str | None = strawberry.field(description="Data times opened from (inclusive).")
    window_until: str | None = strawberry.field(description="Data times opened until (exclusive).")
    valid_from: str
    valid_until: str | None
    granted_at: str
    purpose: str
    include_confidential: bool = strawberry.field(
        description="Opens only the confidential elements of the data in scope."
    )
    enhancements: bool = strawberry.field(
        description="Opens the agreement's enhancement claims, commitments and dossiers."
    )
    status: str = strawberry.field(description="active or revoked (as recorded).")
    revoked_at: str | None
    revoked_by: str | None
    revoke_reason: str | None
    active: bool = strawberry.field(description="Open at the instant asked about.")
    active_now: bool = strawberry.field(description="Open at the time of this request.")


Versions = tuple[Any, Any]
"""A grant's row at the position asked about, and its row now."""


def with_current(conn: Connection, rows: list[Any]) -> list[Versions]:
    """Each row with the grant's current row (revoked since, perhaps)."""
    ids = sorted({row.grant_id for row in rows})
    now: dict[str, Any] = {}
    for start in range(0, len(ids), 500):
        query = select(GRANTS).where(
            GRANTS.c.grant_id.in_(ids[start : start + 500]), GRANTS.c.valid_to.is_(None)
        )
        now.update((row.grant_id, row) for row in conn.execute(query))
    return [(row, now.get(row.grant_id, row)) for row in rows]


def grant_of(versions: Versions, scope: Scope) -> Grant:
    """The GraphQL view of a ``proj_grants`` row (``active_now`` from its current row)."""
    row, current_row = versions
    parsed = GrantScope.from_row(row._mapping)
    return Grant(
        id=strawberry.ID(row.grant_id),
        agreement_id=strawberry.ID(row.agreement),
        grantor=row.grantor,
        grantee=row.grantee,
        data_classes=list(json.loads(row.data_classes)),
        parameters=list(json.loads(row.parameters)),
        batches=list(json.loads(row.batches)),
        window_from=row.window_from,
        window_until=row.window_until,
        valid_from=row.starts_at,
        valid_until=row.ends_at,
        granted_at=row.granted_at,
        purpose=row.purpose,
        include_confidential=bool(row.include_confidential),
        enhancements=bool(row.enhancements),
        status=row.status,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        revoke_reason=row.revoke_reason,
        active=parsed.is_active_at(scope.at.time),
        active_now=GrantScope.from_row(current_row._mapping).is_active_at(scope.now),
    )


def _by_agreement(conn: Connection, keys: list[tuple[At, str]]) -> list[list[Versions]]:
    found: dict[tuple[At, str], list[Versions]] = {key: [] for key in keys}
    for at in {at for at, _ in keys}:
        ids = sorted({a for k_at, a in keys if k_at == at})
        query = (
            select(GRANTS)
            .where(GRANTS.c.agreement.in_(ids), at_position(GRANTS, at))
            .order_by(GRANTS.c.granted_at, GRANTS.c.grant_id)
        )
        for versions in with_current(conn, list(conn.execute(query))):
            found[(at, versions[0].agreement)].append(versions)
    return [found[key] for key in keys]


def _visible(conn: Connection, at: At, agreements: list[str], party: str) -> list[Versions]:
    query = (
        select(GRANTS)
        .where(at_position(GRANTS, at))
        .where(
            or_(
                GRANTS.c.agreement.in_(agreements),
                GRANTS.c.grantee == party,
                GRANTS.c.grantor == party,
            )
        )
        .order_by(GRANTS.c.granted_at, GRANTS.c.grant_id)
    )
    return with_current(conn, list(conn.execute(query)))


async def agreement_grants(scope: Scope, info: Info, agreement: str) -> list[Grant]:
    """The grants under an agreement the caller may see."""
    rows = await loader(info, "grants_by_agreement", _by_agreement).load((scope.at, agreement))
    return [grant_of(row, scope) for row in rows]


async def list_grants(
    source: Any, info: Info, agreement: str | None = None, active: bool | None = None
) -> list[Grant]:
    """The root ``grants``: under visible agreements, plus the caller's own."""
    scope = await scope_of(source, info)
    if agreement is not None:
        require_agreement(scope, agreement, "agreementId")
        grants = await agreement_grants(scope, info, agreement)
    else:
        visible = scope.authority.visible_agreements(scope.now)
        rows = await read(info, _visible, scope.at, visible, scope.party)
        grants = [grant_of(row, scope) for row in rows]
    return [g for g in grants if active is None or g.active == active]


async def grants_at(
    source: Any, info: Info, party: str, valid_at: str, known_at: int | None
) -> list[Grant]:
    """The grants ``party`` held in force at ``valid_at``, as the ledger knew them at
    position ``known_at`` (default: the views' head); only grants the caller may see."""
    scope = await scope_of(source, info)
    head = scope.at.position
    if known_at is not None and not 0 <= known_at <= head:
        raise ValidationFailed(f"knownAt must be between 0 and {head}", field="knownAt")
    at = At(head if known_at is None else known_at, valid_at)
    visible = scope.authority.visible_agreements(scope.now)
    rows = await read(info, _visible, at, visible, scope.party)
    then = Scope(scope.authority, scope.now, at)
    held = [grant_of(versions, then) for versions in rows if versions[0].grantee == party]
    return [grant for grant in held if grant.active]
