"""Periodic reviews: ``ReviewCompleted``, signed by both agreement parties (R21, R29).

One party signs the envelope; the other countersigns the same payload beforehand
(``ledger.log.countersign``), so a review on the ledger is always both parties' record.
Whether a review is overdue is computed from ``next_due`` by the projections, not stored.

The subject is a UUID (uuid4) chosen by the submitting party. Payload::

    agreement               the agreement (in force)
    period_end              end of the reviewed period (not in the future)
    outcome                 text, at most 4000 characters
    parameters_confirmed    optional, unique subject ids of the agreement's parameters
    parameters_revised      optional, likewise; none also confirmed
    next_due                after period_end, at most review_cadence_months + 1 after it
    countersignature        the other party's countersignature over the payload without it
"""

from __future__ import annotations

import calendar
import uuid
from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate, event

from ledger.domain.agreements import agreement_in_force, require_agreement_party
from ledger.domain.catalogue import Command, EventSpec, SignedAggregate, register
from ledger.domain.fields import Fields
from ledger.domain.parameters import Parameter
from ledger.errors import NotFound, ValidationFailed
from ledger.log.countersign import verify_countersignature
from ledger.timeutil import format_utc, parse_utc

__all__ = ["MAX_OUTCOME", "Review", "add_months"]

MAX_OUTCOME = 4000


def add_months(when: datetime, months: int) -> datetime:
    """``when`` plus whole calendar months, the day clamped to the month's length."""
    index = when.month - 1 + months
    year, month = when.year + index // 12, index % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


class Review(SignedAggregate):
    """A completed periodic review of an agreement, signed by its sponsor and its CMO."""

    TOPIC = "cmo.Review.v1"

    class Created(Aggregate.Created):
        TOPIC = "cmo.Review.Created.v1"

    @event("ReviewCompleted", topic="cmo.ReviewCompleted.v1")
    def __init__(self, envelope: dict[str, Any], signature: str, recorded_at: str) -> None:
        self._track(envelope, signature, recorded_at)
        payload = envelope["payload"]
        self.agreement: str = payload["agreement"]
        # One spelling per instant (milliseconds, Z) keeps stored times comparable as text.
        self.period_end: str = format_utc(parse_utc(payload["period_end"], field="period_end"))
        self.next_due: str = format_utc(parse_utc(payload["next_due"], field="next_due"))
        self.outcome: str = payload["outcome"]
        self.parameters_confirmed: list[str] = list(payload.get("parameters_confirmed") or [])
        self.parameters_revised: list[str] = list(payload.get("parameters_revised") or [])
        self.completed_by: str = envelope["signer"]
        self.countersigned_by: str = payload["countersignature"]["signer"]
        self.completed_at: str = recorded_at


def _uuid(value: object, field: str) -> uuid.UUID:
    try:
        parsed = uuid.UUID(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or str(parsed) != value:
        raise ValidationFailed("expected a lowercase hyphenated UUID", field=field)
    return parsed


def _parameter_ids(command: Command, payload: Fields, name: str, agreement: str) -> list[str]:
    values = payload.items(name, optional=True)
    seen: list[str] = []
    for index, value in enumerate(values):
        field = f"{payload.field(name)}[{index}]"
        parameter_id = _uuid(value, field)
        if str(parameter_id) in seen:
            raise ValidationFailed("listed twice", field=field)
        parameter = command.state.find(parameter_id, Parameter)
        if parameter is None:
            raise NotFound(f"no parameter {parameter_id}", field=field)
        if parameter.agreement != agreement:
            raise ValidationFailed("the parameter belongs to another agreement", field=field)
        seen.append(str(parameter_id))
    return seen


def _completed_rule(command: Command) -> None:
    payload = command.payload
    agreement = agreement_in_force(command, payload.uuid("agreement"))
    require_agreement_party(command, agreement)
    counterparty = agreement.counterparty(command.signer)
    period_end = payload.time("period_end")
    if period_end > command.now:
        raise ValidationFailed("period_end is in the future", field="payload.period_end")
    payload.text("outcome", max_len=MAX_OUTCOME)
    confirmed = _parameter_ids(command, payload, "parameters_confirmed", str(agreement.id))
    revised = _parameter_ids(command, payload, "parameters_revised", str(agreement.id))
    for index, parameter_id in enumerate(revised):
        if parameter_id in confirmed:
            raise ValidationFailed(
                "a parameter is either confirmed or revised, not both",
                field=f"payload.parameters_revised[{index}]",
            )
    next_due = payload.time("next_due")
    if next_due <= period_end:
        raise ValidationFailed("next_due must be after period_end", field="payload.next_due")
    cadence = int(agreement.terms["review_cadence_months"])
    latest = add_months(period_end, cadence + 1)
    if next_due > latest:
        raise ValidationFailed(
            f"the agreement asks for a review every {cadence} months: next_due may be at "
            f"most {format_utc(latest)}",
            field="payload.next_due",
        )
    if not payload.has("countersignature"):
        raise ValidationFailed(
            f"a review is signed by both parties: add {counterparty}'s countersignature",
            field="payload.countersignature",
        )
    body = {key: value for key, value in payload.data.items() if key != "countersignature"}
    verify_countersignature(command, body, counterparty, field="countersignature")


register(
    EventSpec(
        "ReviewCompleted",
        Review,
        frozenset({"completed", "reviewed"}),
        _completed_rule,
        signers="one agreement party, countersigned in the payload by the other",
        description="records a periodic review both parties signed, and when the next is due",
    ),
)
