# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""``reviews(overdue)``: each visible agreement's review schedule (due or overdue at the
instant asked about) with its completed reviews."""

from __future__ import annotations

import json
from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.engine import Connection

from api.queries.agreements import require_agreement
from api.queries.common import At, Info, Scope, at_position, loader, scope_of
from projections.reviews import REVIEWS, SCHEDULE, review_state

__all__ = ["Review", "ReviewStatus", "agreement_review", "list_reviews"]


@strawberry.type(description="A periodic review, signed by both parties.")
class Review:
    id: strawberry.ID
    period_end: str
    next_due: str
    outcome: str
    parameters_confirmed: list[str]
    parameters_revised: list[str]
    completed_by: str
    countersigned_by: str
    completed_at: str


@strawberry.type(description="An agreement's review schedule and its reviews so far.")
class ReviewStatus:
    agreement_id: strawberry.ID
    cadence_months: int
    effective_from: str
    next_due: str
    last_completed_at: str | None
    last_period_end: str | None
    state: str = strawberry.field(description="due, overdue, or the agreement's end state.")
    overdue: bool
    history: list[Review]


def _review(row: Any) -> Review:
    return Review(
        id=strawberry.ID(row.review),
        period_end=row.period_end,
        next_due=row.next_due,
        outcome=row.outcome,
        parameters_confirmed=list(json.loads(row.parameters_confirmed)),
        parameters_revised=list(json.loads(row.parameters_revised)),
        completed_by=row.completed_by,
        countersigned_by=row.countersigned_by,
        completed_at=row.completed_at,
    )


def _statuses(conn: Connection, keys: list[tuple[At, str]]) -> list[ReviewStatus | None]:
    found: dict[tuple[At, str], ReviewStatus] = {}
    for at in {at for at, _ in keys}:
        ids = sorted({a for k_at, a in keys if k_at == at})
        history: dict[str, list[Review]] = {}
        query = (
            select(REVIEWS)
            .where(REVIEWS.c.agreement.in_(ids), at_position(REVIEWS, at))
            .order_by(REVIEWS.c.completed_at)
        )
        for row in conn.execute(query):
            history.setdefault(row.agreement, []).append(_review(row))
        query = select(SCHEDULE).where(SCHEDULE.c.agreement.in_(ids), at_position(SCHEDULE, at))
        for row in conn.execute(query):
            state = review_state(dict(row._mapping), at.time)
            found[(at, row.agreement)] = ReviewStatus(
                agreement_id=strawberry.ID(row.agreement),
                cadence_months=row.cadence_months,
                effective_from=row.effective_from,
                next_due=row.next_due,
                last_completed_at=row.last_completed_at,
                last_period_end=row.last_period_end,
                state=state,
                overdue=state == "overdue",
                history=history.get(row.agreement, []),
            )
    return [found.get(key) for key in keys]


async def agreement_review(scope: Scope, info: Info, agreement: str) -> ReviewStatus | None:
    """The review status of an agreement the caller may see (null before it is signed)."""
    return await loader(info, "reviews", _statuses).load((scope.at, agreement))


async def list_reviews(
    source: Any, info: Info, agreement: str | None = None, overdue: bool | None = None
) -> list[ReviewStatus]:
    """The root ``reviews``: one status per visible agreement in force (or ended)."""
    scope = await scope_of(source, info)
    if agreement is not None:
        require_agreement(scope, agreement, "agreementId")
        agreements = [agreement]
    else:
        agreements = scope.authority.visible_agreements(scope.now)
    found = await loader(info, "reviews", _statuses).load_many([(scope.at, a) for a in agreements])
    return [s for s in found if s is not None and (overdue is None or s.overdue == overdue)]
