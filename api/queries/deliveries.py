# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""``deliveries(late)``: what each agreement requires per batch and data class versus
what arrived, for the batches the caller may see, and its periodic obligations (one per
class and period, ``batch`` null) for the agreements the caller may see.

``state`` is ``on_time``, ``late`` (arrived after the deadline), ``missing`` (the
deadline passed with nothing) or ``awaiting``, at the instant asked about; ``late: true``
selects ``late`` and ``missing``. Periods are those begun by that instant
(:func:`projections.deliveries.periodic_deliveries`; docs/agreements.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.engine import Connection

from api.queries.agreements import named_agreements
from api.queries.common import At, Info, Scope, SharedLoader, at_position, loader, scope_of
from projections.deliveries import (
    DELIVERIES,
    delivery_state,
    late_or_missing,
    periodic_deliveries,
)
from projections.times import utc_time

__all__ = ["Delivery", "agreement_deliveries", "list_deliveries"]

_LATE = ("late", "missing")


@strawberry.type(
    description="An obligation to deliver one class of a batch's data, or one period's "
    "submission of a class delivered periodically."
)
class Delivery:
    agreement_id: strawberry.ID
    batch: str | None = strawberry.field(description="The batch; null for a periodic rule.")
    data_class: str
    item: str = strawberry.field(description="The record, for per-detection deadlines; else ''.")
    rule: str = strawberry.field(
        description="batch_end or detection (per batch), every_days or monthly_on_day (periodic)."
    )
    within_hours: int | None = strawberry.field(description="Per-batch rules: hours to deliver.")
    every_days: int | None = strawberry.field(
        default=None, description="every_days rules: the period's length in days."
    )
    monthly_on_day: int | None = strawberry.field(
        default=None, description="monthly_on_day rules: the day of the month it is due by."
    )
    period: int | None = strawberry.field(
        default=None, description="Periodic rules: the period's number, from 1."
    )
    period_start: str | None = strawberry.field(
        default=None, description="Periodic rules: when the period began (its end is dueAt)."
    )
    due_at: str | None
    first_arrived_at: str | None
    first_submission: str | None
    state: str = strawberry.field(description="on_time, late, missing or awaiting.")
    late: bool


def _obligations(
    late_only: bool,
) -> Callable[[Connection, list[tuple[At, str]]], list[list[Delivery]]]:
    """A loader's batch function: per ``(at, agreement)``, its obligations at ``at`` (only
    the late and missing ones when ``late_only``, selected in SQL)."""

    def rows(conn: Connection, keys: list[tuple[At, str]]) -> list[list[Delivery]]:
        found: dict[tuple[At, str], list[Delivery]] = {key: [] for key in keys}
        for at in {at for at, _ in keys}:
            ids = sorted({a for k_at, a in keys if k_at == at})
            query = (
                select(DELIVERIES)
                .where(DELIVERIES.c.agreement.in_(ids), at_position(DELIVERIES, at))
                .order_by(DELIVERIES.c.batch, DELIVERIES.c.data_class, DELIVERIES.c.item)
            )
            if late_only:
                query = query.where(late_or_missing(at.time))
            for row in conn.execute(query):
                state = delivery_state(dict(row._mapping), at.time)
                found[(at, row.agreement)].append(_delivery(dict(row._mapping), state))
            periodic = periodic_deliveries(conn, ids, at.position, utc_time(at.time))
            for agreement, periodic_rows in periodic.items():
                found[(at, agreement)].extend(
                    _delivery(row, str(row["status"])) for row in periodic_rows
                )
        return [found[key] for key in keys]

    return rows


_ALL = _obligations(late_only=False)
_LATE_ONLY = _obligations(late_only=True)


def _load(info: Info, late: bool | None) -> SharedLoader[tuple[At, str], list[Delivery]]:
    if late:
        return loader(info, "late_deliveries", _LATE_ONLY)
    return loader(info, "deliveries", _ALL)


def _delivery(row: dict[str, Any], state: str) -> Delivery:
    return Delivery(
        agreement_id=strawberry.ID(row["agreement"]),
        batch=row["batch"],
        data_class=row["data_class"],
        item=row["item"],
        rule=row["rule"],
        within_hours=row["within_hours"],
        every_days=row.get("every_days"),
        monthly_on_day=row.get("monthly_on_day"),
        period=row.get("period"),
        period_start=row.get("period_start"),
        due_at=row["due_at"],
        first_arrived_at=row["first_arrived_at"],
        first_submission=row["first_submission"],
        state=state,
        late=state in _LATE,
    )


def _keep(scope: Scope, delivery: Delivery, late: bool | None, batch: str | None) -> bool:
    if late is not None and delivery.late != late:
        return False
    if batch is not None and delivery.batch != batch:
        return False
    agreement = str(delivery.agreement_id)
    if delivery.batch is None:  # periodic: the agreement's, not one batch's
        return scope.authority.sees_agreement(agreement, scope.now)
    return scope.authority.sees_batch(agreement, delivery.batch, scope.now)


async def agreement_deliveries(
    scope: Scope, info: Info, agreement: str, late: bool | None = None, batch: str | None = None
) -> list[Delivery]:
    """Deliveries under an agreement the caller may see, of the batches it may see."""
    rows = await _load(info, late).load((scope.at, agreement))
    return [d for d in rows if _keep(scope, d, late, batch)]


async def list_deliveries(
    source: Any,
    info: Info,
    agreement: str | None = None,
    batch: str | None = None,
    late: bool | None = None,
) -> list[Delivery]:
    """The root ``deliveries``: FORBIDDEN for a named agreement or batch not visible."""
    scope = await scope_of(source, info)
    agreements = await named_agreements(scope, info, agreement, batch)
    result: list[Delivery] = []
    for found in await _load(info, late).load_many([(scope.at, a) for a in agreements]):
        result.extend(found)
    return [d for d in result if _keep(scope, d, late, batch)]
