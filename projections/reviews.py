"""Periodic reviews: each review, and per agreement the last one and when the next is due.

``proj_reviews``: one row per completed review: agreement, period end, outcome, the
parameters confirmed and revised (JSON), the next due date, who signed and countersigned.
``proj_review_schedule``: per agreement in force, the cadence, the last review and
``next_due`` (from the last review, or the cadence counted from when the agreement took
effect). Whether a review is overdue depends on the clock, so it is computed when asked
(:func:`review_state`), never stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Column, Index, Integer, MetaData, String, Text

from ledger.domain.reviews import add_months
from ledger.timeutil import format_utc, parse_utc
from projections.temporal import Row, temporal_table
from projections.terms import Agreement, FollowsTerms, agreement_of
from projections.times import as_text, utc
from projections.view import Fact, Page, dumps, handles, state_table

__all__ = ["REVIEWS", "SCHEDULE", "ReviewsView", "review_state"]

metadata = MetaData()

REVIEWS = temporal_table(
    "proj_reviews",
    metadata,
    [Column("review", String(36), nullable=False)],
    Column("agreement", String(36), nullable=False),
    Column("period_end", String(30), nullable=False),
    Column("next_due", String(30), nullable=False),
    Column("outcome", Text, nullable=False),
    Column("parameters_confirmed", Text, nullable=False),
    Column("parameters_revised", Text, nullable=False),
    Column("completed_by", String(64), nullable=False),
    Column("countersigned_by", String(64), nullable=False),
    Column("completed_at", String(30), nullable=False),
    Index("ix_proj_reviews_agreement", "agreement", "valid_from"),
)

SCHEDULE = temporal_table(
    "proj_review_schedule",
    metadata,
    [Column("agreement", String(36), nullable=False)],
    Column("status", String(16), nullable=False),
    Column("cadence_months", Integer, nullable=False),
    Column("effective_from", String(30), nullable=False),
    Column("last_review", String(36)),
    Column("last_completed_at", String(30)),
    Column("last_period_end", String(30)),
    Column("next_due", String(30), nullable=False),
)

STATE = state_table("proj_reviews_state", metadata)


def review_state(schedule: Row, when: datetime | str) -> str:
    """``overdue`` when the next review was due before ``when``; else ``due`` (or the
    agreement's status when it is no longer in force)."""
    if schedule["status"] != "effective":
        return str(schedule["status"])
    at = as_text(when)
    return "overdue" if schedule["next_due"] < at else "due"


class ReviewsView(FollowsTerms):
    """Completed reviews and each agreement's review schedule."""

    name = "reviews"
    tables = (REVIEWS, SCHEDULE)
    state = STATE

    def prepare(self, page: Page, facts: Sequence[Fact]) -> None:
        """Also read in bulk the schedules of the page's agreements."""
        super().prepare(page, facts)
        agreements = [agreement_of(page, f) for f in facts]
        page.versions(SCHEDULE).prefetch(a for a in agreements if a is not None)

    def terms_changed(self, page: Page, fact: Fact, agreement: Agreement) -> None:
        """Start, re-time or close an agreement's schedule."""
        schedule = page.versions(SCHEDULE)
        key = (fact.subject,)
        if fact.type == "AgreementSigned":
            cadence = int(agreement["terms"]["review_cadence_months"])
            due = add_months(parse_utc(fact.recorded_at, field="time"), cadence)
            schedule.put(
                key,
                fact.position,
                {
                    "status": "effective",
                    "cadence_months": cadence,
                    "effective_from": fact.recorded_at,
                    "last_review": None,
                    "last_completed_at": None,
                    "last_period_end": None,
                    "next_due": format_utc(due),
                },
            )
        elif fact.type == "AgreementAmendmentSigned":
            self._new_cadence(page, fact, int(agreement["terms"]["review_cadence_months"]))
        elif fact.type == "AgreementTerminated":
            schedule.update(key, fact.position, status="terminated")

    def _new_cadence(self, page: Page, fact: Fact, cadence: int) -> None:
        schedule = page.versions(SCHEDULE)
        row = schedule.get((fact.subject,))
        if row is None:
            return
        changes: Row = {"cadence_months": cadence}
        if row["last_review"] is None:
            # No review yet: the first is due one (new) cadence after the agreement began.
            start = parse_utc(row["effective_from"], field="time")
            changes["next_due"] = format_utc(add_months(start, cadence))
        schedule.update((fact.subject,), fact.position, **changes)

    @handles("ReviewCompleted")
    def _completed(self, page: Page, fact: Fact) -> None:
        payload = fact.payload
        agreement = payload["agreement"]
        next_due = utc(payload["next_due"])
        period_end = utc(payload["period_end"])
        page.versions(REVIEWS).insert(
            (fact.subject,),
            fact.position,
            {
                "agreement": agreement,
                "period_end": period_end,
                "next_due": next_due,
                "outcome": payload["outcome"],
                "parameters_confirmed": dumps(list(payload.get("parameters_confirmed") or [])),
                "parameters_revised": dumps(list(payload.get("parameters_revised") or [])),
                "completed_by": fact.signer,
                "countersigned_by": payload["countersignature"]["signer"],
                "completed_at": fact.recorded_at,
            },
        )
        page.versions(SCHEDULE).update(
            (agreement,),
            fact.position,
            last_review=fact.subject,
            last_completed_at=fact.recorded_at,
            last_period_end=period_end,
            next_due=next_due,
        )
