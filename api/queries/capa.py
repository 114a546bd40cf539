# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""``capas(agreementId, batch, open)``: CAPAs and the batch records they address.

A CAPA is read by whoever may read its batch (the agreement's sponsor and CMO, and active
grantees whose grant opens the batch); ``batch`` asks for one batch the caller may see
(FORBIDDEN otherwise). ``Batch.capas`` lists a batch's open CAPAs.
"""

from __future__ import annotations

import json
from typing import Any

import strawberry

from api.queries.agreements import named_agreements
from api.queries.common import At, Info, Scope, by_agreement, loader, scope_of
from projections.capa import CAPAS

__all__ = ["Capa", "batch_capas", "list_capas"]


@strawberry.type(description="A corrective and preventive action on a batch's records.")
class Capa:
    id: strawberry.ID = strawberry.field(description="The CAPA's subject.")
    agreement_id: strawberry.ID
    capa_id: str = strawberry.field(description="The CAPA number, e.g. CAPA-2026-003.")
    batch: str
    records: list[str] = strawberry.field(description="The deviation, OOS or OOT record ids.")
    description: str
    owner: str
    opened_by: str
    opened_at: str
    status: str = strawberry.field(description="open or closed.")
    open: bool
    closed_at: str | None
    effectiveness_check: str | None
    close_reason: str | None


def _capa(row: Any, at: At) -> Capa:
    return Capa(
        id=strawberry.ID(row.capa),
        agreement_id=strawberry.ID(row.agreement),
        capa_id=row.capa_id,
        batch=row.batch,
        records=list(json.loads(row.records)),
        description=row.description,
        owner=row.owner,
        opened_by=row.opened_by,
        opened_at=row.opened_at,
        status=row.status,
        open=row.status == "open",
        closed_at=row.closed_at,
        effectiveness_check=row.effectiveness_check,
        close_reason=row.close_reason,
    )


_BY_AGREEMENT = by_agreement(CAPAS, (CAPAS.c.opened_at, CAPAS.c.capa_id), _capa)


async def _visible(scope: Scope, info: Info, agreements: list[str]) -> list[Capa]:
    found = await loader(info, "capas", _BY_AGREEMENT).load_many(
        [(scope.at, a) for a in agreements]
    )
    return [
        capa
        for capas in found
        for capa in capas
        if scope.authority.sees_batch(str(capa.agreement_id), capa.batch, scope.now)
    ]


async def batch_capas(scope: Scope, info: Info, agreement: str, batch: str) -> list[Capa]:
    """The open CAPAs of a batch the caller may see."""
    found = await _visible(scope, info, [agreement])
    return [capa for capa in found if capa.batch == batch and capa.open]


async def list_capas(
    source: Any,
    info: Info,
    agreement: str | None = None,
    batch: str | None = None,
    open: bool | None = None,
) -> list[Capa]:
    """The root ``capas``: of one batch, under one agreement, or under every visible one."""
    scope = await scope_of(source, info)
    agreements = await named_agreements(scope, info, agreement, batch)
    found = await _visible(scope, info, agreements)
    return [
        capa
        for capa in found
        if (batch is None or capa.batch == batch) and (open is None or capa.open == open)
    ]
