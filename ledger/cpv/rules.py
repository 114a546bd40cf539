# ruff: noqa: RUF002, RUF003 - statistical notation (σ, −, ±, ν, α) is intended
"""Run rules: the eight Nelson tests and the four Western Electric rules.

Sources: L. S. Nelson, "The Shewhart Control Chart — Tests for Special Causes", *Journal of
Quality Technology* 16(4), 1984, pp. 237–239 (rules 1–8); Western Electric Company,
*Statistical Quality Control Handbook*, 1956, Part A, section 1-B, "Tests for unnatural
patterns" (rules WE1–WE4).

A series is read against a centre line ``c`` and the standard deviation of one plotted point
``σ`` (for a chart from :mod:`ledger.cpv.charts`: ``chart.centre`` and ``chart.point_sigma``,
i.e. ``MR̄/d2`` for individuals, ``R̄/(d2·√n)`` or ``S̄/(c4·√n)`` for subgroup means).
"Beyond kσ" means strictly more than ``kσ`` from ``c`` (a point exactly on a zone boundary is
not beyond it); "within 1σ" means strictly less than ``σ`` from ``c``; a point exactly on
the centre line is on neither side. Rules 1, 2, 5 and 6 concern one side at a time.

====  ===========================================================  ==================
Rule  Pattern                                                      Points named
====  ===========================================================  ==================
1     one point beyond 3σ                                          that point
2     9 points in a row on the same side of the centre line        the whole run
3     6 points in a row steadily increasing or decreasing          the whole run
4     14 points in a row alternating up and down                   the whole run
5     2 out of 3 points in a row beyond 2σ, same side              the points beyond
6     4 out of 5 points in a row beyond 1σ, same side              the points beyond
7     15 points in a row within 1σ (either side)                   the whole run
8     8 points in a row beyond 1σ, either side (none within 1σ)    the whole run
====  ===========================================================  ==================

Rule 8 follows the usual reading of Nelson's "eight points in a row on both sides of the
centreline with none in zone C" (Minitab's test 8): the points may fall on either side.
"Steadily" (rule 3) means strictly: a tie ends the run; a zero step also ends an alternation
(rule 4).

A run longer than the minimum is reported once, naming all its points; for rules 5 and 6
every window of 3 (or 5) consecutive points is examined (at the start of the series the
window is shortened to the points there are), and triggering windows that share points merge
into one violation.

Western Electric, mapped to Nelson (``WESTERN_ELECTRIC`` lists the Nelson number of WE1..WE4)::

    WE1 = N1  one point beyond 3σ
    WE2 = N5  2 of 3 successive points beyond 2σ, same side
    WE3 = N6  4 of 5 successive points beyond 1σ, same side
    WE4 ≈ N2  but with a run of EIGHT successive points on one side (Nelson uses nine)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from ledger.cpv._checks import FloatArray, number, series
from ledger.errors import ValidationFailed

__all__ = [
    "NELSON",
    "RULE_NAMES",
    "WESTERN_ELECTRIC",
    "Violation",
    "evaluate_chart",
    "nelson",
    "western_electric",
]

NELSON: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
#: WE1..WE4 as Nelson rule numbers; WE4 is rule 2 with a run of 8 instead of 9.
WESTERN_ELECTRIC: tuple[int, ...] = (1, 5, 6, 2)
NELSON_RUN = 9
WESTERN_ELECTRIC_RUN = 8

RULE_NAMES: dict[int, str] = {
    1: "1 point beyond 3 sigma",
    2: "9 points in a row on one side of the centre line",
    3: "6 points in a row steadily increasing or decreasing",
    4: "14 points in a row alternating up and down",
    5: "2 of 3 points beyond 2 sigma on one side",
    6: "4 of 5 points beyond 1 sigma on one side",
    7: "15 points in a row within 1 sigma",
    8: "8 points in a row beyond 1 sigma, either side",
}
_WE_NAMES: dict[int, str] = {
    1: "1 point beyond 3 sigma",
    2: "2 of 3 successive points beyond 2 sigma on one side",
    3: "4 of 5 successive points beyond 1 sigma on one side",
    4: "8 successive points on one side of the centre line",
}


@dataclass(frozen=True)
class Violation:
    """One occurrence of a pattern: which rule, and the points that form it."""

    scheme: Literal["nelson", "western_electric"]
    rule: int
    """The rule's number in its scheme (Nelson 1..8, Western Electric 1..4)."""
    nelson_rule: int
    """The Nelson rule it is (equal to ``rule`` for the Nelson scheme)."""
    name: str
    indexes: tuple[int, ...]

    @property
    def label(self) -> str:
        return f"{'N' if self.scheme == 'nelson' else 'WE'}{self.rule}"


class _Charted(Protocol):
    @property
    def points(self) -> tuple[float, ...]: ...
    @property
    def centre(self) -> float: ...
    @property
    def point_sigma(self) -> float: ...


def _runs(mask: npt.NDArray[np.bool_], minimum: int) -> list[tuple[int, int]]:
    """Maximal runs of True of at least ``minimum`` items, as inclusive (start, end)."""
    found: list[tuple[int, int]] = []
    start: int | None = None
    for i, flag in enumerate([*mask, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            if i - start >= minimum:
                found.append((start, i - 1))
            start = None
    return found


def _k_of_m(beyond: Sequence[bool], k: int, m: int) -> list[tuple[int, ...]]:
    """Clusters of windows of ``m`` consecutive points holding at least ``k`` flagged ones."""
    clusters: list[tuple[int, int]] = []
    for end in range(len(beyond)):
        start = max(0, end - m + 1)
        if sum(beyond[start : end + 1]) >= k:
            if clusters and start <= clusters[-1][1]:
                clusters[-1] = (clusters[-1][0], end)
            else:
                clusters.append((start, end))
    return [tuple(i for i in range(s, e + 1) if beyond[i]) for s, e in clusters]


def _check(values: object, centre: object, sigma: object) -> tuple[FloatArray, float, float]:
    points = series(values, field="values")
    c = number(centre, field="centre")
    s = number(sigma, field="sigma")
    if not s > 0:
        raise ValidationFailed("sigma must be positive", field="sigma")
    return points, c, s


def _detect(
    points: FloatArray, c: float, s: float, rule: int, same_side_run: int
) -> Iterable[tuple[int, ...]]:
    dev = points - c
    if rule == 1:
        upper, lower = c + 3 * s, c - 3 * s
        return [(i,) for i, v in enumerate(points) if v > upper or v < lower]
    if rule == 2:
        return [
            tuple(range(a, b + 1))
            for mask in (dev > 0, dev < 0)
            for a, b in _runs(mask, same_side_run)
        ]
    steps = np.diff(points)
    if rule == 3:
        return [
            tuple(range(a, b + 2)) for mask in (steps > 0, steps < 0) for a, b in _runs(mask, 5)
        ]
    if rule == 4:
        alternating = steps[:-1] * steps[1:] < 0 if len(steps) > 1 else np.zeros(0, dtype=bool)
        return [tuple(range(a, b + 3)) for a, b in _runs(alternating, 12)]
    if rule in (5, 6):
        k, m, zone = (2, 3, 2.0) if rule == 5 else (4, 5, 1.0)
        return [
            cluster
            for beyond in (dev > zone * s, dev < -zone * s)
            for cluster in _k_of_m([bool(b) for b in beyond], k, m)
        ]
    if rule == 7:
        return [tuple(range(a, b + 1)) for a, b in _runs(np.abs(dev) < s, 15)]
    if rule == 8:
        return [tuple(range(a, b + 1)) for a, b in _runs(np.abs(dev) > s, 8)]
    raise ValidationFailed(f"no Nelson rule {rule}: rules are 1..8", field="rules")


def nelson(
    values: Sequence[float],
    centre: float,
    sigma: float,
    *,
    rules: Sequence[int] = NELSON,
) -> tuple[Violation, ...]:
    """The Nelson rules ``rules`` (default all eight) on ``values``; ordered by first point."""
    points, c, s = _check(values, centre, sigma)
    found = [
        Violation("nelson", rule, rule, RULE_NAMES[rule], indexes)
        for rule in _rule_numbers(rules)
        for indexes in _detect(points, c, s, rule, NELSON_RUN)
    ]
    return tuple(sorted(found, key=lambda v: (v.indexes[0], v.rule, v.indexes)))


def western_electric(values: Sequence[float], centre: float, sigma: float) -> tuple[Violation, ...]:
    """The four Western Electric rules on ``values``; ordered by first point."""
    points, c, s = _check(values, centre, sigma)
    found = [
        Violation("western_electric", number_, rule, _WE_NAMES[number_], indexes)
        for number_, rule in enumerate(WESTERN_ELECTRIC, start=1)
        for indexes in _detect(points, c, s, rule, WESTERN_ELECTRIC_RUN)
    ]
    return tuple(sorted(found, key=lambda v: (v.indexes[0], v.rule, v.indexes)))


def evaluate_chart(
    chart: _Charted, *, scheme: Literal["nelson", "western_electric"] = "nelson"
) -> tuple[Violation, ...]:
    """The rules of ``scheme`` on a chart's plotted points, its centre and ``point_sigma``."""
    if scheme == "nelson":
        return nelson(chart.points, chart.centre, chart.point_sigma)
    if scheme == "western_electric":
        return western_electric(chart.points, chart.centre, chart.point_sigma)
    raise ValidationFailed(f"unknown rule scheme {scheme!r}", field="scheme")


def _rule_numbers(rules: Sequence[int]) -> tuple[int, ...]:
    if isinstance(rules, (str, bytes)) or not isinstance(rules, Sequence):
        raise ValidationFailed("expected a sequence of rule numbers", field="rules")
    for position, rule in enumerate(rules):
        if isinstance(rule, bool) or not isinstance(rule, int) or rule not in RULE_NAMES:
            raise ValidationFailed(
                f"no Nelson rule {rule!r}: rules are 1..8", field=f"rules[{position}]"
            )
    return tuple(dict.fromkeys(rules))
