"""A series of plain floats is read in one pass: the same array, the same refusals."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from ledger.cpv._checks import series
from ledger.errors import ValidationFailed


def test_plain_floats_give_the_array_any_other_numbers_give() -> None:
    floats = [7.05, 7.031, -0.5, 1e-300, 0.0]
    mixed = [Decimal("7.05"), 7.031, -0.5, 1e-300, 0]
    assert np.array_equal(series(floats, field="values"), series(mixed, field="values"))
    assert series(floats, field="values").dtype == np.float64


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_float_is_refused_naming_its_index(bad: float) -> None:
    with pytest.raises(ValidationFailed) as caught:
        series([1.0, 2.0, bad, 3.0], field="values")
    assert caught.value.field == "values[2]"
