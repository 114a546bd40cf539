# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""``changes(agreementId, open)``: change proposals (R22) under the agreements the caller may
see (the sponsor, the CMO and active grantees, as for the agreement itself), with their EC
impact, reporting category, decision and implementation. A change is open until it is
rejected or implemented."""

from __future__ import annotations

import json
from typing import Any

import strawberry

from api.queries.agreements import named_agreements
from api.queries.common import At, Info, by_agreement, loader, scope_of
from projections.changes import CHANGES, CLOSED_CHANGE_STATUSES

__all__ = ["Change", "list_changes"]


@strawberry.type(description="A change proposal under an agreement, and where it stands (R22).")
class Change:
    id: strawberry.ID = strawberry.field(description="The change's subject.")
    agreement_id: strawberry.ID
    change_id: str = strawberry.field(description="The change number, e.g. CC-2026-014.")
    title: str
    description: str
    ec_impact: bool = strawberry.field(description="Whether it changes an established condition.")
    reporting_category: str = strawberry.field(
        description="prior-approval, cbe-30, cbe-0 or annual-report."
    )
    affected_parameters: list[str] = strawberry.field(description="Names of the parameters.")
    proposed_by: str
    proposed_at: str
    status: str = strawberry.field(description="proposed, approved, rejected or implemented.")
    open: bool = strawberry.field(description="Neither rejected nor implemented.")
    decision: str | None = strawberry.field(description="approved or rejected, once decided.")
    decided_by: str | None
    decided_at: str | None
    rejection_reason: str | None
    implemented_by: str | None
    implemented_at: str | None


def _change(row: Any, at: At) -> Change:
    return Change(
        id=strawberry.ID(row.change),
        agreement_id=strawberry.ID(row.agreement),
        change_id=row.change_id,
        title=row.title,
        description=row.description,
        ec_impact=bool(row.ec_impact),
        reporting_category=row.reporting_category,
        affected_parameters=list(json.loads(row.affected_parameters)),
        proposed_by=row.proposed_by,
        proposed_at=row.proposed_at,
        status=row.status,
        open=row.status not in CLOSED_CHANGE_STATUSES,
        decision=row.decision,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        rejection_reason=row.rejection_reason,
        implemented_by=row.implemented_by,
        implemented_at=row.implemented_at,
    )


_BY_AGREEMENT = by_agreement(CHANGES, (CHANGES.c.proposed_at, CHANGES.c.change_id), _change)


async def list_changes(
    source: Any, info: Info, agreement: str | None = None, open: bool | None = None
) -> list[Change]:
    """The root ``changes``: under one agreement, or every visible one."""
    scope = await scope_of(source, info)
    agreements = await named_agreements(scope, info, agreement, None)
    found = await loader(info, "changes", _BY_AGREEMENT).load_many(
        [(scope.at, a) for a in agreements]
    )
    return [c for changes in found for c in changes if open is None or c.open == open]
