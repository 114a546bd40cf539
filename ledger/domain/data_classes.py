"""Data classes of an agreement: their names, forms and delivery rules.

One definition for every layer: the ledger's rules (agreements, batches, grants), the views
and the API ask this module what a class name may be, which form a class's submissions
take, and when its data is due. See ``docs/agreements.md``.

* A class name is an identifier (:data:`CLASS_NAME`). The terms map each name to
  ``{owner, form, format, delivery}``.
* The *form* is the content shape of a submission of the class: ``discrete`` (records
  registered per element), ``continuous`` (chunked series) or ``event`` (records). For the
  names ``discrete``, ``continuous`` and ``event`` it defaults to the name (terms written
  before forms existed mean the same); any other name states it. A class keeps its form for
  the agreement's life, so data of a retired class is still read in its form.
* A delivery rule is per batch (``{within_hours, after: batch_end | detection}``) or
  periodic (``{every_days: N}`` or ``{monthly_on_day: D}``). A periodic obligation is met
  period by period (:func:`period_deliveries`).

Light: the standard library, fields and errors only, so a client can import it.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ledger.domain.fields import Fields
from ledger.errors import ValidationFailed

__all__ = [
    "CLASS_NAME",
    "DEFAULT_CLASSES",
    "DELIVERY_AFTER",
    "EVERY_DAYS",
    "FORMS",
    "MONTHLY_ON_DAY",
    "PERIODIC_RULES",
    "WITHIN_HOURS",
    "DeliveryRule",
    "Period",
    "PeriodDelivery",
    "check_class_name",
    "check_delivery",
    "check_form",
    "class_names",
    "form_of",
    "period_deliveries",
    "periods",
    "spec_form",
]

CLASS_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}\Z")
"""A class name: lowercase letters, digits and underscores, starting with a letter, <= 63."""
FORMS = ("discrete", "continuous", "event")
"""Content shapes of a submission: per-element records, chunked series, event records."""
DEFAULT_CLASSES = FORMS
"""Names whose form defaults to the name (the classes every agreement had before)."""
DELIVERY_AFTER = ("batch_end", "detection")
WITHIN_HOURS = (1, 8760)
EVERY_DAYS = (1, 366)
MONTHLY_ON_DAY = (1, 28)
"""Day 28 at most, so the day falls in every month."""
PERIODIC_RULES = ("every_days", "monthly_on_day")


def check_class_name(name: str, *, field: str) -> str:
    """``name`` when it is a class name; ``VALIDATION_FAILED`` naming ``field`` otherwise."""
    if not CLASS_NAME.match(name):
        raise ValidationFailed(
            f"{name[:70]!r} is no class name: lowercase letters, digits and underscores, "
            "starting with a letter, at most 63 characters",
            field=field,
        )
    return name


def spec_form(name: str, spec: Mapping[str, Any]) -> str:
    """The form of class ``name`` as ``spec`` (its member of the terms) states or implies."""
    stated = spec.get("form")
    return str(stated) if stated is not None else name


def form_of(terms: Mapping[str, Any] | None, class_name: str) -> str | None:
    """The form of ``class_name`` under ``terms``, or ``None`` when they do not define it."""
    classes: Mapping[str, Any] = (terms or {}).get("data_classes") or {}
    spec = classes.get(class_name)
    return None if spec is None else spec_form(class_name, spec)


def class_names(terms: Mapping[str, Any] | None) -> list[str]:
    """The classes ``terms`` define, sorted."""
    return sorted((terms or {}).get("data_classes") or {})


def check_form(name: str, data_class: Fields) -> str:
    """The class's form: required for a name other than the defaults, one of :data:`FORMS`."""
    if not data_class.has("form") and name not in DEFAULT_CLASSES:
        raise ValidationFailed(
            f"state the form of class {name}: one of {', '.join(FORMS)} (only the classes "
            f"named {', '.join(DEFAULT_CLASSES)} take their name as form)",
            field=data_class.field("form"),
        )
    return data_class.choice("form", FORMS) if data_class.has("form") else name


@dataclass(frozen=True, slots=True)
class DeliveryRule:
    """When a class's data is due: per batch (``within_hours`` after ``after``) or periodic
    (``every_days`` or ``monthly_on_day``); exactly one of the three is set."""

    within_hours: int | None = None
    after: str | None = None
    every_days: int | None = None
    monthly_on_day: int | None = None

    @classmethod
    def of(cls, spec: Mapping[str, Any]) -> DeliveryRule:
        """The rule of a class's stored ``delivery`` member (checked when it was recorded)."""
        if "every_days" in spec:
            return cls(every_days=int(spec["every_days"]))
        if "monthly_on_day" in spec:
            return cls(monthly_on_day=int(spec["monthly_on_day"]))
        return cls(within_hours=int(spec["within_hours"]), after=str(spec["after"]))

    @property
    def kind(self) -> str:
        """``batch_end``, ``detection``, ``every_days`` or ``monthly_on_day``."""
        if self.every_days is not None:
            return "every_days"
        if self.monthly_on_day is not None:
            return "monthly_on_day"
        return str(self.after)

    @property
    def periodic(self) -> bool:
        """True for a periodic exchange, due period by period rather than per batch."""
        return self.every_days is not None or self.monthly_on_day is not None


def check_delivery(delivery: Fields) -> DeliveryRule:
    """A class's ``delivery`` member, checked field by field (a rule that never fires, such
    as ``every_days: 0`` or ``monthly_on_day: 31``, is refused naming its field)."""
    if delivery.has("every_days"):
        delivery.only("every_days")
        days = delivery.integer("every_days", minimum=EVERY_DAYS[0], maximum=EVERY_DAYS[1])
        return DeliveryRule(every_days=days)
    if delivery.has("monthly_on_day"):
        delivery.only("monthly_on_day")
        day = delivery.integer(
            "monthly_on_day", minimum=MONTHLY_ON_DAY[0], maximum=MONTHLY_ON_DAY[1]
        )
        return DeliveryRule(monthly_on_day=day)
    delivery.only("within_hours", "after")
    hours = delivery.integer("within_hours", minimum=WITHIN_HOURS[0], maximum=WITHIN_HOURS[1])
    return DeliveryRule(within_hours=hours, after=delivery.choice("after", DELIVERY_AFTER))


@dataclass(frozen=True, slots=True)
class Period:
    """One period of a periodic obligation: ``[start, due]``; ``number`` counts from 1."""

    number: int
    start: datetime
    due: datetime


@dataclass(frozen=True, slots=True)
class PeriodDelivery:
    """A period and the submission that met it (``None`` while none has)."""

    period: Period
    arrived_at: datetime | None
    submission: str | None
    state: str
    """``on_time``, ``late`` (arrived after the due time), ``missing`` (none, and the due
    time passed) or ``awaiting`` (none, the due time is still ahead)."""


def _every_days_dues(start: datetime, days: int) -> Iterable[datetime]:
    step = timedelta(days=days)
    due = start + step
    while True:
        yield due
        due += step


def _monthly_dues(start: datetime, day: int) -> Iterable[datetime]:
    # Due by the end of day ``day`` (UTC) of each month; the first due is the first such
    # end after the rule took effect.
    year, month = start.year, start.month
    while True:
        last = calendar.monthrange(year, month)[1]
        end_of_day = start.replace(
            year=year, month=month, day=min(day, last), hour=23, minute=59, second=59,
            microsecond=999_000,
        )  # fmt: skip
        if end_of_day > start:
            yield end_of_day
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def periods(
    rule: DeliveryRule, start: datetime, end: datetime | None, until: datetime
) -> list[Period]:
    """The periods of a periodic ``rule`` in force from ``start`` (until ``end``, when the
    class was retired, its rule changed or the agreement ended) that began by ``until``.

    A period runs from the previous due time (the first from ``start``) to its own; one
    whose due time falls after ``end`` is not owed."""
    if not rule.periodic:
        raise ValueError("only a periodic rule has periods")
    dues = (
        _every_days_dues(start, rule.every_days)
        if rule.every_days is not None
        else _monthly_dues(start, int(rule.monthly_on_day or 1))
    )
    found: list[Period] = []
    previous = start
    for due in dues:
        if previous > until or (end is not None and due > end):
            break
        found.append(Period(len(found) + 1, previous, due))
        previous = due
    return found


def period_deliveries(
    owed: Sequence[Period], arrivals: Sequence[tuple[datetime, str]], now: datetime
) -> list[PeriodDelivery]:
    """Each period with the submission that met it, judged at ``now``.

    Every period needs a submission of its own: it is met by the earliest submission
    (``(recorded_at, id)``, any batch of the agreement) that arrived at or after the
    period's start and that no earlier period took. Met by its due time: ``on_time``;
    after it: ``late``; none yet: ``missing`` once the due time passed, else ``awaiting``.
    """
    pending = sorted(arrivals)
    taken = 0
    result = []
    for period in owed:
        while taken < len(pending) and pending[taken][0] < period.start:
            taken += 1  # a second submission within an earlier period meets nothing more
        if taken < len(pending) and pending[taken][0] <= now:
            arrived, submission = pending[taken]
            taken += 1
            state = "late" if arrived > period.due else "on_time"
            result.append(PeriodDelivery(period, arrived, submission, state))
        else:
            state = "missing" if now > period.due else "awaiting"
            result.append(PeriodDelivery(period, None, None, state))
    return result
