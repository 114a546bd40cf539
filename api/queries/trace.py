# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""``traceBatch(id)``: one batch end to end, for an auditor (R28).

It answers, at one log position (``position``, with the latest signed ``checkpoint``):
the batch and its data (per the data rules: a part the caller may not read is refused
on its own field), every signed event of the batch, its corrections, the terms and the
parameter limits in force at any time while the batch ran, the grants that open the
batch to other parties, and the deviations, OOS and OOT records with their
acknowledgements.

"While the batch ran" is valid time: from its ``started_at`` to its ``ended_at`` (or
now), against each version's ``effective_from`` (:mod:`ledger.domain.validity`), as the
ledger knew it at ``position``. A version the ledger learnt only after the batch's first
data arrived is listed in ``termsKnownAfterData`` / ``versionsKnownAfterData``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import strawberry
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from api.log_fields import Checkpoint
from api.queries.agreements import Agreement, TermsVersion, load_agreement
from api.queries.audit import ENTRY_COLUMNS, AuditEntry, audit_entry
from api.queries.batches import Batch, Submission, find_batch
from api.queries.common import At, Info, Scope, as_json, read, request_scope
from api.queries.excursions import (
    Excursion,
    SeriesExcursion,
    batch_excursions,
    series_excursions,
)
from api.queries.grants import Grant, grant_of, with_current
from api.queries.parameters import LimitsVersion, limits_version
from api.queries.records import EventRecord, RecordFilter, read_events, require_class
from api.read_log import note_field
from api.threads import in_thread
from ledger.domain.scope import GrantScope
from ledger.domain.validity import successive
from ledger.errors import NotFound
from projections.access import GRANTS
from projections.agreements import AGREEMENTS, TERMS
from projections.audit import AUDIT
from projections.data import SUBMISSIONS
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
    versions_known_after_data: list[int] = strawberry.field(
        description="Versions the ledger learnt of only after the batch's first data arrived."
    )


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
    terms_known_after_data: list[int] = strawberry.field(
        description="Terms versions the ledger learnt of only after the batch's first data."
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

    @strawberry.field(
        description="Discrete results outside their limits, each with the limits version "
        "used and whether an action excursion was reported in time (unreported: due and "
        "missing)."
    )
    async def excursions(self, info: Info) -> list[Excursion] | None:
        agreement = str(self.batch.agreement_id)
        return await batch_excursions(info, self.scope, agreement, self.batch.id)

    @strawberry.field(
        description="Continuous tags outside their parameter's limits, with their reporting."
    )
    async def series_excursions(self, info: Info) -> list[SeriesExcursion] | None:
        agreement = str(self.batch.agreement_id)
        return await series_excursions(info, self.scope, agreement, self.batch.id)


class _Span(NamedTuple):
    """The batch's manufacturing window in valid time, and where its data starts in the log."""

    start: str
    end: str
    first_data: int | None


def _span(conn: Connection, batch: Batch, scope: Scope) -> _Span:
    first_data = conn.execute(
        select(func.min(SUBMISSIONS.c.valid_from)).where(
            SUBMISSIONS.c.batch == batch.id, SUBMISSIONS.c.valid_from <= scope.at.position
        )
    ).scalar()
    end = batch.ended_at or max(scope.now, batch.started_at)
    return _Span(batch.started_at, end, None if first_data is None else int(first_data))


def _known(
    conn: Connection, table: Any, key: Any, at: At, columns: tuple[str, str]
) -> dict[Any, tuple[Any, int]]:
    """Each version recorded by ``at`` (keyed by ``columns``: subject and version number):
    its row as it stood then, and the position it was first recorded at."""
    rows = conn.execute(
        select(table).where(key, table.c.valid_from <= at.position).order_by(table.c.valid_from)
    )
    found: dict[Any, tuple[Any, int]] = {}
    for row in rows:
        version = (getattr(row, columns[0]), int(getattr(row, columns[1])))
        first = found[version][1] if version in found else int(row.valid_from)
        found[version] = (row, first)
    return found


def _learnt_late(first: int, span: _Span) -> bool:
    return span.first_data is not None and first > span.first_data


def _terms(
    conn: Connection, agreement: str, span: _Span, scope: Scope
) -> tuple[list[TermsVersion], list[int]]:
    known = _known(
        conn, TERMS, TERMS.c.agreement == agreement, scope.at, ("agreement", "terms_version")
    )
    ended = conn.execute(
        select(AGREEMENTS.c.terminated_at).where(
            AGREEMENTS.c.agreement == agreement, as_of(AGREEMENTS, scope.at.position)
        )
    ).scalar()
    intervals = successive({v: row.effective_from for (_, v), (row, _) in known.items()}, ended)
    versions, late = [], []
    for (_, number), (row, first) in sorted(known.items()):
        if not intervals[number].overlaps(span.start, span.end):
            continue
        versions.append(
            TermsVersion(
                version=number,
                effective_from=row.effective_from,
                retroactive=bool(row.retroactive),
                terms=as_json(row.terms),
                in_force=intervals[number].covers(scope.now),
            )
        )
        if _learnt_late(first, span):
            late.append(number)
    return versions, late


def _limits(conn: Connection, agreement: str, span: _Span, scope: Scope) -> list[ParameterLimits]:
    names = {
        row.parameter: row
        for row in conn.execute(
            select(PARAMETERS).where(
                PARAMETERS.c.agreement == agreement, as_of(PARAMETERS, scope.at.position)
            )
        )
    }
    known = _known(
        conn, LIMITS, LIMITS.c.agreement == agreement, scope.at, ("parameter", "limits_version")
    )
    by_parameter: dict[str, dict[int, tuple[Any, int]]] = {}
    for (parameter, number), found in known.items():
        by_parameter.setdefault(parameter, {})[number] = found
    result = []
    for parameter in sorted(by_parameter, key=lambda p: names[p].name if p in names else p):
        own = by_parameter[parameter]
        retired = names[parameter].retired_at if parameter in names else None
        intervals = successive({n: row.effective_from for n, (row, _) in own.items()}, retired)
        kept = [n for n in sorted(own) if intervals[n].overlaps(span.start, span.end)]
        if not kept:
            continue
        result.append(
            ParameterLimits(
                parameter_id=strawberry.ID(parameter),
                name=names[parameter].name if parameter in names else parameter,
                kind=names[parameter].kind if parameter in names else "",
                versions=[limits_version(own[n][0], scope.at) for n in kept],
                versions_known_after_data=[n for n in kept if _learnt_late(own[n][1], span)],
            )
        )
    return result


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
    span = _span(conn, batch, scope)
    terms, terms_late = _terms(conn, agreement, span, scope)
    return {
        "terms_in_force": terms,
        "terms_known_after_data": terms_late,
        "parameter_limits": _limits(conn, agreement, span, scope),
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
    note_field(info, str(batch.agreement_id), batch.id)
    return BatchTrace(
        position=scope.at.position,
        answered_at=scope.now,
        checkpoint=checkpoint,
        batch=batch,
        agreement=agreement,
        scope=scope,
        **parts,
    )
