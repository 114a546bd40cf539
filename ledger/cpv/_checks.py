"""Input checks shared by the CPV modules: each refusal is a ValidationFailed naming a field."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from itertools import chain
from numbers import Real

import numpy as np
import numpy.typing as npt

from ledger.cpv.constants import MAX_SUBGROUP, MIN_SUBGROUP
from ledger.errors import ValidationFailed

__all__ = ["FloatArray", "baseline_indexes", "number", "series", "subgroup_matrix"]

FloatArray = npt.NDArray[np.float64]
_FLOAT = frozenset({float})
_LIST = frozenset({list})


def number(value: object, *, field: str) -> float:
    """A finite real number (``int``, ``float``, ``Decimal`` or a numpy scalar) as a float."""
    if isinstance(value, bool) or not isinstance(value, (Real, Decimal, np.integer, np.floating)):
        raise ValidationFailed(f"expected a number, got {type(value).__name__}", field=field)
    result = float(value)
    if not math.isfinite(result):
        raise ValidationFailed("NaN and infinities are refused", field=field)
    return result


def series(values: object, *, field: str, min_size: int = 1) -> FloatArray:
    """A one-dimensional sequence of finite numbers as a float64 array."""
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValidationFailed("expected a one-dimensional series", field=field)
        items: Sequence[object] = values.tolist()
    elif isinstance(values, Sequence) and not isinstance(values, (str, bytes)):
        items = values
    else:
        raise ValidationFailed("expected a sequence of numbers", field=field)
    if len(items) < min_size:
        raise ValidationFailed(
            f"needs at least {min_size} value{'s' if min_size != 1 else ''}, got {len(items)}",
            field=field,
        )
    if set(map(type, items)) <= _FLOAT:
        # Plain floats convert in one pass; only a non-finite one needs the item's field.
        out = np.array(items, dtype=np.float64)
        if np.isfinite(out).all():
            return out
    out = np.empty(len(items), dtype=np.float64)
    for index, item in enumerate(items):
        out[index] = number(item, field=f"{field}[{index}]")
    return out


def subgroup_matrix(subgroups: object, *, field: str) -> FloatArray:
    """Subgroups of equal size 2..25 as a (k, n) float64 array; a ragged subgroup is refused."""
    if isinstance(subgroups, np.ndarray):
        rows: Sequence[object] = list(subgroups)
    elif isinstance(subgroups, Sequence) and not isinstance(subgroups, (str, bytes)):
        rows = subgroups
    else:
        raise ValidationFailed("expected a sequence of subgroups", field=field)
    if not rows:
        raise ValidationFailed("needs at least 1 subgroup, got 0", field=field)
    plain = _plain_matrix(rows)
    if plain is not None:
        return plain
    parsed = [series(row, field=f"{field}[{index}]") for index, row in enumerate(rows)]
    size = len(parsed[0])
    if not MIN_SUBGROUP <= size <= MAX_SUBGROUP:
        raise ValidationFailed(
            f"subgroup size {size} is outside {MIN_SUBGROUP}..{MAX_SUBGROUP}"
            + (": use the individuals (I-MR) chart for single values" if size == 1 else ""),
            field=f"{field}[0]",
        )
    for index, row in enumerate(parsed):
        if len(row) != size:
            raise ValidationFailed(
                f"subgroup {index} has {len(row)} values but subgroup 0 has {size}: "
                "all subgroups must be the same size",
                field=f"{field}[{index}]",
            )
    return np.vstack(parsed)


def _plain_matrix(rows: Sequence[object]) -> FloatArray | None:
    """Lists of finite floats, all of one size in 2..25, as a (k, n) array in one pass;
    None for anything else, which the checks of :func:`subgroup_matrix` then name."""
    if set(map(type, rows)) != _LIST:
        return None
    lists: Sequence[list[object]] = rows  # type: ignore[assignment]
    sizes = set(map(len, lists))
    if len(sizes) != 1 or not MIN_SUBGROUP <= min(sizes) <= MAX_SUBGROUP:
        return None
    if not set(map(type, chain.from_iterable(lists))) <= _FLOAT:
        return None
    out = np.array(lists, dtype=np.float64)
    return out if np.isfinite(out).all() else None


def baseline_indexes(indexes: object, *, count: int, field: str) -> tuple[int, ...]:
    """Distinct indexes into a series of ``count`` points, in ascending order."""
    if not isinstance(indexes, Sequence) or isinstance(indexes, (str, bytes)):
        raise ValidationFailed("expected a sequence of point indexes", field=field)
    seen: set[int] = set()
    for position, index in enumerate(indexes):
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise ValidationFailed("expected an integer index", field=f"{field}[{position}]")
        if not 0 <= int(index) < count:
            raise ValidationFailed(
                f"index {index} is outside 0..{count - 1}", field=f"{field}[{position}]"
            )
        if int(index) in seen:
            raise ValidationFailed(f"index {index} appears twice", field=f"{field}[{position}]")
        seen.add(int(index))
    return tuple(sorted(seen))
