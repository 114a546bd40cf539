# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""``excursions``: a batch's discrete results outside their limits, and whether each action
excursion was reported by a deviation, OOS or OOT record within the agreement's deadline.

Built from the records the caller may read (:func:`api.queries.records.read_discrete` and
:func:`~api.queries.records.read_events` check every record), evaluated as the views
recorded them (:mod:`ledger.domain.limits`); a manual value of a critical parameter not yet
verified (R17, :mod:`ledger.domain.verification`) is no excursion until it is. An action
excursion counts as reported by the first current deviation, OOS or OOT record of the
batch that arrived at or after its sample time; it is due ``deviation_deadline_hours``
after that time. ``seriesExcursions`` does the same for continuous tags, from the
excursions the data view recorded per chunk (first and last time, count, worst value),
over the tags and times the caller may read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import strawberry
from sqlalchemy import and_, select
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
from ledger.domain.limits import SeriesExcursion as LimitsSeriesExcursion
from ledger.domain.scope import DataItem
from projections.agreements import AGREEMENTS
from projections.data import CHUNK_EXCURSIONS, CHUNKS

__all__ = ["Excursion", "SeriesExcursion", "batch_excursions", "series_excursions"]


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


@dataclass(frozen=True, slots=True)
class _Reporting:
    due: str | None = None
    by: str | None = None
    at: str | None = None
    status: str = "not_required"


def _reporting(
    evaluation: str, since: str | None, reports: list[EventRecord], hours: int | None, now: str
) -> _Reporting:
    """Whether an excursion first seen at ``since`` was reported in time (action only)."""
    if evaluation != ACTION or hours is None or since is None:
        return _Reporting()
    report = next((r for r in reports if r.recorded_at >= since), None)
    due = report_due(since, hours)
    reported_at = None if report is None else report.recorded_at
    by = None if report is None else report.id
    return _Reporting(due, by, reported_at, reporting_status(due, reported_at, now))


def _excursion(
    record: DiscreteRecord, reports: list[EventRecord], hours: int | None, now: str
) -> Excursion:
    evaluation = str(record.evaluation)
    reporting = _reporting(evaluation, record.sampled_at, reports, hours, now)
    return Excursion(
        record=record,
        evaluation=evaluation,
        report_due=reporting.due,
        reported_by=reporting.by,
        reported_at=reporting.at,
        reporting=reporting.status,
    )


async def batch_excursions(info: Info, scope: Scope, agreement: str, batch: str) -> list[Excursion]:
    """The batch's alert and action excursions the caller may read, with their reporting."""
    require_class(scope, agreement, batch, "discrete")
    require_class(scope, agreement, batch, "event")
    results = await read(info, read_discrete, scope, agreement, batch, RecordFilter())
    reports, hours = await _reports_and_deadline(info, scope, agreement, batch)
    found = [r for r in results if r.verified and r.evaluation in (ALERT, ACTION)]
    found.sort(key=lambda r: (r.sampled_at or "", r.id))
    return [_excursion(record, reports, hours, scope.now) for record in found]


@strawberry.type(
    description="The points of a continuous tag outside the limits of the parameter it "
    "measures, under one limits version at one level, over the batch's current chunks."
)
class SeriesExcursion:
    tag: str
    parameter_id: strawberry.ID
    limits_version: int = strawberry.field(
        description="The limits version in force at the points' time, as the ledger knew it "
        "when each chunk arrived. Never re-evaluated."
    )
    evaluation: str = strawberry.field(description="alert or action.")
    first: str
    last: str
    count: int
    worst: str = strawberry.field(description="The value farthest outside the limits.")
    report_due: str | None
    reported_by: str | None
    reported_at: str | None
    reporting: str


def _series_runs(
    conn: Connection, at: At, batch: str
) -> list[tuple[tuple[str, str], str, LimitsSeriesExcursion]]:
    """The batch's chunk excursions over its current chunks, merged per tag, parameter,
    limits version and level, in order of their first point."""
    runs = CHUNK_EXCURSIONS
    query = (
        select(runs, CHUNKS.c.data_class)
        .join(CHUNKS, and_(CHUNKS.c.batch == runs.c.batch, CHUNKS.c.sha256 == runs.c.sha256))
        .where(runs.c.batch == batch, at_position(runs, at), at_position(CHUNKS, at))
        .where(CHUNKS.c.status == "current")
        .order_by(runs.c.first)
    )
    merged: dict[tuple[tuple[str, str], str, int, str], LimitsSeriesExcursion] = {}
    for result in conn.execute(query):
        row = result._mapping
        tag = (row["data_class"], row["tag"])
        key = (tag, row["parameter_id"], row["limits_version"], row["evaluation"])
        run = merged.get(key)
        if run is None:
            run = merged[key] = LimitsSeriesExcursion(
                row["limits_version"], row["evaluation"], row["first"], row["last"], 0, "", -1.0
            )
        run.absorb(row["last"], row["count"], row["worst"], row["excess"])
    found = [(tag, parameter, run) for (tag, parameter, _, _), run in merged.items()]
    return sorted(found, key=lambda f: (f[2].first, f[0][1], f[2].evaluation))


async def _reports_and_deadline(
    info: Info, scope: Scope, agreement: str, batch: str
) -> tuple[list[EventRecord], int | None]:
    """The batch's deviation, OOS and OOT records in arrival order, and the agreement's
    deviation deadline (hours)."""
    wanted = RecordFilter(kinds=frozenset(ACKNOWLEDGEABLE_KINDS))
    reports = sorted(
        await read(info, read_events, scope, agreement, batch, wanted),
        key=lambda r: (r.recorded_at, r.id),
    )
    return reports, await read(info, _deadline_hours, scope.at, agreement)


async def series_excursions(
    info: Info, scope: Scope, agreement: str, batch: str
) -> list[SeriesExcursion]:
    """The batch's continuous excursions over the tags and times the caller may read."""
    require_class(scope, agreement, batch, "event")
    reports, hours = await _reports_and_deadline(info, scope, agreement, batch)
    result = []
    for (data_class, tag), parameter, row in await read(info, _series_runs, scope.at, batch):
        item = DataItem(agreement, data_class, batch, tag)
        if scope.authority.series_refusal(item, row.first, row.last, scope.now) is not None:
            continue
        reporting = _reporting(row.evaluation, row.first, reports, hours, scope.now)
        result.append(
            SeriesExcursion(
                tag=tag,
                parameter_id=strawberry.ID(parameter),
                limits_version=row.version,
                evaluation=row.evaluation,
                first=row.first,
                last=row.last,
                count=row.count,
                worst=row.worst,
                report_due=reporting.due,
                reported_by=reporting.by,
                reported_at=reporting.at,
                reporting=reporting.status,
            )
        )
    return result
