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
Continuous data is a whole-batch delivery whatever its ``after``. Corrections are not
deliveries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Integer, MetaData, String

from projections.data import batch_names
from projections.temporal import Row, temporal_table
from projections.terms import FollowsTerms
from projections.times import as_text, plus_hours, utc
from projections.view import Fact, Page, handles, state_table

__all__ = ["DELIVERIES", "DeliveriesView", "delivery_state"]

metadata = MetaData()

DELIVERIES = temporal_table(
    "proj_deliveries",
    metadata,
    [
        Column("batch", String(64), nullable=False),
        Column("data_class", String(16), nullable=False),
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
            if data_class != "continuous" and spec["delivery"]["after"] == "detection":
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
        elif data_class != "continuous":
            self._detected(page, fact, batch, data_class)

    def _detected(self, page: Page, fact: Fact, batch: list[str], data_class: str) -> None:
        agreement = self.agreement(page, batch[1])
        terms: dict[str, Any] = (agreement or {}).get("terms") or {}
        spec = terms.get("data_classes", {}).get(data_class)
        if spec is None:
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
