"""A tag's running summary: adding chunks one at a time, as they arrive, answers exactly
what combining all of them at once answers, whatever order they come in."""

from __future__ import annotations

import itertools
import json
import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from ledger.cpv.summary import Aggregate, ChunkStats, chunk_stats, combine
from ledger.domain.formats import encode_chunk
from ledger.domain.limits import LimitsVersion
from ledger.timeutil import format_utc

START = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
PH = LimitsVersion(1, "2024-01-01T00:00:00.000Z", None, "6.95", "7.15", "6.90", "7.20")
PH2 = LimitsVersion(2, "2024-02-01T00:00:00.000Z", None, "6.95", "7.15", "6.80", "7.30")


def _stats(
    digest: str, values: list[str], first_minute: int, version: LimitsVersion | None = PH
) -> ChunkStats:
    chunk = encode_chunk(
        [
            (format_utc(START + timedelta(minutes=first_minute + i)), value, 192)
            for i, value in enumerate(values)
        ]
    )
    return chunk_stats(digest * 64, chunk["content"], version)


def _chunks() -> list[ChunkStats]:
    return [
        _stats("a", ["7.00", "7.25", "7.30", "7.22"], 0),
        _stats("b", ["6.85", "7.20", "7.05", "6.80"], 4),
        _stats("c", ["0.1", "0.2", "7.3"], 10),
        _stats("d", ["1e-5", "100.0", "6.85"], 12),  # overlaps the chunk before
    ]


def _running(stats: list[ChunkStats]) -> Aggregate:
    """Chunks added as they arrive: combined again whenever one sorts earlier."""
    aggregate = Aggregate.start(stats[0])
    for index, following in enumerate(stats[1:], start=1):
        if not aggregate.add(following):
            aggregate = Aggregate.over(stats[: index + 1])
        aggregate = Aggregate.of(json.loads(json.dumps(aggregate.as_json())))
    return aggregate


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_chunks_added_one_at_a_time_summarise_as_all_of_them_combined(
    order: tuple[int, ...],
) -> None:
    chunks = [_chunks()[i] for i in order]
    digests = [c.sha256 for c in chunks]
    assert _running(chunks).summary(digests) == combine(chunks)


def test_a_chunk_sorting_before_the_last_one_is_not_added() -> None:
    first, second = _chunks()[:2]
    aggregate = Aggregate.start(second)
    before = aggregate.as_json()
    assert aggregate.add(first) is False
    assert aggregate.as_json() == before


def test_the_running_mean_is_the_correctly_rounded_sum_of_the_chunk_totals() -> None:
    rng = random.Random(7)
    values = [[repr(rng.uniform(-1e6, 1e6) * 10 ** rng.randint(-8, 8))] for _ in range(200)]
    chunks = [_stats(format(i, "x")[-1], v, i) for i, v in enumerate(values)]
    chunks = [
        ChunkStats.of({**c.as_json(), "sha256": format(i, "064x")}) for i, c in enumerate(chunks)
    ]
    summary = _running(chunks).summary([c.sha256 for c in chunks])
    exact = math.fsum(c.total for c in chunks) / len(chunks)
    assert summary.mean == combine(chunks).mean
    assert float(summary.mean) == exact


def test_chunks_judged_against_different_versions_have_no_time_outside_limits() -> None:
    chunks = [_stats("a", ["7.25", "7.25"], 0, PH), _stats("b", ["7.25", "7.25"], 2, PH2)]
    summary = _running(chunks).summary([c.sha256 for c in chunks])
    assert (summary.time_outside_limits_ms, summary.limits_version) == (None, None)
    assert summary == combine(chunks)


def test_chunks_without_limits_in_force_have_no_time_outside_limits() -> None:
    chunks = [_stats("a", ["7.25", "7.25"], 0, None), _stats("b", ["7.25"], 2, None)]
    summary = _running(chunks).summary([c.sha256 for c in chunks])
    assert (summary.time_outside_limits_ms, summary.limits_version) == (None, None)


def test_a_chunk_s_stats_read_back_from_json_unchanged() -> None:
    stats = _chunks()[0]
    assert ChunkStats.of(json.loads(json.dumps(stats.as_json()))) == stats
