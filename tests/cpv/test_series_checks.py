"""A series, or subgroups, of plain floats are read in one pass: the same array, the same
refusals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.cpv._checks import series, subgroup_matrix
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


def _row_by_row(rows: list[list[Any]]) -> np.ndarray:
    return np.vstack([series(row, field=f"subgroups[{i}]") for i, row in enumerate(rows)])


@given(
    st.integers(2, 25).flatmap(
        lambda size: st.lists(
            st.lists(
                st.floats(allow_nan=False, allow_infinity=False), min_size=size, max_size=size
            ),
            min_size=1,
            max_size=12,
        )
    )
)
def test_subgroups_of_plain_floats_give_the_matrix_row_by_row_reading_gives(
    rows: list[list[Any]],
) -> None:
    found = subgroup_matrix(rows, field="subgroups")
    assert found.dtype == np.float64
    assert found.tobytes() == _row_by_row(rows).tobytes()


@pytest.mark.parametrize(
    "other",
    [
        [[1.0, 2.0], [Decimal("3.5"), 4.0]],
        [[1.0, 2.0], [3, 4.0]],
        [[1.0, 2.0], (3.0, 4.0)],
        [[1.0, 2.0], np.array([3.0, 4.0])],
        [[1.0, np.float64(2.0)], [3.0, 4.0]],
    ],
)
def test_subgroups_of_other_numbers_give_the_same_matrix(other: list[Any]) -> None:
    found = subgroup_matrix(other, field="subgroups")
    assert found.tobytes() == _row_by_row(other).tobytes()


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ([[1.0, 2.0], [True, 4.0]], "subgroups[1][0]"),
        ([[1.0, 2.0], [3.0, "4"]], "subgroups[1][1]"),
        ([[1.0, 2.0], [3.0, float("nan")]], "subgroups[1][1]"),
        ([[1.0, 2.0], [float("-inf"), 4.0]], "subgroups[1][0]"),
        ([[1.0, 2.0], [3.0]], "subgroups[1]"),
        ([[1.0], [2.0]], "subgroups[0]"),
        ([[float(i) for i in range(26)]], "subgroups[0]"),
        ([[1.0, 2.0], None], "subgroups[1]"),
    ],
)
def test_subgroups_not_plainly_valid_are_refused_naming_the_value(
    bad: list[Any], field: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        subgroup_matrix(bad, field="subgroups")
    assert caught.value.field == field
