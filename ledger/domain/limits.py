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
    "bounds",
    "changed_limits",
    "in_force_at",
    "report_due",
    "reporting_status",
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
        if _outside(number, self.action_low, self.action_high):
            return ACTION
        if _outside(number, self.alert_low, self.alert_high):
            return ALERT
        return WITHIN


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
