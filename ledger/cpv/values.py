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

import functools
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass

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
    if _fits_a_word(length, end - STAMP - 1):
        return _word_values(raw, length, end - STAMP - 1)
    lines = np.frombuffer(raw, dtype=np.uint8).reshape(-1, length)
    if not (
        np.all(lines[:, length - 1] == _NEWLINE)
        and np.all(lines[:, STAMP] == _COMMA)
        and np.all(lines[:, end] == _COMMA)
    ):
        return None
    return _fixed_decimals(lines[:, STAMP + 1 : end])


_WORD = 8
"""Bytes of a line read as one integer: the value between its two commas, when it fits."""


def _fits_a_word(length: int, width: int) -> bool:
    """Whether a value ``width`` long and its two commas fit a word, and the word ends
    within its line (the last line's word stays inside the text)."""
    return width + 2 <= _WORD and length >= STAMP + _WORD


def _word_values(raw: bytes, length: int, width: int) -> NDArray[np.float64] | None:
    """:func:`_fixed_decimals` of values ``width`` long, each line's ``,value,`` read as one
    little-endian integer: a line costs one load instead of one per character, and the
    checks are a few operations on whole words."""
    plan = _word_plan(width, raw.find(b".", STAMP + 1, STAMP + 1 + width) - STAMP)
    if plan is None or not _fits_a_word(length, width):
        return None
    count = len(raw) // length
    # A strided view of one unaligned word a line (the commas and the value), copied once.
    words = np.ndarray((count,), dtype="<u8", buffer=raw, offset=STAMP, strides=(length,)).copy()
    ends = np.ndarray((count,), dtype=np.uint8, buffer=raw, offset=length - 1, strides=(length,))
    wrong = (words & plan.separators) ^ plan.punctuation  # the commas and the point in place
    wrong |= (words & plan.high) ^ plan.zeros  # digit bytes are 0x30-0x3f ...
    # ... and stay 0x3_ when 6 is added: 0x30-0x39. A byte that passed the test above
    # carries nothing into the next, so the bytes are judged one by one.
    wrong |= ((words + plan.sixes) & plan.high) ^ plan.zeros
    if wrong.any() or (ends != _NEWLINE).any():
        return None
    offsets = words.view(np.uint8).reshape(count, _WORD) - np.uint8(_ZERO)
    values: NDArray[np.float64] = (offsets @ plan.places) / plan.scale
    return values


@dataclass(frozen=True)
class _WordPlan:
    """What words of one shape are checked against and read with."""

    separators: np.uint64  # 0xff in the bytes of the commas and the point
    punctuation: np.uint64  # the commas and the point themselves
    high: np.uint64  # 0xf0 in each digit's byte
    zeros: np.uint64  # "0" in each digit's byte
    sixes: np.uint64  # 6 in each digit's byte
    places: NDArray[np.float64]  # each byte's place value, none for the commas and point
    scale: float  # 10 to the power of the digits after the point


@functools.cache
def _word_plan(width: int, point: int) -> _WordPlan | None:
    """The plan for values ``width`` long with their point at byte ``point`` of the word
    (byte 0 is the comma before the value; -1 and below: no point)."""
    separators = {0: _COMMA, 1 + width: _COMMA} | ({point: _POINT} if point > 0 else {})
    digits = [at for at in range(1, 1 + width) if at not in separators]
    if not digits:
        return None

    def word(byte: int, at: Iterable[int]) -> np.uint64:
        return np.uint64(sum(byte << (8 * i) for i in at))

    places = np.zeros(_WORD)
    places[digits] = 10.0 ** np.arange(len(digits) - 1, -1, -1)
    return _WordPlan(
        separators=word(0xFF, separators),
        punctuation=np.uint64(sum(byte << (8 * i) for i, byte in separators.items())),
        high=word(0xF0, digits),
        zeros=word(_ZERO, digits),
        sixes=word(0x06, digits),
        places=places,
        scale=float(10 ** (width - point if point > 0 else 0)),
    )


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
_LOW_MASK = np.uint64((1 << _HALF) - 1)


def exact_sum(values: NDArray[np.float64]) -> float:
    """What ``math.fsum(values)`` answers: the exact sum, rounded once.

    Each value is ``M * 2**(e - 53)`` with ``M`` an integer below ``2**53``
    (``np.frexp``). The mantissas of each exponent are summed as integers, in two halves so
    that no int64 sum overflows; the exponents' sums are combined as Python integers, and
    ``float()`` rounds the exact total as fsum does (to nearest, ties to even). All zeros,
    values spread over more than :data:`_SPAN` binades, values near the largest double (where
    fsum may overflow) and a total below the normal range are left to ``math.fsum``.
    Values of one sign and one binade (a tag's usual chunk) are read from their bits
    (:func:`_one_binade_sum`), the same sum with fewer passes."""
    alike = _one_binade_sum(values)
    if alike is not None:
        return alike
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


_EXPONENT_SHIFT = np.uint64(52)  # a double's bits: sign, 11 of biased exponent, 52 of fraction
_FRACTION = np.uint64((1 << 52) - 1)
_IMPLICIT = np.uint64(1 << 52)
_MAX_BIASED = _HIGHEST + 1022  # the biased exponent of frexp's exponent _HIGHEST


def _one_binade_sum(values: NDArray[np.float64]) -> float | None:
    """:func:`exact_sum` of normal values of one sign and one binade (a tag's usual chunk),
    read from their bits: each is ``M * 2**(b - 1075)`` with ``M`` its fraction and the
    implicit bit, ``b`` its biased exponent. ``None`` for any other values.

    Values of one sign sum away from zero, so the total is normal too and ``ldexp``
    rounds nothing more."""
    if not len(values):
        return None
    bits = values.view(np.uint64)
    heads = bits >> _EXPONENT_SHIFT
    head = int(heads[0])
    biased = head & 0x7FF
    if not 0 < biased <= _MAX_BIASED or not (heads == heads[0]).all():
        return None
    mantissas = (bits & _FRACTION) | _IMPLICIT
    half = np.uint64(_HALF)
    total = (int((mantissas >> half).sum()) << _HALF) + int((mantissas & _LOW_MASK).sum())
    magnitude = math.ldexp(float(total), biased - 1075)
    return -magnitude if head >> 11 else magnitude
