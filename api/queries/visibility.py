# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""``visibleTo(party, agreementId, at, knownAt)``: what a named party could read of an
agreement at a valid time, reproduced from the grants in force then, as the ledger knew
them at position ``knownAt`` (default: now).

The answer is judged by the rules the API applies to that party itself
(:class:`api.permissions.Authority`, loaded for the party at ``knownAt`` and asked at
``at``), so it says what the party's own queries would have answered. The agreement's
parties may ask, and an auditor or regulator holding an active grant under it; anyone
else is refused naming ``agreementId``.
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from sqlalchemy import select
from sqlalchemy.engine import Connection

from api.access import read_authority
from api.permissions import Authority, forbidden, merge_windows
from api.queries.common import At, Info, Scope, read, scope_of, time_text
from api.queries.grants import Grant, grants_at
from ledger.domain.scope import DataItem
from ledger.errors import NotFound, ValidationFailed
from projections.data import BATCHES
from projections.ownership import DATA_OWNERSHIP
from projections.parties import PARTIES
from projections.temporal import as_of

__all__ = ["BatchAccess", "ClassAccess", "PartyAccess", "visible_to"]

#: Roles that may ask what another party could see, given a grant under the agreement.
OVERSIGHT_ROLES = frozenset({"auditor", "regulator"})


@strawberry.type(description="What a party could read of one data class of one batch.")
class ClassAccess:
    data_class: str
    access: str = strawberry.field(
        description="all; some (limited to parameters or data-time windows); or none."
    )
    parameters: list[str] = strawberry.field(description="Limited to these (empty: all).")
    windows: list[str] = strawberry.field(
        description="Limited to these data-time windows, 'from/until' (empty: all times)."
    )
    confidential: bool = strawberry.field(description="Confidential elements opened too.")


@strawberry.type(description="What a party could read of one batch.")
class BatchAccess:
    batch: str
    classes: list[ClassAccess]


@strawberry.type(description="What a party could read of an agreement at a time.")
class PartyAccess:
    party: str
    agreement_id: strawberry.ID
    at: str = strawberry.field(description="The valid time asked about.")
    known_at: int = strawberry.field(description="The log position the grants are read at.")
    role: str = strawberry.field(description="sponsor, cmo, grantee or none.")
    sees_agreement: bool
    enhancements: bool = strawberry.field(description="Claims and dossiers opened.")
    grants: list[Grant] = strawberry.field(description="Grants to the party in force then.")
    batches: list[BatchAccess]


def _role(authority: Authority, agreement: str, at: str) -> str:
    roles = authority.roles(agreement)
    if roles is not None and authority.party == roles.sponsor:
        return "sponsor"
    if roles is not None and authority.party == roles.cmo:
        return "cmo"
    return "grantee" if authority.active_grants(agreement, at) else "none"


def _access(
    item: DataItem,
    access: str,
    confidential: bool,
    parameters: list[str] | None = None,
    windows: list[str] | None = None,
) -> ClassAccess:
    return ClassAccess(
        data_class=item.data_class,
        access=access,
        parameters=parameters or [],
        windows=windows or [],
        confidential=confidential,
    )


def _class_access(authority: Authority, item: DataItem, at: str) -> ClassAccess:
    roles = authority.roles(item.agreement)
    cmo = None if roles is None else roles.cmo
    confidential = authority.party == cmo or any(
        g.include_confidential and g.grantor == cmo and g.opens_batch(item.batch)
        for g in authority.active_grants(item.agreement, at)
    )
    if authority.owns(item):
        return _access(item, "all", confidential)
    grants = authority.data_grants(item, at)
    if not grants:
        return _access(item, "none", confidential)
    if any(not g.parameters and g.window_from is None and g.window_until is None for g in grants):
        return _access(item, "all", confidential)
    parameters = (
        sorted({p for g in grants for p in g.parameters})
        if all(g.parameters for g in grants)
        else []
    )
    windows = merge_windows((g.window_from, g.window_until) for g in grants)
    shown = [] if (None, None) in windows else [f"{lo or ''}/{hi or ''}" for lo, hi in windows]
    return _access(item, "some", confidential, parameters, shown)


def _party_authority(conn: Connection, party: str, agreement: str, at: At) -> Authority:
    role = conn.execute(
        select(PARTIES.c.role).where(PARTIES.c.party == party, as_of(PARTIES, at.position))
    ).scalar()
    if role is None:
        raise NotFound(f"no party {party!r} was admitted by position {at.position}", field="party")
    return read_authority(conn, party, str(role), at.position)


def _batches(conn: Connection, agreement: str, at: At) -> list[str]:
    query = (
        select(BATCHES.c.batch)
        .where(BATCHES.c.agreement == agreement, as_of(BATCHES, at.position))
        .where(BATCHES.c.started_at <= at.time)
        .order_by(BATCHES.c.batch)
    )
    return list(conn.execute(query).scalars())


def _classes(conn: Connection, agreement: str, at: At) -> list[str]:
    """Every class the agreement defined by ``at`` (retired ones too: their data stays)."""
    query = (
        select(DATA_OWNERSHIP.c.data_class)
        .where(DATA_OWNERSHIP.c.agreement == agreement, as_of(DATA_OWNERSHIP, at.position))
        .order_by(DATA_OWNERSHIP.c.data_class)
    )
    return list(conn.execute(query).scalars())


def _check_asker(scope: Scope, agreement: str) -> None:
    authority = scope.authority
    if authority.is_party(agreement):
        return
    if authority.role in OVERSIGHT_ROLES and authority.active_grants(agreement, scope.now):
        return
    raise forbidden(
        "only the agreement's parties, and an auditor or regulator holding an active grant "
        "under it, may ask what another party could see of it",
        "agreementId",
    )


async def visible_to(
    source: object,
    info: Info,
    party: str,
    agreement: str,
    at: datetime,
    known_at: int | None,
) -> PartyAccess:
    """The ``visibleTo`` field."""
    scope = await scope_of(source, info)
    _check_asker(scope, agreement)
    head = scope.at.position
    if known_at is not None and not 0 <= known_at <= head:
        raise ValidationFailed(f"knownAt must be between 0 and {head}", field="knownAt")
    valid = str(time_text(at, "at"))
    then = At(head if known_at is None else known_at, valid)
    authority = await read(info, _party_authority, party, agreement, then)
    names = await read(info, _batches, agreement, then)
    classes = await read(info, _classes, agreement, then)
    batches = [
        BatchAccess(
            batch=name,
            classes=[
                _class_access(authority, DataItem(agreement, data_class, name), valid)
                for data_class in classes
            ],
        )
        for name in names
    ]
    grants = await grants_at(source, info, party, valid, then.position)
    return PartyAccess(
        party=party,
        agreement_id=strawberry.ID(agreement),
        at=valid,
        known_at=then.position,
        role=_role(authority, agreement, valid),
        sees_agreement=authority.sees_agreement(agreement, valid),
        enhancements=authority.sees_enhancements(agreement, valid),
        grants=[g for g in grants if str(g.agreement_id) == agreement],
        batches=batches,
    )
