"""Parameter limits applied to data: which version was in force at a valid time, and how a
value stands against it.

One definition for every layer: the views evaluate each discrete record when they record
it (:mod:`projections.data`), with the limits version in force at the record's sample
time as the ledger knew it then, and keep that evaluation: a later revision never changes
how an earlier record was evaluated.

An action excursion must be reported by a deviation, OOS or OOT record of the same batch
within the agreement's ``deviation_deadline_hours`` of its sample time
(:func:`reporting_status`).

A value is ``action`` outside the action limits, else ``alert`` outside the alert limits,
else ``within``; a missing bound does not limit. A record whose parameter has no limits in
force at its sample time is ``no_limits``; one naming no parameter of the agreement is
``unregistered``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from ledger.timeutil import format_utc, parse_utc

__all__ = [
    "ACTION",
    "ALERT",
    "BOUNDS",
    "EVALUATIONS",
    "NO_LIMITS",
    "UNREGISTERED",
    "WITHIN",
    "LimitsVersion",
    "SeriesExcursion",
    "bounds",
    "changed_limits",
    "in_force_at",
    "report_due",
    "reporting_status",
    "series_excursions",
    "tag_for",
]

WITHIN, ALERT, ACTION = "within", "alert", "action"
NO_LIMITS, UNREGISTERED = "no_limits", "unregistered"
EVALUATIONS = (WITHIN, ALERT, ACTION, NO_LIMITS, UNREGISTERED)

#: The bound columns of a limits version, in one order everywhere.
BOUNDS = ("alert_low", "alert_high", "action_low", "action_high")


@dataclass(frozen=True, slots=True)
class LimitsVersion:
    """One version of a parameter's limits and the valid time it is in force from.

    ``effective_to`` is when the next version took over (or the parameter was retired);
    ``None`` while it is the latest. Bounds are decimal strings or ``None``.
    """

    version: int
    effective_from: str
    effective_to: str | None = None
    alert_low: str | None = None
    alert_high: str | None = None
    action_low: str | None = None
    action_high: str | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> LimitsVersion:
        """From a mapping with the same member names (a view's state, a row)."""
        bounds = {name: row.get(name) for name in BOUNDS}
        return cls(
            int(row["version"]), str(row["effective_from"]), row.get("effective_to"), **bounds
        )

    def covers(self, at: str) -> bool:
        """True when the version is in force at ``at`` (RFC 3339 UTC, milliseconds)."""
        return self.effective_from <= at and (self.effective_to is None or at < self.effective_to)

    def evaluate(self, value: str) -> str:
        """``within``, ``alert`` or ``action`` for the decimal string ``value``."""
        number = _decimal(value)
        if number is None:
            return NO_LIMITS
        return _Band.of(self).evaluate(number) or WITHIN


@dataclass(slots=True)
class SeriesExcursion:
    """Points of a continuous series outside one limits version's band at one level."""

    version: int
    evaluation: str
    first: str
    last: str
    count: int
    worst: str
    excess: float
    """How far ``worst`` lies outside the alert band (the action band without one)."""

    def absorb(self, last: str, count: int, worst: str, excess: float) -> None:
        """Take in more points of the same version and level (in time order)."""
        self.last, self.count = max(self.last, last), self.count + count
        if excess > self.excess:
            self.worst, self.excess = worst, excess


def series_excursions(
    timestamps: Sequence[str], values: Sequence[str], versions: Sequence[LimitsVersion]
) -> list[SeriesExcursion]:
    """Each (limits version, alert or action) run of ``values`` outside the limits in force
    at its timestamp: first and last time, count and worst value; in time order.

    The same rule as :meth:`LimitsVersion.evaluate`, with each version's bounds read once
    and a quick float test first (a day of one-minute points is evaluated on every chunk
    that arrives): converting decimals to floats keeps their order, so a float strictly
    inside the tightest band is a decimal inside it; anything closer takes the exact
    rule."""
    try:
        numbers = list(map(float, values))
    except ValueError:
        numbers = [float("nan")] * len(values)
    bands = {v.version: _Band.of(v) for v in versions}
    first = in_force_at(versions, timestamps[0]) if timestamps else None
    if (
        first is not None
        and first.covers(timestamps[-1])
        and bands[first.version].surely_within(min(numbers), max(numbers))
    ):
        return []
    found: dict[tuple[int, str], SeriesExcursion] = {}
    current: LimitsVersion | None = None
    for stamp, value, quick in zip(timestamps, values, numbers, strict=True):
        if current is None or not current.covers(stamp):
            current = in_force_at(versions, stamp)
            if current is None:
                continue
        band = bands[current.version]
        if band.surely_within(quick, quick):
            continue
        number = _decimal(value)
        evaluation = None if number is None else band.evaluate(number)
        if number is None or evaluation is None:
            continue
        excess = band.excess(number)
        run = found.get((current.version, evaluation))
        if run is None:
            run = SeriesExcursion(current.version, evaluation, stamp, stamp, 0, value, excess)
            found[(current.version, evaluation)] = run
        run.absorb(stamp, 1, value, excess)
    return sorted(found.values(), key=lambda r: (r.first, r.evaluation))


@dataclass(frozen=True, slots=True)
class _Band:
    """A limits version's bounds as decimals, and its tightest band as floats."""

    alert_low: Decimal | None
    alert_high: Decimal | None
    action_low: Decimal | None
    action_high: Decimal | None
    quick_low: float
    quick_high: float

    @classmethod
    def of(cls, version: LimitsVersion) -> _Band:
        alert_low, alert_high, action_low, action_high = (
            _decimal(getattr(version, name)) for name in BOUNDS
        )
        low = alert_low if alert_low is not None else action_low
        high = alert_high if alert_high is not None else action_high
        return cls(
            alert_low,
            alert_high,
            action_low,
            action_high,
            float("-inf") if low is None else float(low),
            float("inf") if high is None else float(high),
        )

    def surely_within(self, lowest: float, highest: float) -> bool:
        """True when floats from ``lowest`` to ``highest`` lie strictly inside the tightest
        band (False for NaN: the exact rule decides)."""
        return lowest > self.quick_low and highest < self.quick_high

    def evaluate(self, number: Decimal) -> str | None:
        """``action``, ``alert`` or ``None`` (within), as :meth:`LimitsVersion.evaluate`."""
        if _beyond(number, self.action_low, self.action_high):
            return ACTION
        if _beyond(number, self.alert_low, self.alert_high):
            return ALERT
        return None

    def excess(self, number: Decimal) -> float:
        """How far ``number`` lies outside the alert band (the action band without one);
        0 inside it."""
        low, high = self.alert_low, self.alert_high
        if low is None and high is None:
            low, high = self.action_low, self.action_high
        below = low - number if low is not None else 0
        above = number - high if high is not None else 0
        return float(max(below, above, 0))


def _beyond(number: Decimal, low: Decimal | None, high: Decimal | None) -> bool:
    return (low is not None and number < low) or (high is not None and number > high)


def tag_for(name: str, tags: Sequence[str]) -> str | None:
    """The continuous tag that measures the parameter ``name``, if one does: its last
    dotted part is the whole name (``BR1.PH``: pH), its initials (``BR1.DO``: dissolved
    oxygen) or, three letters or more, the start of one of its words (``BR1.TEMP``:
    culture temperature)."""
    words = name.lower().split()
    initials = "".join(w[0] for w in words) if len(words) > 1 else None
    for tag in tags:
        suffix = tag.rsplit(".", 1)[-1].lower()
        if suffix == "".join(words) or suffix == initials:
            return tag
        if len(suffix) >= 3 and any(w.startswith(suffix) for w in words):
            return tag
    return None


def in_force_at(versions: Sequence[LimitsVersion], at: str) -> LimitsVersion | None:
    """The version in force at valid time ``at``; the latest-numbered if several are."""
    found = [v for v in versions if v.covers(at)]
    return max(found, key=lambda v: v.version) if found else None


def report_due(sampled_at: str, deadline_hours: int) -> str:
    """When an action excursion sampled at ``sampled_at`` must have been reported by."""
    due = parse_utc(sampled_at, field="sampled_at") + timedelta(hours=deadline_hours)
    return format_utc(due)


def reporting_status(due: str, reported_at: str | None, now: str) -> str:
    """``reported`` or ``late`` once a report arrived, else ``open`` until ``due``, then
    ``unreported``."""
    if reported_at is not None:
        return "reported" if reported_at <= due else "late"
    return "open" if now <= due else "unreported"


def bounds(source: Mapping[str, Any]) -> dict[str, Any]:
    """The four bound columns of a definition's (or revision's) ``alert`` and ``action``
    pairs; a missing pair or side is ``None``."""
    alert, action = source.get("alert") or {}, source.get("action") or {}
    return {
        "alert_low": alert.get("low"),
        "alert_high": alert.get("high"),
        "action_low": action.get("low"),
        "action_high": action.get("high"),
    }


def changed_limits(changes: Mapping[str, Any]) -> dict[str, Any]:
    """The limit columns a revision's ``changes`` set (a pair replaces both of its sides)."""
    result: dict[str, Any] = {}
    for name in ("unit", "target", "status", "rationale"):
        if name in changes:
            result[name] = changes[name]
    for name, value in bounds(changes).items():
        if name.rsplit("_", 1)[0] in changes:
            result[name] = value
    return result


def _decimal(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except (InvalidOperation, TypeError, ValueError):
        return None
