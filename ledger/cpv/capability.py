# ruff: noqa: RUF002, RUF003 - statistical notation (σ, −, ±, ν, α) is intended
"""Process capability (Cp, Cpk) and performance (Pp, Ppk), with confidence intervals.

- **Within (short-term) σ** — individuals: ``MR̄/d2(2)`` (moving ranges of span 2, published
  ``d2(2) = 1.128``); subgroups: the pooled standard deviation
  ``sqrt(Σ(nᵢ−1)sᵢ² / Σ(nᵢ−1))`` by default, or ``R̄/d2(n)`` (``within="rbar"``) or
  ``S̄/c4(n)`` (``within="sbar"``) to match a chart.
- **Overall (long-term) σ** — the sample standard deviation of all values (n − 1 divisor).
- ``Cp = (USL − LSL)/6σ_within``, ``Cpk = min(USL − x̄, x̄ − LSL)/3σ_within``; ``Pp`` and
  ``Ppk`` the same with ``σ_overall``. With one specification limit only, ``Cpk``/``Ppk`` are
  the one-sided index for that limit and ``Cp``/``Pp`` are ``None``.
- **Intervals** (two-sided, default 95 %), ``n`` = the number of individual values,
  ``ν = n − 1``:
  ``Cp·sqrt(χ²(α/2; ν)/ν) ≤ Cp ≤ Cp·sqrt(χ²(1−α/2; ν)/ν)`` (likewise Pp), and Bissell's
  normal approximation ``Cpk ± z(1−α/2)·sqrt(1/(9n) + Cpk²/(2(n−1)))`` (likewise Ppk) —
  A. F. Bissell, "How reliable is your capability index?", *Applied Statistics* 39(3), 1990,
  pp. 331–340; both as given in Montgomery, *Introduction to Statistical Quality Control*,
  6th ed., §8.3.5. ``ν = n − 1`` is used whichever σ estimate the index rests on (as qcc and
  Montgomery do).
- **Normality** — the Anderson–Darling statistic ``A²`` against a normal with the sample's
  mean and standard deviation, and its p-value from the adjusted statistic
  ``A*² = A²(1 + 0.75/n + 2.25/n²)`` by the piecewise formula of R. B. D'Agostino and
  M. A. Stephens, *Goodness-of-Fit Techniques*, Marcel Dekker, 1986, table 4.9 (the case of
  mean and variance both estimated; the one R's ``nortest::ad.test`` uses). ``A²`` is computed
  here (its value equals ``scipy.stats.anderson``'s statistic) because SciPy's own p-value
  interface changes between 1.13 and 1.19.

Fewer than 25 values carry a warning (the estimates and intervals are then very wide); fewer
than 8 skip the normality check, which the p-value formula does not cover.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Literal

import numpy as np

from ledger.cpv._checks import FloatArray, number, series, subgroup_matrix
from ledger.cpv.constants import factors
from ledger.errors import ValidationFailed

__all__ = [
    "MIN_POINTS",
    "Capability",
    "Index",
    "Interval",
    "Normality",
    "anderson_darling",
    "capability_individuals",
    "capability_subgroups",
    "cp_interval",
    "cpk_interval",
]


@cache
def _stats() -> ModuleType:
    """``scipy.stats``, imported on first use: it costs a command that never computes a
    capability (every ``cmo-ledger`` command imports the views) half a second to start."""
    import importlib

    return importlib.import_module("scipy.stats")


MIN_POINTS = 25
"""Below this many values a capability answer carries a warning."""
MIN_NORMALITY_POINTS = 8


@dataclass(frozen=True)
class Interval:
    lower: float
    upper: float
    confidence: float


@dataclass(frozen=True)
class Index:
    """A capability or performance index and its confidence interval."""

    value: float
    interval: Interval


@dataclass(frozen=True)
class Normality:
    """Anderson–Darling test of normality (mean and variance estimated)."""

    statistic: float
    """``A²``."""
    adjusted_statistic: float
    """``A*² = A²(1 + 0.75/n + 2.25/n²)``."""
    p_value: float
    method: str = "Anderson-Darling; p-value per D'Agostino & Stephens (1986), table 4.9"


@dataclass(frozen=True)
class Capability:
    n: int
    mean: float
    sigma_within: float
    sigma_overall: float
    within_method: Literal["moving_range", "pooled", "rbar", "sbar"]
    lsl: float | None
    usl: float | None
    cp: Index | None
    cpk: Index
    pp: Index | None
    ppk: Index
    normality: Normality | None
    warnings: tuple[str, ...]


def _confidence(confidence: object) -> float:
    value = number(confidence, field="confidence")
    if not 0 < value < 1:
        raise ValidationFailed("confidence must be between 0 and 1", field="confidence")
    return value


def cp_interval(cp: float, n: int, confidence: float = 0.95) -> Interval:
    """The chi-square interval for Cp (or Pp) from ``n`` values."""
    level = _confidence(confidence)
    cp = number(cp, field="cp")
    nu = _dof(n)
    alpha = 1 - level
    low = cp * math.sqrt(float(_stats().chi2.ppf(alpha / 2, nu)) / nu)
    high = cp * math.sqrt(float(_stats().chi2.ppf(1 - alpha / 2, nu)) / nu)
    return Interval(low, high, level)


def cpk_interval(cpk: float, n: int, confidence: float = 0.95) -> Interval:
    """Bissell's (1990) approximate interval for Cpk (or Ppk) from ``n`` values."""
    level = _confidence(confidence)
    cpk = number(cpk, field="cpk")
    nu = _dof(n)
    z = float(_stats().norm.ppf(1 - (1 - level) / 2))
    half = z * math.sqrt(1 / (9 * n) + cpk**2 / (2 * nu))
    return Interval(cpk - half, cpk + half, level)


def _dof(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValidationFailed("needs at least 2 values", field="n")
    return n - 1


def anderson_darling(values: Sequence[float]) -> Normality:
    """Anderson–Darling normality test with estimated mean and variance (n ≥ 8)."""
    x = np.sort(series(values, field="values", min_size=MIN_NORMALITY_POINTS))
    n = len(x)
    sd = float(np.std(x, ddof=1))
    if not sd > 0:
        raise ValidationFailed("the values show no variation", field="values")
    z = (x - float(np.mean(x))) / sd
    i = np.arange(1, n + 1, dtype=np.float64)
    terms = (2 * i - 1) * (_stats().norm.logcdf(z) + _stats().norm.logsf(z[::-1]))
    a2 = float(-n - np.sum(terms) / n)
    adjusted = a2 * (1 + 0.75 / n + 2.25 / n**2)
    return Normality(a2, adjusted, _ad_p_value(adjusted))


def _ad_p_value(a: float) -> float:
    """D'Agostino & Stephens (1986), table 4.9: p-value of the adjusted statistic ``A*²``."""
    if a >= 0.6:
        p = math.exp(1.2937 - 5.709 * a + 0.0186 * a**2)
    elif a >= 0.34:
        p = math.exp(0.9177 - 4.279 * a - 1.38 * a**2)
    elif a >= 0.2:
        p = 1 - math.exp(-8.318 + 42.796 * a - 59.938 * a**2)
    else:
        p = 1 - math.exp(-13.436 + 101.14 * a - 223.73 * a**2)
    return min(1.0, max(0.0, p))


def _spec(lsl: object, usl: object) -> tuple[float | None, float | None]:
    low = None if lsl is None else number(lsl, field="lsl")
    high = None if usl is None else number(usl, field="usl")
    if low is None and high is None:
        raise ValidationFailed("give a lower or an upper specification limit", field="lsl")
    if low is not None and high is not None and not low < high:
        raise ValidationFailed("the lower specification limit must be below the upper", field="lsl")
    return low, high


def _indices(
    values: FloatArray,
    sigma_within: float,
    within_method: Literal["moving_range", "pooled", "rbar", "sbar"],
    lsl: float | None,
    usl: float | None,
    confidence: float,
) -> Capability:
    n = len(values)
    mean = float(np.mean(values))
    sigma_overall = float(np.std(values, ddof=1))
    if not (sigma_within > 0 and sigma_overall > 0):
        raise ValidationFailed("the values show no variation", field="values")

    def pair(sigma: float) -> tuple[Index | None, Index]:
        spread = None
        if lsl is not None and usl is not None:
            value = (usl - lsl) / (6 * sigma)
            spread = Index(value, cp_interval(value, n, confidence))
        sides = [(usl - mean) / (3 * sigma)] if usl is not None else []
        sides += [(mean - lsl) / (3 * sigma)] if lsl is not None else []
        worst = min(sides)
        return spread, Index(worst, cpk_interval(worst, n, confidence))

    cp, cpk = pair(sigma_within)
    pp, ppk = pair(sigma_overall)
    warnings: list[str] = []
    if n < MIN_POINTS:
        warnings.append(
            f"only {n} values (fewer than {MIN_POINTS}): the indices and their intervals are "
            "imprecise"
        )
    normality = None
    if n >= MIN_NORMALITY_POINTS:
        normality = anderson_darling(values.tolist())
    else:
        warnings.append(f"fewer than {MIN_NORMALITY_POINTS} values: normality not checked")
    return Capability(
        n=n,
        mean=mean,
        sigma_within=float(sigma_within),
        sigma_overall=sigma_overall,
        within_method=within_method,
        lsl=lsl,
        usl=usl,
        cp=cp,
        cpk=cpk,
        pp=pp,
        ppk=ppk,
        normality=normality,
        warnings=tuple(warnings),
    )


def capability_individuals(
    values: Sequence[float],
    *,
    lsl: float | None = None,
    usl: float | None = None,
    confidence: float = 0.95,
) -> Capability:
    """Capability of individual values; within σ = ``MR̄/d2(2)``."""
    low, high = _spec(lsl, usl)
    level = _confidence(confidence)
    x = series(values, field="values", min_size=2)
    sigma_within = float(np.mean(np.abs(np.diff(x)))) / factors(2).d2
    return _indices(x, sigma_within, "moving_range", low, high, level)


def capability_subgroups(
    subgroups: Sequence[Sequence[float]],
    *,
    lsl: float | None = None,
    usl: float | None = None,
    confidence: float = 0.95,
    within: Literal["pooled", "rbar", "sbar"] = "pooled",
) -> Capability:
    """Capability of equal-size subgroups (2..25); within σ pooled unless ``within`` says."""
    low, high = _spec(lsl, usl)
    level = _confidence(confidence)
    data = subgroup_matrix(subgroups, field="subgroups")
    size = int(data.shape[1])
    if within == "pooled":
        sigma_within = math.sqrt(float(np.mean(np.var(data, axis=1, ddof=1))))
    elif within == "rbar":
        sigma_within = float(np.mean(np.ptp(data, axis=1))) / factors(size).d2
    elif within == "sbar":
        sigma_within = float(np.mean(np.std(data, axis=1, ddof=1))) / factors(size).c4
    else:
        raise ValidationFailed(f"unknown within-sigma method {within!r}", field="within")
    return _indices(data.reshape(-1), sigma_within, within, low, high, level)
