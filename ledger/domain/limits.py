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

    def excess(self, value: str) -> float:
        """How far ``value`` lies outside the alert band (the action band without one);
        0 inside it."""
        number = _decimal(value)
        if number is None:
            return 0.0
        low, high = self.alert_low, self.alert_high
        if low is None and high is None:
            low, high = self.action_low, self.action_high
        below = ((bound := _decimal(low)) is not None and bound - number) or 0
        above = ((bound := _decimal(high)) is not None and number - bound) or 0
        return float(max(below, above, 0))

    def evaluate(self, value: str) -> str:
        """``within``, ``alert`` or ``action`` for the decimal string ``value``."""
        number = _decimal(value)
        if number is None:
            return NO_LIMITS
        if _outside(number, self.action_low, self.action_high):
            return ACTION
        if _outside(number, self.alert_low, self.alert_high):
            return ALERT
        return WITHIN


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


def series_excursions(
    timestamps: Sequence[str], values: Sequence[str], versions: Sequence[LimitsVersion]
) -> list[SeriesExcursion]:
    """Each (limits version, alert or action) run of ``values`` outside the limits in force
    at its timestamp: first and last time, count and worst value; in time order."""
    found: dict[tuple[int, str], SeriesExcursion] = {}
    for stamp, value in zip(timestamps, values, strict=True):
        version = in_force_at(versions, stamp)
        if version is None:
            continue
        evaluation = version.evaluate(value)
        if evaluation not in (ALERT, ACTION):
            continue
        excess = version.excess(value)
        run = found.get((version.version, evaluation))
        if run is None:
            run = SeriesExcursion(version.version, evaluation, stamp, stamp, 0, value, excess)
            found[(version.version, evaluation)] = run
        run.last, run.count = stamp, run.count + 1
        if excess > run.excess:
            run.worst, run.excess = value, excess
    return sorted(found.values(), key=lambda r: (r.first, r.evaluation))


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


def _outside(value: Decimal, low: str | None, high: str | None) -> bool:
    below = (bound := _decimal(low)) is not None and value < bound
    above = (bound := _decimal(high)) is not None and value > bound
    return below or above
