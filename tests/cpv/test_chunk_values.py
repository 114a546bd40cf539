"""A stored chunk read in bulk reads what the ledger's checking reader reads: its points
as text (``stored_points``), and its values as ``float()`` reads each value's text, for
chunks whose lines are alike (one matrix read) and chunks that are not (line by line)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.cpv.summary import chunk_stats
from ledger.cpv.values import STAMP, _alike, _fixed_decimals, _word_values, chunk_values, exact_sum
from ledger.domain.formats import DECIMAL, decode_chunk, encode_chunk, stored_points
from ledger.timeutil import format_utc

START = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def _text(values: list[str], quality: list[int] | None = None) -> bytes:
    codes = quality or [192] * len(values)
    lines = (
        f"{format_utc(START + timedelta(minutes=i))},{value},{code}\n"
        for i, (value, code) in enumerate(zip(values, codes, strict=True))
    )
    return "".join(lines).encode()


def _read_one_by_one(raw: bytes) -> list[float]:
    return [float(line.split(b",")[1]) for line in raw.splitlines()]


def _same(read: list[float], expected: list[float]) -> bool:
    # repr tells 0.0 from -0.0, which == does not.
    return [repr(v) for v in read] == [repr(v) for v in expected]


decimals = st.from_regex(DECIMAL, fullmatch=True)
fixed_width = st.integers(1, 15).flatmap(
    lambda digits: st.tuples(
        st.integers(0, digits - 1),
        st.lists(st.integers(0, 10**digits - 1), min_size=1, max_size=60),
        st.just(digits),
    )
)


@given(fixed_width)
def test_alike_values_read_as_float_reads_each(case: tuple[int, list[int], int]) -> None:
    after, mantissas, digits = case
    values = []
    for mantissa in mantissas:
        text = str(mantissa).zfill(digits)
        values.append(f"{text[: digits - after]}.{text[digits - after :]}" if after else text)
    raw = _text(values)
    assert _alike(raw) is not None
    assert _same(chunk_values(raw).tolist(), _read_one_by_one(raw))


short_values = st.integers(1, 6).flatmap(
    lambda width: st.tuples(
        st.integers(-1, width - 1),  # where the point is, -1: none
        st.lists(st.text("0123456789", min_size=width, max_size=width), min_size=1, max_size=30),
    )
)


def _with_point(digits: str, point: int) -> str:
    return digits if point < 0 else f"{digits[:point]}.{digits[point + 1 :]}"


@given(short_values)
def test_short_values_read_as_one_word_a_line_are_the_values_of_the_character_matrix(
    case: tuple[int, list[str]],
) -> None:
    point, texts = case
    values = [_with_point(text, point) for text in texts]
    if not any(c.isdigit() for c in values[0]):
        return  # a lone point is no value: neither path reads it
    raw = _text(values)
    length, width = raw.index(b"\n") + 1, len(values[0])
    lines = np.frombuffer(raw, dtype=np.uint8).reshape(-1, length)
    by_word = _word_values(raw, length, width)
    if length < STAMP + 8:  # the last line's word would end past the text
        assert by_word is None
        return
    assert by_word is not None
    by_matrix = _fixed_decimals(lines[:, STAMP + 1 : STAMP + 1 + width])
    assert by_matrix is not None
    assert _same(by_word.tolist(), by_matrix.tolist())
    assert _same(by_word.tolist(), _read_one_by_one(raw))


@given(short_values, st.data())
def test_a_line_with_any_other_byte_in_its_value_or_its_commas_is_not_read_as_one_word(
    case: tuple[int, list[str]], data: st.DataObject
) -> None:
    point, texts = case
    values = [_with_point(text, point) for text in texts]
    raw = bytearray(_text(values))
    length, width = raw.index(b"\n") + 1, len(values[0])
    if len(values) < 2:
        return
    # The first line sets the shape (where the point is) the others are held to.
    line = data.draw(st.integers(1, len(values) - 1), label="line")
    at = data.draw(st.integers(STAMP, STAMP + 1 + width), label="byte")  # commas included
    was = raw[line * length + at]
    allowed = b"0123456789" if chr(was).isdigit() else bytes([was])
    raw[line * length + at] = data.draw(
        st.integers(0, 255).filter(lambda byte: byte not in allowed), label="new byte"
    )
    assert _word_values(bytes(raw), length, width) is None


@given(st.lists(decimals, min_size=1, max_size=40), st.lists(st.integers(0, 255), min_size=40))
def test_any_stored_values_read_as_float_reads_each(values: list[str], codes: list[int]) -> None:
    raw = _text(values, codes[: len(values)])
    assert _same(chunk_values(raw).tolist(), _read_one_by_one(raw))


def test_a_historian_chunk_is_read_as_one_matrix() -> None:
    raw = _text(["7.053", "6.998", "7.100", "0.000"])
    assert _same(chunk_values(raw).tolist(), [7.053, 6.998, 7.1, 0.0])
    assert _alike(raw) is not None


def test_chunks_whose_lines_differ_are_read_line_by_line() -> None:
    cases = {
        "signs": ["7.05", "-7.05"],
        "widths": ["7.05", "17.05"],
        "points": ["70.5", "7.05"],
        "qualities": ["7.05", "7.06"],
        "digits": ["1234567890.123456", "1234567890.123457"],
        "negative zero": ["-0.0", "00.0"],
    }
    for name, values in cases.items():
        raw = _text(values, [0, 192] if name == "qualities" else None)
        assert _alike(raw) is None, name
        assert _same(chunk_values(raw).tolist(), _read_one_by_one(raw)), name


def test_a_chunk_s_extremes_are_the_first_of_equal_values_as_min_and_max_answer() -> None:
    for values in (["0.0", "-0.0", "1.0"], ["-0.0", "0.0", "-1.0"]):
        content = encode_chunk(
            [(format_utc(START + timedelta(minutes=i)), v, 192) for i, v in enumerate(values)]
        )["content"]
        stats = chunk_stats("0" * 64, content, None)
        numbers = [float(v) for v in values]
        assert (repr(stats.low), repr(stats.high)) == (repr(min(numbers)), repr(max(numbers)))


@given(st.lists(decimals, min_size=1, max_size=40), st.lists(st.integers(0, 255), min_size=40))
def test_stored_points_are_the_points_the_checking_reader_reads(
    values: list[str], codes: list[int]
) -> None:
    points = [
        (format_utc(START + timedelta(seconds=i)), value, codes[i])
        for i, value in enumerate(values)
    ]
    chunk = encode_chunk(points)

    stamps, texts, quality = stored_points(chunk["content"])

    assert list(zip(stamps, texts, quality, strict=True)) == decode_chunk(chunk) == points


finite = st.floats(allow_nan=False, allow_infinity=False)
near = st.floats(6.5, 7.5)  # one binade or two, as a tag's values are


@given(st.lists(st.one_of(finite, near, st.sampled_from([0.0, -0.0, 5e-324])), max_size=60))
def test_the_exact_sum_is_what_fsum_answers(values: list[float]) -> None:
    try:
        expected = math.fsum(values)
    except OverflowError:  # near the largest double: both say so
        with pytest.raises(OverflowError):
            exact_sum(np.array(values, dtype=np.float64))
        return
    assert _same([exact_sum(np.array(values, dtype=np.float64))], [expected])


@given(st.lists(st.one_of(near, st.floats(-7.9, -4.1)), min_size=1, max_size=2000))
def test_the_exact_sum_of_a_chunk_s_values_is_what_fsum_answers(values: list[float]) -> None:
    assert _same([exact_sum(np.array(values))], [math.fsum(values)])


@given(
    st.sampled_from([1.0, -1.0]),
    st.integers(-1021, 1000),
    st.lists(st.integers(0, 2**52 - 1), min_size=1, max_size=300),
)
def test_the_exact_sum_of_values_of_one_sign_and_binade_is_what_fsum_answers(
    sign: float, exponent: int, fractions: list[int]
) -> None:
    values = [sign * math.ldexp(2**52 + fraction, exponent - 53) for fraction in fractions]
    assert _same([exact_sum(np.array(values))], [math.fsum(values)])


def test_the_exact_sum_rounds_a_tie_to_even_as_fsum_does() -> None:
    values = [1.0, 2.0**-53, 2.0**-53 * 2.0**-60]  # just above the tie: rounds up
    tie = [1.0, 2.0**-53]  # exactly half an ulp: stays at the even 1.0
    for case in (values, tie, [1e16, 1.0, -1e16], [0.1] * 10):
        assert _same([exact_sum(np.array(case))], [math.fsum(case)])
