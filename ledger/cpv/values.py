"""A stored chunk's values read in bulk, each exactly as ``float()`` reads its text.

A historian writes a tag's points alike: every line of a chunk (``stamp,value,quality``)
then has one length, and every value one width with its point at one place (``7.053``).
Such a chunk is read as one matrix: each value is ``m / 10**k``, with ``m`` its digits
read as an integer. With at most 15 digits (``m`` below ``2**53``) and at most 22 after
the point, ``m`` and ``10**k`` are exact doubles and IEEE division rounds correctly, so
the quotient is the double nearest the decimal: what ``float()`` answers (W. D. Clinger,
"How to read floating point numbers accurately", PLDI 1990, the fast path). Any other
chunk is read line by line by ``float()``.

Their sum, :func:`exact_sum`, is ``math.fsum``'s (the exactly rounded sum) without making
a Python float of each value.
"""

from __future__ import annotations

import math
import sys

import numpy as np
from numpy.typing import NDArray

__all__ = ["chunk_values", "exact_sum"]

STAMP = 24
"""The width of a stored point's timestamp (``2024-03-01T08:00:00.000Z``)."""

_MAX_DIGITS = 15  # below 10**15 < 2**53: every such integer is an exact double
_MAX_AFTER_POINT = 22  # 10**22 is the largest power of ten that is an exact double
_NEWLINE, _COMMA, _POINT, _ZERO, _NINE = 10, 44, 46, 48, 57


def chunk_values(raw: bytes) -> NDArray[np.float64]:
    """The value of each line of a chunk's text (checked by the ledger when stored)."""
    alike = _alike(raw)
    if alike is not None:
        return alike
    # Each line is ``stamp,value,quality``: every second field of the comma split is a value.
    return np.array(list(map(float, raw.split(b",")[1::2])), dtype=np.float64)


def _alike(raw: bytes) -> NDArray[np.float64] | None:
    """The values when every line has one length and every value one shape; else ``None``."""
    length = raw.find(b"\n") + 1
    end = raw.find(b",", STAMP + 1)
    if length <= STAMP + 2 or len(raw) % length or not STAMP + 1 < end < length:
        return None
    lines = np.frombuffer(raw, dtype=np.uint8).reshape(-1, length)
    if not (
        np.all(lines[:, length - 1] == _NEWLINE)
        and np.all(lines[:, STAMP] == _COMMA)
        and np.all(lines[:, end] == _COMMA)
    ):
        return None
    return _fixed_decimals(lines[:, STAMP + 1 : end])


def _fixed_decimals(texts: NDArray[np.uint8]) -> NDArray[np.float64] | None:
    """The values of unsigned decimal texts of one width, the point (if any) at one
    place; ``None`` when they are not."""
    count, width = texts.shape
    points = np.flatnonzero(texts[0] == _POINT)
    digits = width - len(points)
    after = width - 1 - int(points[0]) if len(points) else 0
    if len(points) > 1 or not 1 <= digits <= _MAX_DIGITS or after > _MAX_AFTER_POINT:
        return None
    # Every character a digit but the point's column, all points: one count says both.
    offsets = texts - np.uint8(_ZERO)  # wraps below "0": only digits stay under 10
    if np.count_nonzero(offsets < 10) != count * digits:
        return None
    if len(points) and not np.all(texts[:, points[0]] == _POINT):
        return None
    # Place values, none for the point: sums of integers below 2**53 are exact doubles.
    places = np.zeros(width)
    places[np.flatnonzero(texts[0] != _POINT)] = 10.0 ** np.arange(digits - 1, -1, -1)
    mantissas = offsets @ places
    values: NDArray[np.float64] = mantissas / float(10**after)
    return values


_SPAN = 16
"""Binades summed one by one; values spread wider are summed by ``math.fsum``."""
_HIGHEST = 1000  # below 2**1000 no sum of a chunk's values comes near overflowing
_HALF = 26  # a 53-bit mantissa in two parts: no int64 sum of either can overflow


def exact_sum(values: NDArray[np.float64]) -> float:
    """What ``math.fsum(values)`` answers: the exact sum, rounded once.

    Each value is ``M * 2**(e - 53)`` with ``M`` an integer below ``2**53``
    (``np.frexp``). The mantissas of each exponent are summed as integers, in two halves so
    that no int64 sum overflows; the exponents' sums are combined as Python integers, and
    ``float()`` rounds the exact total as fsum does (to nearest, ties to even). All zeros,
    values spread over more than :data:`_SPAN` binades, values near the largest double (where
    fsum may overflow) and a total below the normal range are left to ``math.fsum``."""
    fractions, exponents = np.frexp(values)
    nonzero = fractions != 0
    if not nonzero.any():
        return math.fsum(values.tolist())
    low = int(exponents[nonzero].min())
    high = int(exponents[nonzero].max())
    if high - low > _SPAN or high > _HIGHEST:
        return math.fsum(values.tolist())
    mantissas = np.ldexp(fractions, 53).astype(np.int64)
    upper, lower = mantissas >> _HALF, mantissas & ((1 << _HALF) - 1)
    total = 0
    for exponent in range(low, high + 1):
        if low == high:
            ups, lows = upper, lower  # the usual chunk: one binade
        else:
            here = exponents == exponent
            ups, lows = upper[here], lower[here]
        part = (int(ups.sum()) << _HALF) + int(lows.sum())
        total += part << (exponent - low)
    answer = math.ldexp(float(total), low - 53)
    if answer != 0 and abs(answer) < sys.float_info.min:
        return math.fsum(values.tolist())  # below the normal range: ldexp would round twice
    return answer
