# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""``deliveries(late)``: what each agreement requires per batch and data class versus
what arrived, for the batches the caller may see.

``state`` is ``on_time``, ``late`` (arrived after the deadline), ``missing`` (the
deadline passed with nothing) or ``awaiting``, at the instant asked about; ``late: true``
selects ``late`` and ``missing``.
"""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.engine import Connection

from api.permissions import forbidden
from api.queries.agreements import require_agreement
from api.queries.batches import batch_agreement
from api.queries.common import At, Info, Scope, at_position, loader, read, scope_of
from projections.deliveries import DELIVERIES, delivery_state

__all__ = ["Delivery", "agreement_deliveries", "list_deliveries"]

_LATE = ("late", "missing")


@strawberry.type(description="An obligation to deliver one class of a batch's data.")
class Delivery:
    agreement_id: strawberry.ID
    batch: str
    data_class: str
    item: str = strawberry.field(description="The record, for per-detection deadlines; else ''.")
    rule: str = strawberry.field(description="batch_end or detection.")
    within_hours: int
    due_at: str | None
    first_arrived_at: str | None
    first_submission: str | None
    state: str = strawberry.field(description="on_time, late, missing or awaiting.")
    late: bool


def _by_agreement(conn: Connection, keys: list[tuple[At, str]]) -> list[list[Delivery]]:
    found: dict[tuple[At, str], list[Delivery]] = {key: [] for key in keys}
    for at in {at for at, _ in keys}:
        ids = sorted({a for k_at, a in keys if k_at == at})
        query = (
            select(DELIVERIES)
            .where(DELIVERIES.c.agreement.in_(ids), at_position(DELIVERIES, at))
            .order_by(DELIVERIES.c.batch, DELIVERIES.c.data_class, DELIVERIES.c.item)
        )
        for row in conn.execute(query):
            state = delivery_state(dict(row._mapping), at.time)
            found[(at, row.agreement)].append(
                Delivery(
                    agreement_id=strawberry.ID(row.agreement),
                    batch=row.batch,
                    data_class=row.data_class,
                    item=row.item,
                    rule=row.rule,
                    within_hours=row.within_hours,
                    due_at=row.due_at,
                    first_arrived_at=row.first_arrived_at,
                    first_submission=row.first_submission,
                    state=state,
                    late=state in _LATE,
                )
            )
    return [found[key] for key in keys]


def _keep(scope: Scope, delivery: Delivery, late: bool | None, batch: str | None) -> bool:
    if late is not None and delivery.late != late:
        return False
    if batch is not None and delivery.batch != batch:
        return False
    return scope.authority.sees_batch(str(delivery.agreement_id), delivery.batch, scope.now)


async def agreement_deliveries(
    scope: Scope, info: Info, agreement: str, late: bool | None = None, batch: str | None = None
) -> list[Delivery]:
    """Deliveries under an agreement the caller may see, of the batches it may see."""
    rows = await loader(info, "deliveries", _by_agreement).load((scope.at, agreement))
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
    if agreement is not None:
        require_agreement(scope, agreement, "agreementId")
    if batch is not None:
        owner = await read(info, batch_agreement, batch)
        if owner is None or not scope.authority.sees_batch(owner, batch, scope.now):
            raise forbidden(
                f"{scope.party} may not read batch {batch} (or it does not exist)", "batch"
            )
        agreements = [owner] if agreement in (None, owner) else []
    elif agreement is not None:
        agreements = [agreement]
    else:
        agreements = scope.authority.visible_agreements(scope.now)
    result: list[Delivery] = []
    for found in await loader(info, "deliveries", _by_agreement).load_many(
        [(scope.at, a) for a in agreements]
    ):
        result.extend(found)
    return [d for d in result if _keep(scope, d, late, batch)]
