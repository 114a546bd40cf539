# ruff: noqa: RUF002, RUF003 - statistical notation (σ, −, ±, ν, α) is intended
"""Control-chart factors for subgroup sizes 2..25.

The published table
-------------------
``A2, A3, D3, D4, B3, B4, d2, d3`` are the standard table of factors for variables control
charts as published in ASTM E2587 (*Standard Practice for Use of Control Charts in
Statistical Process Control*, which takes them from ASTM MNL 7, *Manual on Presentation of
Data and Control Chart Analysis*) and reproduced in the NIST/SEMATECH e-Handbook of
Statistical Methods, section 6.3.2, and in Montgomery, *Introduction to Statistical Quality
Control*, Appendix table VI. They are copied, not tuned; ``tests/cpv/test_constants.py``
recomputes every one from its definition and holds the table to within one unit in its last
printed place (the published table carries a handful of historical last-digit roundings,
e.g. ``D4(3) = 2.574`` where the definition gives 2.5746).

Definitions
-----------
- ``d2(n)`` is the expected range of ``n`` independent standard normal values,
  ``d2(n) = ∫ [1 − Φ(x)ⁿ − (1 − Φ(x))ⁿ] dx`` over the real line. It has no closed form
  for ``n > 3``; the table value is used (three decimals, as published), which is also what
  the published worked examples use (NIST 6.3.2.2 divides by 1.128).
- ``d3(n)`` is the standard deviation of that range.
- ``c4(n) = sqrt(2 / (n − 1)) · Γ(n / 2) / Γ((n − 1) / 2)`` is the expected sample standard
  deviation of ``n`` standard normal values; it is computed from this closed form (through
  ``lgamma``), not taken from a table.
- ``A2 = 3 / (d2·√n)``, ``D3 = max(0, 1 − 3·d3/d2)``, ``D4 = 1 + 3·d3/d2``,
  ``A3 = 3 / (c4·√n)``, ``B3 = max(0, 1 − 3·sqrt(1 − c4²)/c4)``,
  ``B4 = 1 + 3·sqrt(1 − c4²)/c4``, and for the individuals chart ``E2 = 3/d2(2)``
  (published as 2.66).

How the charts use them
-----------------------
The location charts (individuals, X̄) are drawn at ``centre ± 3σ̂`` with
``σ̂ = MR̄/d2(2)``, ``R̄/d2(n)`` or ``S̄/c4(n)``: that is exactly ``E2·MR̄``, ``A2·R̄`` and
``A3·S̄`` with the factors unrounded, so the control limits and the run rules' zones
(:mod:`ledger.cpv.rules`) are the same lines. The dispersion charts (MR, R, S) use the table's
``D3, D4, B3, B4`` as published.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ledger.errors import ValidationFailed

__all__ = ["MAX_SUBGROUP", "MIN_SUBGROUP", "ChartFactors", "c4", "d2", "factors"]

MIN_SUBGROUP = 2
MAX_SUBGROUP = 25

# n:   d2     d3     A2     D3     D4     A3     B3     B4   (ASTM E2587 / NIST 6.3.2 table)
_TABLE: dict[int, tuple[float, float, float, float, float, float, float, float]] = {
    2: (1.128, 0.853, 1.880, 0.000, 3.267, 2.659, 0.000, 3.267),
    3: (1.693, 0.888, 1.023, 0.000, 2.574, 1.954, 0.000, 2.568),
    4: (2.059, 0.880, 0.729, 0.000, 2.282, 1.628, 0.000, 2.266),
    5: (2.326, 0.864, 0.577, 0.000, 2.114, 1.427, 0.000, 2.089),
    6: (2.534, 0.848, 0.483, 0.000, 2.004, 1.287, 0.030, 1.970),
    7: (2.704, 0.833, 0.419, 0.076, 1.924, 1.182, 0.118, 1.882),
    8: (2.847, 0.820, 0.373, 0.136, 1.864, 1.099, 0.185, 1.815),
    9: (2.970, 0.808, 0.337, 0.184, 1.816, 1.032, 0.239, 1.761),
    10: (3.078, 0.797, 0.308, 0.223, 1.777, 0.975, 0.284, 1.716),
    11: (3.173, 0.787, 0.285, 0.256, 1.744, 0.927, 0.321, 1.679),
    12: (3.258, 0.778, 0.266, 0.283, 1.717, 0.886, 0.354, 1.646),
    13: (3.336, 0.770, 0.249, 0.307, 1.693, 0.850, 0.382, 1.618),
    14: (3.407, 0.763, 0.235, 0.328, 1.672, 0.817, 0.406, 1.594),
    15: (3.472, 0.756, 0.223, 0.347, 1.653, 0.789, 0.428, 1.572),
    16: (3.532, 0.750, 0.212, 0.363, 1.637, 0.763, 0.448, 1.552),
    17: (3.588, 0.744, 0.203, 0.378, 1.622, 0.739, 0.466, 1.534),
    18: (3.640, 0.739, 0.194, 0.391, 1.608, 0.718, 0.482, 1.518),
    19: (3.689, 0.734, 0.187, 0.403, 1.597, 0.698, 0.497, 1.503),
    20: (3.735, 0.729, 0.180, 0.415, 1.585, 0.680, 0.510, 1.490),
    21: (3.778, 0.724, 0.173, 0.425, 1.575, 0.663, 0.523, 1.477),
    22: (3.819, 0.720, 0.167, 0.434, 1.566, 0.647, 0.534, 1.466),
    23: (3.858, 0.716, 0.162, 0.443, 1.557, 0.633, 0.545, 1.455),
    24: (3.895, 0.712, 0.157, 0.451, 1.548, 0.619, 0.555, 1.445),
    25: (3.931, 0.708, 0.153, 0.459, 1.541, 0.606, 0.565, 1.435),
}

#: The published ``c4`` column (four decimals), kept only so the tests can hold the closed
#: form to it; the charts use :func:`c4`.
PUBLISHED_C4: dict[int, float] = {
    2: 0.7979, 3: 0.8862, 4: 0.9213, 5: 0.9400, 6: 0.9515, 7: 0.9594, 8: 0.9650,
    9: 0.9693, 10: 0.9727, 11: 0.9754, 12: 0.9776, 13: 0.9794, 14: 0.9810, 15: 0.9823,
    16: 0.9835, 17: 0.9845, 18: 0.9854, 19: 0.9862, 20: 0.9869, 21: 0.9876, 22: 0.9882,
    23: 0.9887, 24: 0.9892, 25: 0.9896,
}  # fmt: skip

#: The published individuals-chart factor ``E2 = 3/d2(2)``, rounded.
PUBLISHED_E2 = 2.66


@dataclass(frozen=True)
class ChartFactors:
    """The factors for one subgroup size: the published table plus ``c4`` from its closed form."""

    n: int
    d2: float
    d3: float
    c4: float
    A2: float
    A3: float
    D3: float
    D4: float
    B3: float
    B4: float


def _check_size(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not MIN_SUBGROUP <= n <= MAX_SUBGROUP:
        raise ValidationFailed(
            f"subgroup size must be an integer in {MIN_SUBGROUP}..{MAX_SUBGROUP}, got {n!r}",
            field="subgroup_size",
        )
    return n


def c4(n: int) -> float:
    """``c4(n) = sqrt(2/(n−1)) · Γ(n/2) / Γ((n−1)/2)``, computed through ``lgamma``."""
    n = _check_size(n)
    return math.sqrt(2.0 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))


def d2(n: int) -> float:
    """``d2(n)`` from the published table (three decimals)."""
    return _TABLE[_check_size(n)][0]


def factors(n: int) -> ChartFactors:
    """All factors for subgroup size ``n`` (2..25)."""
    d2_, d3_, a2, d3_factor, d4, a3, b3, b4 = _TABLE[_check_size(n)]
    return ChartFactors(
        n=n, d2=d2_, d3=d3_, c4=c4(n), A2=a2, A3=a3, D3=d3_factor, D4=d4, B3=b3, B4=b4
    )
