"""The control-chart factors: the published table held to the factors' definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from ledger.cpv import constants
from ledger.cpv.constants import PUBLISHED_C4, PUBLISHED_E2, c4, d2, factors
from ledger.errors import ValidationFailed

SIZES = range(2, 26)
ULP = 0.001 + 1e-9  # one unit in the table's last (third) decimal


def exact_d2(n: int) -> float:
    """d2(n) = integral of 1 - Phi(x)^n - (1 - Phi(x))^n: the expected range of n normals."""
    value, _ = integrate.quad(
        lambda x: 1 - stats.norm.cdf(x) ** n - stats.norm.sf(x) ** n, -np.inf, np.inf
    )
    return float(value)


@pytest.mark.parametrize("n", SIZES)
def test_d2_table_matches_its_definition(n):
    assert d2(n) == pytest.approx(exact_d2(n), abs=0.0005 + 1e-9)


def test_d2_and_d3_closed_forms_for_pairs():
    # For n = 2 the range is |X1 - X2| ~ |N(0, 2)|: d2 = 2/sqrt(pi), d3 = sqrt(2 - 4/pi).
    assert factors(2).d2 == round(2 / math.sqrt(math.pi), 3)
    assert factors(2).d3 == round(math.sqrt(2 - 4 / math.pi), 3)
    exact_d4 = 1 + 3 * math.sqrt(2 - 4 / math.pi) / (2 / math.sqrt(math.pi))
    assert factors(2).D4 == round(exact_d4, 3) == 3.267
    assert round(3 / factors(2).d2, 2) == PUBLISHED_E2 == 2.66


@pytest.mark.parametrize("n", SIZES)
def test_c4_closed_form_matches_the_published_column(n):
    assert round(c4(n), 4) == PUBLISHED_C4[n]


@pytest.mark.parametrize("n", SIZES)
def test_derived_factors_match_the_published_table(n):
    f = factors(n)
    exact = exact_d2(n)
    b = 3 * math.sqrt(1 - f.c4**2) / f.c4
    derived = {
        "A2": (f.A2, 3 / (exact * math.sqrt(n)), ULP),
        "A3": (f.A3, 3 / (f.c4 * math.sqrt(n)), ULP),
        "B3": (f.B3, max(0.0, 1 - b), ULP),
        "B4": (f.B4, 1 + b, ULP),
        # D3/D4 from the table's own d2 and d3 (d3 has no cheap closed form beyond n = 2).
        "D3": (f.D3, max(0.0, 1 - 3 * f.d3 / f.d2), 2 * ULP),
        "D4": (f.D4, 1 + 3 * f.d3 / f.d2, 2 * ULP),
    }
    for name, (published, definition, tolerance) in derived.items():
        assert abs(published - definition) <= tolerance, name


@pytest.mark.parametrize("n", [0, 1, 26, 2.0, True, "5"])
def test_sizes_outside_2_to_25_are_refused(n):
    with pytest.raises(ValidationFailed) as caught:
        factors(n)
    assert caught.value.field == "subgroup_size"


def test_table_covers_exactly_2_to_25():
    assert sorted(constants._TABLE) == list(SIZES) == sorted(PUBLISHED_C4)
