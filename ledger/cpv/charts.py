# ruff: noqa: RUF001, RUF002, RUF003 - statistical notation (σ, −, ±, ν, α) is intended
"""Shewhart control charts: individuals and moving range (I-MR), X̄-R and X̄-S.

Limits come from a *baseline* and are then applied to every point; they are never
recomputed from the points being evaluated. The baseline is either a subset of the points,
given by index (``baseline=[0, 1, ..., 19]``), or a separate series
(``baseline_values=`` / ``baseline_subgroups=``); without either, every point is the
baseline (a phase I study).

- **I-MR.** Centre ``x̄`` = mean of the baseline individuals; ``MR̄`` = mean of the moving
  ranges of span 2 between baseline points that are *adjacent in the series* (a gap in an
  index baseline breaks the chain: no range is taken across excluded points);
  ``σ̂ = MR̄/d2(2)`` with the published ``d2(2) = 1.128``; individuals limits
  ``x̄ ± 3σ̂`` (= ``x̄ ± E2·MR̄`` with ``E2 = 3/1.128 = 2.6596``, published rounded as 2.66);
  MR chart ``UCL = D4(2)·MR̄ = 3.267·MR̄``, ``LCL = 0``.
- **X̄-R.** ``X̿`` = mean of the baseline subgroup means, ``R̄`` = mean baseline range,
  ``σ̂ = R̄/d2(n)``; X̄ limits ``X̿ ± 3σ̂/√n`` (= ``X̿ ± A2·R̄``); R chart ``D3·R̄, D4·R̄``.
- **X̄-S.** ``S̄`` = mean baseline subgroup standard deviation (n − 1 divisor),
  ``σ̂ = S̄/c4(n)``; X̄ limits ``X̿ ± 3σ̂/√n`` (= ``X̿ ± A3·S̄``); S chart ``B3·S̄, B4·S̄``.

The constants and their sources are in :mod:`ledger.cpv.constants`. Each chart exposes
``points``, ``centre`` and ``point_sigma`` (the standard deviation of one plotted point:
``σ̂`` for individuals, ``σ̂/√n`` for subgroup means), which is what the run rules in
:mod:`ledger.cpv.rules` take.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ledger.cpv._checks import FloatArray, baseline_indexes, series, subgroup_matrix
from ledger.cpv.constants import factors
from ledger.errors import ValidationFailed

__all__ = [
    "ControlLimits",
    "IndividualsChart",
    "SubgroupChart",
    "individuals_chart",
    "xbar_r_chart",
    "xbar_s_chart",
]


@dataclass(frozen=True)
class ControlLimits:
    """A centre line and its lower and upper control limits."""

    centre: float
    lower: float
    upper: float

    def outside(self, values: Sequence[float]) -> tuple[int, ...]:
        """Indexes of the values strictly beyond either limit."""
        return tuple(i for i, v in enumerate(values) if v > self.upper or v < self.lower)


@dataclass(frozen=True)
class IndividualsChart:
    """An individuals and moving range chart: the points, the limits and what they came from."""

    values: tuple[float, ...]
    moving_ranges: tuple[float | None, ...]
    """``|x[i] − x[i−1]|``; ``None`` for the first point."""
    individuals: ControlLimits
    moving_range: ControlLimits
    mr_bar: float
    sigma: float
    """``σ̂ = MR̄/d2(2)``, the within (short-term) standard deviation."""
    baseline: tuple[int, ...] | None
    """The baseline's point indexes, or ``None`` when it was a separate series."""
    baseline_size: int

    @property
    def points(self) -> tuple[float, ...]:
        return self.values

    @property
    def centre(self) -> float:
        return self.individuals.centre

    @property
    def point_sigma(self) -> float:
        return self.sigma


@dataclass(frozen=True)
class SubgroupChart:
    """An X̄-R or X̄-S chart."""

    kind: Literal["xbar_r", "xbar_s"]
    subgroup_size: int
    means: tuple[float, ...]
    dispersions: tuple[float, ...]
    """Each subgroup's range (X̄-R) or standard deviation (X̄-S)."""
    location: ControlLimits
    """The X̄ chart."""
    dispersion: ControlLimits
    """The R or S chart."""
    dispersion_bar: float
    """``R̄`` or ``S̄`` of the baseline."""
    sigma: float
    """``σ̂ = R̄/d2(n)`` or ``S̄/c4(n)``: the within-subgroup standard deviation."""
    baseline: tuple[int, ...] | None
    baseline_size: int

    @property
    def points(self) -> tuple[float, ...]:
        return self.means

    @property
    def centre(self) -> float:
        return self.location.centre

    @property
    def point_sigma(self) -> float:
        """The standard deviation of a subgroup mean, ``σ̂/√n``."""
        return self.sigma / math.sqrt(self.subgroup_size)


def _floats(array: FloatArray) -> tuple[float, ...]:
    return tuple(float(v) for v in array)


def _pick_baseline(
    count: int, baseline: Sequence[int] | None, has_separate: bool
) -> tuple[int, ...] | None:
    if baseline is not None and has_separate:
        raise ValidationFailed(
            "give the baseline either by index or as a separate series, not both",
            field="baseline",
        )
    if baseline is None:
        return None if has_separate else tuple(range(count))
    return baseline_indexes(baseline, count=count, field="baseline")


def _no_variation(sigma: float) -> None:
    if not sigma > 0:
        raise ValidationFailed(
            "the baseline shows no variation: control limits would be degenerate",
            field="baseline",
        )


def individuals_chart(
    values: Sequence[float],
    *,
    baseline: Sequence[int] | None = None,
    baseline_values: Sequence[float] | None = None,
) -> IndividualsChart:
    """An I-MR chart of ``values`` with limits from the baseline (see the module docstring)."""
    points = series(values, field="values")
    chosen = _pick_baseline(len(points), baseline, baseline_values is not None)
    if chosen is None:
        base = series(baseline_values, field="baseline_values", min_size=2)
        base_ranges = np.abs(np.diff(base))
        base_size = len(base)
    else:
        base = points[list(chosen)]
        members = set(chosen)
        pairs = [(i, i + 1) for i in chosen if i + 1 in members]
        base_ranges = np.array([abs(points[j] - points[i]) for i, j in pairs], dtype=np.float64)
        base_size = len(chosen)
        if not pairs:
            raise ValidationFailed(
                "the baseline needs at least two adjacent points for a moving range",
                field="baseline",
            )
    d2 = factors(2).d2
    centre = float(np.mean(base))
    mr_bar = float(np.mean(base_ranges))
    sigma = mr_bar / d2
    _no_variation(sigma)
    ranges: list[float | None] = [None, *(float(r) for r in np.abs(np.diff(points)))]
    return IndividualsChart(
        values=_floats(points),
        moving_ranges=tuple(ranges),
        individuals=ControlLimits(centre, centre - 3 * sigma, centre + 3 * sigma),
        moving_range=ControlLimits(mr_bar, factors(2).D3 * mr_bar, factors(2).D4 * mr_bar),
        mr_bar=mr_bar,
        sigma=sigma,
        baseline=chosen,
        baseline_size=base_size,
    )


def _subgroup_chart(
    kind: Literal["xbar_r", "xbar_s"],
    subgroups: Sequence[Sequence[float]],
    baseline: Sequence[int] | None,
    baseline_subgroups: Sequence[Sequence[float]] | None,
) -> SubgroupChart:
    data = subgroup_matrix(subgroups, field="subgroups")
    size = int(data.shape[1])
    chosen = _pick_baseline(int(data.shape[0]), baseline, baseline_subgroups is not None)
    if chosen is None:
        base = subgroup_matrix(baseline_subgroups, field="baseline_subgroups")
        if base.shape[1] != size:
            raise ValidationFailed(
                f"baseline subgroups have {base.shape[1]} values but the charted ones have "
                f"{size}: all subgroups must be the same size",
                field="baseline_subgroups",
            )
    else:
        base = data[list(chosen)]
    f = factors(size)

    def dispersion(matrix: FloatArray) -> FloatArray:
        if kind == "xbar_r":
            return np.asarray(np.ptp(matrix, axis=1), dtype=np.float64)
        return np.asarray(np.std(matrix, axis=1, ddof=1), dtype=np.float64)

    centre = float(np.mean(np.mean(base, axis=1)))
    bar = float(np.mean(dispersion(base)))
    if kind == "xbar_r":
        sigma = bar / f.d2
        spread = ControlLimits(bar, f.D3 * bar, f.D4 * bar)
    else:
        sigma = bar / f.c4
        spread = ControlLimits(bar, f.B3 * bar, f.B4 * bar)
    _no_variation(sigma)
    half_width = 3 * (sigma / math.sqrt(size))  # the same expression as point_sigma
    return SubgroupChart(
        kind=kind,
        subgroup_size=size,
        means=_floats(np.mean(data, axis=1)),
        dispersions=_floats(dispersion(data)),
        location=ControlLimits(centre, centre - half_width, centre + half_width),
        dispersion=spread,
        dispersion_bar=bar,
        sigma=sigma,
        baseline=chosen,
        baseline_size=int(base.shape[0]),
    )


def xbar_r_chart(
    subgroups: Sequence[Sequence[float]],
    *,
    baseline: Sequence[int] | None = None,
    baseline_subgroups: Sequence[Sequence[float]] | None = None,
) -> SubgroupChart:
    """An X̄-R chart; ``baseline`` indexes subgroups, not individual values."""
    return _subgroup_chart("xbar_r", subgroups, baseline, baseline_subgroups)


def xbar_s_chart(
    subgroups: Sequence[Sequence[float]],
    *,
    baseline: Sequence[int] | None = None,
    baseline_subgroups: Sequence[Sequence[float]] | None = None,
) -> SubgroupChart:
    """An X̄-S chart; ``baseline`` indexes subgroups, not individual values."""
    return _subgroup_chart("xbar_s", subgroups, baseline, baseline_subgroups)
