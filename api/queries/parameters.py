# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""``parameters(agreementId)``: CPPs, CQAs, KPIs and IPCs with every version of their
limits and every revision, for the agreement's sponsor, CMO and active grantees."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.engine import Connection
from strawberry.scalars import JSON

from api.queries.agreements import require_agreement
from api.queries.common import (
    At,
    Info,
    Scope,
    by_agreement,
    loader,
    scope_of,
    time_text,
)
from ledger.domain.validity import successive
from projections.parameters import LIMITS, PARAMETERS, REVISIONS

__all__ = [
    "Limits",
    "LimitsVersion",
    "Parameter",
    "ParameterRevision",
    "agreement_parameters",
    "limits_versions",
    "list_parameters",
]


@strawberry.type(description="A pair of limits; either side may be open (null).")
class Limits:
    low: str | None
    high: str | None


@strawberry.type(description="One version of a parameter's limits and when it took effect.")
class LimitsVersion:
    version: int
    effective_from: str
    retroactive: bool = strawberry.field(
        description="Made effective from a time before its approval was recorded (with a reason)."
    )
    revision: str | None = strawberry.field(description="The approved revision (null: defined).")
    unit: str
    target: str | None
    alert: Limits
    action: Limits
    status: str = strawberry.field(description="hypothesis or confirmed.")
    rationale: str
    in_force: bool = strawberry.field(description="In force at the position asked about.")


@strawberry.type(description="A proposed change of a parameter and its outcome.")
class ParameterRevision:
    id: str
    proposed_by: str
    proposed_at: str
    reason: str | None
    changes: JSON
    outcome: str = strawberry.field(description="pending, approved, rejected or withdrawn.")
    decided_by: str | None
    decided_at: str | None
    decision_reason: str | None


@strawberry.type(description="A critical process parameter, quality attribute, KPI or IPC.")
class Parameter:
    id: strawberry.ID
    agreement_id: strawberry.ID
    name: str
    kind: str = strawberry.field(description="CPP, CQA, KPI or IPC.")
    unit: str = strawberry.field(description="UCUM unit code.")
    target: str | None
    alert: Limits
    action: Limits
    status: str = strawberry.field(description="hypothesis or confirmed.")
    rationale: str
    state: str = strawberry.field(description="active or retired.")
    limits_version: int
    pending_revision: str | None
    defined_by: str
    defined_at: str
    retired_at: str | None
    retired_by: str | None
    at: strawberry.Private[At]

    @strawberry.field(description="Every version of the limits, oldest first.")
    async def limits_history(self, info: Info) -> list[LimitsVersion]:
        return await loader(info, "limits_history", _history).load((self.at, str(self.id)))

    @strawberry.field(
        description="The limits in force at a valid time (null: none then): each version "
        "from its effective time until the next one's, or the retirement. Under asOf, as "
        "the ledger knew them at that position."
    )
    async def limits_at(self, info: Info, time: datetime) -> LimitsVersion | None:
        when = time_text(time, "time")
        versions = await self.limits_history(info)
        starts = {v.version: v.effective_from for v in versions}
        intervals = successive(starts, self.retired_at)
        found = [v for v in versions if when is not None and intervals[v.version].covers(when)]
        return found[-1] if found else None

    @strawberry.field(description="Every revision proposed, oldest first.")
    async def revisions(self, info: Info) -> list[ParameterRevision]:
        return await loader(info, "revisions", _REVISIONS).load((self.at, str(self.id)))


def limits_version(row: Any, at: At) -> LimitsVersion:
    """The GraphQL view of a ``proj_parameter_limits`` row."""
    return LimitsVersion(
        version=row.limits_version,
        effective_from=row.effective_from,
        retroactive=bool(row.retroactive),
        revision=row.revision,
        unit=row.unit,
        target=row.target,
        alert=Limits(low=row.alert_low, high=row.alert_high),
        action=Limits(low=row.action_low, high=row.action_high),
        status=row.status,
        rationale=row.rationale,
        in_force=row.valid_to is None or row.valid_to > at.position,
    )


def limits_versions(conn: Connection, at: At, ids: list[str]) -> dict[str, list[LimitsVersion]]:
    """Each parameter's limits versions recorded up to ``at``, oldest first."""
    found: dict[str, list[LimitsVersion]] = {i: [] for i in ids}
    query = (
        select(LIMITS)
        .where(LIMITS.c.parameter.in_(ids), LIMITS.c.valid_from <= at.position)
        .order_by(LIMITS.c.parameter, LIMITS.c.limits_version)
    )
    for row in conn.execute(query):
        found[row.parameter].append(limits_version(row, at))
    return found


def _history(conn: Connection, keys: list[tuple[At, str]]) -> list[list[LimitsVersion]]:
    result: dict[tuple[At, str], list[LimitsVersion]] = {}
    for at in {at for at, _ in keys}:
        ids = sorted({p for k_at, p in keys if k_at == at})
        for parameter, versions in limits_versions(conn, at, ids).items():
            result[(at, parameter)] = versions
    return [result[key] for key in keys]


def _revision(row: Any, at: At) -> ParameterRevision:
    return ParameterRevision(
        id=row.revision,
        proposed_by=row.proposed_by,
        proposed_at=row.proposed_at,
        reason=row.reason,
        changes=json.loads(row.changes),
        outcome=row.outcome,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision_reason=row.decision_reason,
    )


_REVISIONS = by_agreement(
    REVISIONS, (REVISIONS.c.proposed_at, REVISIONS.c.revision), _revision, key="parameter"
)


def parameter_of(row: Any, at: At) -> Parameter:
    """The GraphQL view of a ``proj_parameters`` row."""
    return Parameter(
        id=strawberry.ID(row.parameter),
        agreement_id=strawberry.ID(row.agreement),
        name=row.name,
        kind=row.kind,
        unit=row.unit,
        target=row.target,
        alert=Limits(low=row.alert_low, high=row.alert_high),
        action=Limits(low=row.action_low, high=row.action_high),
        status=row.status,
        rationale=row.rationale,
        state=row.state,
        limits_version=row.limits_version,
        pending_revision=row.pending_revision,
        defined_by=row.defined_by,
        defined_at=row.defined_at,
        retired_at=row.retired_at,
        retired_by=row.retired_by,
        at=at,
    )


_PARAMETERS = by_agreement(PARAMETERS, (PARAMETERS.c.agreement, PARAMETERS.c.name), parameter_of)


async def agreement_parameters(scope: Scope, info: Info, agreement: str) -> list[Parameter]:
    """The parameters of an agreement the caller may see."""
    return await loader(info, "parameters", _PARAMETERS).load((scope.at, agreement))


async def list_parameters(source: Any, info: Info, agreement: str) -> list[Parameter]:
    """The root ``parameters(agreementId)``: FORBIDDEN for an agreement the caller may not see."""
    scope = await scope_of(source, info)
    require_agreement(scope, agreement, "agreementId")
    return await agreement_parameters(scope, info, agreement)
