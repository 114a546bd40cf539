# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""``traceBatch(id)``: one batch end to end, for an auditor (R28).

It answers, at one log position (``position``, with the latest signed ``checkpoint``):
the batch and its data (per the data rules: a part the caller may not read is refused
on its own field), every signed event of the batch, its corrections, the terms and the
parameter limits in force at any time while the batch ran (from its start to its end,
or to now), the grants that open the batch to other parties, and the deviations, OOS
and OOT records with their acknowledgements.
"""

from __future__ import annotations

from typing import Any

import strawberry
from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from api.log_fields import Checkpoint, in_thread
from api.permissions import GrantScope
from api.queries.agreements import Agreement, TermsVersion, load_agreement
from api.queries.audit import ENTRY_COLUMNS, AuditEntry, audit_entry
from api.queries.batches import Batch, Submission, find_batch
from api.queries.common import At, Info, Scope, as_json, read, request_scope
from api.queries.grants import Grant, grant_of, with_current
from api.queries.parameters import LimitsVersion, limits_version
from api.queries.records import EventRecord, RecordFilter, read_events, require_class
from ledger.errors import NotFound
from projections.access import GRANTS
from projections.agreements import TERMS
from projections.audit import AUDIT, resolve_time
from projections.parameters import LIMITS, PARAMETERS
from projections.temporal import as_of

__all__ = ["BatchTrace", "ParameterLimits", "trace_batch"]

_DEVIATIONS = frozenset({"deviation", "oos", "oot"})


@strawberry.type(
    description="A parameter and the versions of its limits in force during the batch."
)
class ParameterLimits:
    parameter_id: strawberry.ID
    name: str
    kind: str
    versions: list[LimitsVersion]


@strawberry.type(description="Everything an auditor needs for one batch, at one log position.")
class BatchTrace:
    position: int = strawberry.field(description="The log position the trace was read at.")
    answered_at: str
    checkpoint: Checkpoint | None = strawberry.field(
        description="The latest signed checkpoint: verify the events' inclusion against it."
    )
    batch: Batch
    agreement: Agreement
    terms_in_force: list[TermsVersion] = strawberry.field(
        description="Every version of the terms in force at some time while the batch ran."
    )
    parameter_limits: list[ParameterLimits] = strawberry.field(
        description="Each parameter's limits in force at some time while the batch ran."
    )
    grants: list[Grant] = strawberry.field(
        description="Grants under the agreement that open this batch (any state)."
    )
    events: list[AuditEntry] = strawberry.field(
        description="Every signed event of the batch, in log order; `event` for the envelope."
    )
    scope: strawberry.Private[Scope]

    @strawberry.field(description="Corrections of the batch's data, with their reasons.")
    async def corrections(self, info: Info) -> list[Submission]:
        return [s for s in await self.batch.submissions(info) if s.correction]

    @strawberry.field(description="Deviation, OOS and OOT records with their acknowledgements.")
    async def deviations(self, info: Info) -> list[EventRecord] | None:
        agreement = str(self.batch.agreement_id)
        require_class(self.scope, agreement, self.batch.id, "event")
        wanted = RecordFilter(kinds=_DEVIATIONS, include_superseded=True)
        return await read(info, read_events, self.scope, agreement, self.batch.id, wanted)


def _span(conn: Connection, batch: Batch, at: At) -> tuple[int, int]:
    start = min(resolve_time(conn, batch.started_at), at.position)
    end = at.position if batch.ended_at is None else resolve_time(conn, batch.ended_at)
    return start, min(max(end, start), at.position)


def _overlapping(table: Any, start: int, end: int, at: At) -> Any:
    # A row version in force at some position of [start, end], as recorded by `at`.
    ended = or_(table.c.valid_to.is_(None), table.c.valid_to > start)
    return (table.c.valid_from <= end) & ended & (table.c.valid_from <= at.position)


def _terms(conn: Connection, agreement: str, start: int, end: int, at: At) -> list[TermsVersion]:
    query = (
        select(TERMS)
        .where(TERMS.c.agreement == agreement, _overlapping(TERMS, start, end, at))
        .order_by(TERMS.c.terms_version)
    )
    return [
        TermsVersion(
            version=row.terms_version,
            effective_from=row.effective_from,
            terms=as_json(row.terms),
            in_force=row.valid_to is None or row.valid_to > at.position,
        )
        for row in conn.execute(query)
    ]


def _limits(
    conn: Connection, agreement: str, start: int, end: int, at: At
) -> list[ParameterLimits]:
    names = {
        row.parameter: row
        for row in conn.execute(
            select(PARAMETERS).where(
                PARAMETERS.c.agreement == agreement, as_of(PARAMETERS, at.position)
            )
        )
    }
    versions: dict[str, list[LimitsVersion]] = {}
    query = (
        select(LIMITS)
        .where(LIMITS.c.agreement == agreement, _overlapping(LIMITS, start, end, at))
        .order_by(LIMITS.c.parameter, LIMITS.c.limits_version)
    )
    for row in conn.execute(query):
        versions.setdefault(row.parameter, []).append(limits_version(row, at))
    ordered = sorted(versions, key=lambda p: names[p].name if p in names else p)
    return [
        ParameterLimits(
            parameter_id=strawberry.ID(p),
            name=names[p].name if p in names else p,
            kind=names[p].kind if p in names else "",
            versions=versions[p],
        )
        for p in ordered
    ]


def _grants(conn: Connection, scope: Scope, agreement: str, batch: str) -> list[Grant]:
    query = (
        select(GRANTS)
        .where(GRANTS.c.agreement == agreement, as_of(GRANTS, scope.at.position))
        .order_by(GRANTS.c.granted_at, GRANTS.c.grant_id)
    )
    rows = conn.execute(query).all()
    opening = [r for r in rows if GrantScope.from_row(r._mapping).opens_batch(batch)]
    return [grant_of(versions, scope) for versions in with_current(conn, opening)]


def _events(conn: Connection, subject: str, at: At) -> list[AuditEntry]:
    query = (
        select(*ENTRY_COLUMNS)
        .where(AUDIT.c.subject == subject, AUDIT.c.position <= at.position)
        .order_by(AUDIT.c.position)
    )
    return [audit_entry(row) for row in conn.execute(query)]


def _parts(conn: Connection, scope: Scope, batch: Batch) -> dict[str, Any]:
    agreement = str(batch.agreement_id)
    start, end = _span(conn, batch, scope.at)
    return {
        "terms_in_force": _terms(conn, agreement, start, end, scope.at),
        "parameter_limits": _limits(conn, agreement, start, end, scope.at),
        "grants": _grants(conn, scope, agreement, batch.id),
        "events": _events(conn, str(batch.subject), scope.at),
    }


def _latest_checkpoint(info: Info) -> Checkpoint | None:
    try:
        return Checkpoint.of(info.context.services.checkpoint())
    except NotFound:
        return None


async def trace_batch(info: Info, name: str) -> BatchTrace:
    """The ``traceBatch`` root field."""
    scope = await request_scope(info)
    batch = await find_batch(scope, info, name)
    agreement = await load_agreement(scope, info, str(batch.agreement_id))
    assert agreement is not None  # a batch is only registered under an agreement
    parts = await read(info, _parts, scope, batch)
    checkpoint = await in_thread(_latest_checkpoint, info)
    return BatchTrace(
        position=scope.at.position,
        answered_at=scope.now,
        checkpoint=checkpoint,
        batch=batch,
        agreement=agreement,
        scope=scope,
        **parts,
    )
