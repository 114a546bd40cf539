"""Deliveries: what the agreement requires per batch and data class versus what arrived.

``proj_deliveries`` has one row per obligation:

* for a class delivered after the batch ends (``after: batch_end``), one row per batch and
  class (``item`` empty), made when the batch is registered, with ``within_hours`` from the
  terms then in force; ``due_at`` is set when the batch ends;
* for a class delivered after detection (``after: detection``, e.g. deviations), one row
  per record (``item`` = record id), due ``within_hours`` after the record's start (its
  sampling time for discrete data); a deviation is due within the agreement's
  ``deviation_deadline_hours``.

``status`` is ``awaiting`` until data arrives, then ``on_time`` or ``late`` by comparing
the first arrival (the ledger's ``recorded_at``) with ``due_at``; every later delivery is
in ``proj_submissions``. Whether an awaited
delivery is missing depends on the clock, so :func:`delivery_state` computes it when asked.
Data of the continuous form is a whole-batch delivery whatever its ``after``. Corrections
are not deliveries. The class's form, not its name, decides (:mod:`ledger.domain.data_classes`).

Periodic obligations (``every_days``, ``monthly_on_day``) belong to the agreement, not to a
batch, and new periods open as time passes: :func:`periodic_deliveries` computes them when
asked, from the terms history (``proj_agreement_terms``) and the submissions
(``proj_submissions``) as of a position, judged at a time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Column, ColumnElement, Index, Integer, MetaData, String, and_, or_, select
from sqlalchemy.engine import Connection

from ledger.domain.data_classes import (
    DeliveryRule,
    Period,
    PeriodDelivery,
    period_deliveries,
    periods,
    spec_form,
)
from ledger.domain.validity import successive
from ledger.timeutil import format_utc
from projections.agreements import AGREEMENTS, TERMS
from projections.data import SUBMISSIONS, batch_names
from projections.temporal import Row, as_of, temporal_table
from projections.terms import FollowsTerms
from projections.times import as_text, plus_hours, utc, utc_time
from projections.view import Fact, Page, handles, state_table

__all__ = [
    "DELIVERIES",
    "DeliveriesView",
    "delivery_state",
    "late_or_missing",
    "periodic_deliveries",
]

metadata = MetaData()

DELIVERIES = temporal_table(
    "proj_deliveries",
    metadata,
    [
        Column("batch", String(64), nullable=False),
        Column("data_class", String(63), nullable=False),
        Column("item", String(128), nullable=False),
    ],
    Column("agreement", String(36), nullable=False),
    Column("rule", String(16), nullable=False),
    Column("within_hours", Integer, nullable=False),
    Column("due_at", String(30)),
    Column("first_arrived_at", String(30)),
    Column("first_submission", String(36)),
    Column("status", String(16), nullable=False),
    Index("ix_proj_deliveries_agreement", "agreement", "valid_from"),
    # ``late_or_missing`` reads only the index: the many on-time rows are never visited.
    Index("ix_proj_deliveries_open", "agreement", "status", "due_at", "valid_to", "valid_from"),
)

STATE = state_table("proj_deliveries_state", metadata)


def delivery_state(row: Row, when: datetime | str) -> str:
    """``on_time``, ``late``, ``missing`` (due before ``when``, nothing yet) or ``awaiting``."""
    if row["status"] != "awaiting":
        return str(row["status"])
    at = as_text(when)
    return "missing" if row["due_at"] is not None and row["due_at"] < at else "awaiting"


def _status(first_arrived: str | None, due: str | None) -> str:
    if first_arrived is None:
        return "awaiting"
    return "late" if due is not None and first_arrived > due else "on_time"


def late_or_missing(when: datetime | str) -> ColumnElement[bool]:
    """The rows :func:`delivery_state` calls ``late`` or ``missing`` at ``when``, in SQL."""
    awaited_past_due = and_(
        DELIVERIES.c.status == "awaiting",
        DELIVERIES.c.due_at.is_not(None),
        DELIVERIES.c.due_at < as_text(when),
    )
    return or_(DELIVERIES.c.status == "late", awaited_past_due)


class DeliveriesView(FollowsTerms):
    """Obligations to deliver data, and what arrived when."""

    name = "deliveries"
    tables = (DELIVERIES,)
    state = STATE

    def prepare(self, page: Page, facts: Sequence[Fact]) -> None:
        """Also read in bulk the current obligations of the page's batches."""
        super().prepare(page, facts)
        names = batch_names(page, facts, ("BatchEnded", "DataSubmitted"))
        page.versions(DELIVERIES).prefetch(names)

    @handles("BatchRegistered")
    def _registered(self, page: Page, fact: Fact) -> None:
        payload = fact.payload
        name, agreement_id = payload["batch"], payload["agreement"]
        page.state.remember(f"subject:{fact.subject}", [name, agreement_id])
        for data_class, spec in self._classes(page, agreement_id).items():
            rule = DeliveryRule.of(spec["delivery"])
            if rule.periodic:
                continue  # the agreement's, not the batch's: see periodic_deliveries
            if spec_form(data_class, spec) != "continuous" and rule.after == "detection":
                continue
            page.versions(DELIVERIES).insert(
                (name, data_class, ""),
                fact.position,
                {
                    "agreement": agreement_id,
                    "rule": spec["delivery"]["after"],
                    "within_hours": int(spec["delivery"]["within_hours"]),
                    "due_at": None,
                    "first_arrived_at": None,
                    "first_submission": None,
                    "status": "awaiting",
                },
            )

    @handles("BatchEnded")
    def _ended(self, page: Page, fact: Fact) -> None:
        batch = page.state.fact(f"subject:{fact.subject}")
        if batch is None:
            return
        ended = utc(fact.payload["ended_at"])
        for data_class in sorted(self._classes(page, batch[1])):
            key = (batch[0], data_class, "")
            row = page.versions(DELIVERIES).get(key)
            if row is not None:
                due = plus_hours(ended, int(row["within_hours"]))
                page.versions(DELIVERIES).update(
                    key, fact.position, due_at=due, status=_status(row["first_arrived_at"], due)
                )

    @handles("DataSubmitted")
    def _submitted(self, page: Page, fact: Fact) -> None:
        batch = page.state.fact(f"subject:{fact.subject}")
        if batch is None:
            return
        data_class = fact.payload["kind"]
        key = (batch[0], data_class, "")
        row = page.versions(DELIVERIES).get(key)
        if row is not None:
            if row["first_arrived_at"] is None:  # later deliveries are in proj_submissions
                page.versions(DELIVERIES).update(
                    key,
                    fact.position,
                    first_arrived_at=fact.recorded_at,
                    first_submission=fact.payload["submission"],
                    status=_status(fact.recorded_at, row["due_at"]),
                )
        elif "records" in fact.payload:
            self._detected(page, fact, batch, data_class)

    def _detected(self, page: Page, fact: Fact, batch: list[str], data_class: str) -> None:
        agreement = self.agreement(page, batch[1])
        terms: dict[str, Any] = (agreement or {}).get("terms") or {}
        spec = terms.get("data_classes", {}).get(data_class)
        if spec is None or DeliveryRule.of(spec["delivery"]).after != "detection":
            return
        for record in fact.payload["records"]:
            key = (batch[0], data_class, record["id"])
            if page.versions(DELIVERIES).get(key) is not None:
                continue
            hours = int(spec["delivery"]["within_hours"])
            if record.get("kind") == "deviation" and terms.get("deviation_deadline_hours"):
                hours = int(terms["deviation_deadline_hours"])
            detected = record.get("started_at") or record.get("sampled_at") or fact.recorded_at
            due = plus_hours(detected, hours)
            page.versions(DELIVERIES).insert(
                key,
                fact.position,
                {
                    "agreement": batch[1],
                    "rule": "detection",
                    "within_hours": hours,
                    "due_at": due,
                    "first_arrived_at": fact.recorded_at,
                    "first_submission": fact.payload["submission"],
                    "status": _status(fact.recorded_at, due),
                },
            )

    def _classes(self, page: Page, agreement_id: str) -> dict[str, Any]:
        agreement = self.agreement(page, agreement_id)
        terms: dict[str, Any] = (agreement or {}).get("terms") or {}
        classes: dict[str, Any] = terms.get("data_classes") or {}
        return classes


class _Run(NamedTuple):
    """A stretch of valid time over which one class kept one periodic rule."""

    data_class: str
    rule: DeliveryRule
    start: str
    end: str | None


def periodic_deliveries(
    conn: Connection, agreements: Sequence[str], position: int, when: datetime
) -> dict[str, list[Row]]:
    """Each agreement's periodic obligations, one row per period that began by ``when``,
    from the terms and submissions as the views held them at ``position``.

    A class's periods count from when terms giving it its periodic rule came into force
    (an amendment keeping the rule continues them; one changing it starts anew) and stop
    when the class is retired, its rule changes or the agreement ends. Each period is met
    by a submission of its own (:func:`ledger.domain.data_classes.period_deliveries`).
    """
    found: dict[str, list[Row]] = {agreement: [] for agreement in agreements}
    if not agreements:
        return found
    runs = _periodic_runs(conn, agreements, position)
    arrivals = _arrivals(
        conn, sorted({(a, r.data_class) for a, rs in runs.items() for r in rs}), position
    )
    for agreement, agreement_runs in runs.items():
        for run in agreement_runs:
            start = utc_time(run.start)
            end = None if run.end is None else utc_time(run.end)
            owed = periods(run.rule, start, end, when)
            mine = arrivals.get((agreement, run.data_class), [])
            for met in period_deliveries(owed, mine, when):
                found[agreement].append(_periodic_row(agreement, run, met.period, met))
    return found


def _periodic_runs(
    conn: Connection, agreements: Sequence[str], position: int
) -> dict[str, list[_Run]]:
    versions: dict[str, dict[int, Any]] = {a: {} for a in agreements}
    query = (
        select(TERMS)
        .where(TERMS.c.agreement.in_(agreements), TERMS.c.valid_from <= position)
        .order_by(TERMS.c.agreement, TERMS.c.terms_version, TERMS.c.valid_from)
    )
    for row in conn.execute(query):
        versions[row.agreement][row.terms_version] = row  # the version as it stood then
    ended = {
        row.agreement: row.terminated_at
        for row in conn.execute(
            select(AGREEMENTS.c.agreement, AGREEMENTS.c.terminated_at).where(
                AGREEMENTS.c.agreement.in_(agreements), as_of(AGREEMENTS, position)
            )
        )
    }
    return {a: _runs(rows, ended.get(a)) for a, rows in versions.items()}


def _runs(rows: dict[int, Any], terminated_at: str | None) -> list[_Run]:
    intervals = successive({n: row.effective_from for n, row in rows.items()}, terminated_at)
    runs: list[_Run] = []
    open_runs: dict[str, _Run] = {}
    for number in sorted(rows):
        interval = intervals[number]
        if interval.end is not None and interval.end <= interval.start:
            continue  # replaced before it took effect: never in force
        classes: dict[str, Any] = json.loads(rows[number].terms).get("data_classes") or {}
        for name in sorted(set(open_runs) | set(classes)):
            spec = classes.get(name)
            rule = None if spec is None else DeliveryRule.of(spec["delivery"])
            current = open_runs.get(name)
            if current is not None and current.rule == rule:
                open_runs[name] = current._replace(end=interval.end)
                continue
            if current is not None:
                runs.append(current._replace(end=interval.start))
                del open_runs[name]
            if rule is not None and rule.periodic:
                open_runs[name] = _Run(name, rule, interval.start, interval.end)
    return runs + list(open_runs.values())


def _arrivals(
    conn: Connection, keys: Sequence[tuple[str, str]], position: int
) -> dict[tuple[str, str], list[tuple[datetime, str]]]:
    found: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
    if not keys:
        return found
    query = (
        select(
            SUBMISSIONS.c.agreement,
            SUBMISSIONS.c.data_class,
            SUBMISSIONS.c.recorded_at,
            SUBMISSIONS.c.submission,
        )
        .where(
            SUBMISSIONS.c.agreement.in_(sorted({a for a, _ in keys})),
            SUBMISSIONS.c.data_class.in_(sorted({c for _, c in keys})),
            SUBMISSIONS.c.correction.is_(False),
            as_of(SUBMISSIONS, position),
        )
        .order_by(SUBMISSIONS.c.recorded_at, SUBMISSIONS.c.submission)
    )
    for agreement, data_class, recorded_at, submission in conn.execute(query):
        found.setdefault((agreement, data_class), []).append((utc_time(recorded_at), submission))
    return found


def _periodic_row(agreement: str, run: _Run, period: Period, met: PeriodDelivery) -> Row:
    return {
        "agreement": agreement,
        "batch": None,
        "data_class": run.data_class,
        "item": "",
        "rule": run.rule.kind,
        "within_hours": None,
        "every_days": run.rule.every_days,
        "monthly_on_day": run.rule.monthly_on_day,
        "period": period.number,
        "period_start": format_utc(period.start),
        "due_at": format_utc(period.due),
        "first_arrived_at": None if met.arrived_at is None else format_utc(met.arrived_at),
        "first_submission": met.submission,
        "status": met.state,
    }
