# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""``excursions``: a batch's discrete results outside their limits, and whether each action
excursion was reported by a deviation, OOS or OOT record within the agreement's deadline.

Built from the records the caller may read (:func:`api.queries.records.read_discrete` and
:func:`~api.queries.records.read_events` check every record), evaluated as the views
recorded them (:mod:`ledger.domain.limits`). An action excursion counts as reported by the
first current deviation, OOS or OOT record of the batch that arrived at or after its sample
time; it is due ``deviation_deadline_hours`` after that time.
"""

from __future__ import annotations

import json

import strawberry
from sqlalchemy import select
from sqlalchemy.engine import Connection

from api.queries.common import At, Info, Scope, at_position, read
from api.queries.records import (
    DiscreteRecord,
    EventRecord,
    RecordFilter,
    read_discrete,
    read_events,
    require_class,
)
from ledger.domain.formats import ACKNOWLEDGEABLE_KINDS
from ledger.domain.limits import ACTION, ALERT, report_due, reporting_status
from projections.agreements import AGREEMENTS

__all__ = ["Excursion", "batch_excursions"]


@strawberry.type(description="A result outside its limits, and how it was reported.")
class Excursion:
    record: DiscreteRecord
    evaluation: str = strawberry.field(description="alert or action.")
    report_due: str | None = strawberry.field(
        description="When a deviation report was due (action excursions only)."
    )
    reported_by: str | None = strawberry.field(
        description="The deviation, OOS or OOT record that reported it."
    )
    reported_at: str | None
    reporting: str = strawberry.field(
        description="reported, late, open (not due yet), unreported (due and missing), or "
        "not_required (alert excursions)."
    )


def _deadline_hours(conn: Connection, at: At, agreement: str) -> int | None:
    query = select(AGREEMENTS.c.terms).where(
        AGREEMENTS.c.agreement == agreement, at_position(AGREEMENTS, at)
    )
    terms = conn.execute(query).scalar()
    hours = None if terms is None else json.loads(terms).get("deviation_deadline_hours")
    return None if hours is None else int(hours)


def _excursion(
    record: DiscreteRecord, reports: list[EventRecord], hours: int | None, now: str
) -> Excursion:
    evaluation = str(record.evaluation)
    if evaluation != ACTION or hours is None or record.sampled_at is None:
        return Excursion(
            record=record,
            evaluation=evaluation,
            report_due=None,
            reported_by=None,
            reported_at=None,
            reporting="not_required",
        )
    sampled = record.sampled_at
    report = next((r for r in reports if r.recorded_at >= sampled), None)
    due = report_due(sampled, hours)
    reported_at = None if report is None else report.recorded_at
    return Excursion(
        record=record,
        evaluation=evaluation,
        report_due=due,
        reported_by=None if report is None else report.id,
        reported_at=reported_at,
        reporting=reporting_status(due, reported_at, now),
    )


async def batch_excursions(info: Info, scope: Scope, agreement: str, batch: str) -> list[Excursion]:
    """The batch's alert and action excursions the caller may read, with their reporting."""
    require_class(scope, agreement, batch, "discrete")
    require_class(scope, agreement, batch, "event")
    results = await read(info, read_discrete, scope, agreement, batch, RecordFilter())
    wanted = RecordFilter(kinds=frozenset(ACKNOWLEDGEABLE_KINDS))
    reports = sorted(
        await read(info, read_events, scope, agreement, batch, wanted),
        key=lambda r: (r.recorded_at, r.id),
    )
    hours = await read(info, _deadline_hours, scope.at, agreement)
    found = [r for r in results if r.evaluation in (ALERT, ACTION)]
    found.sort(key=lambda r: (r.sampled_at or "", r.id))
    return [_excursion(record, reports, hours, scope.now) for record in found]
