"""Per-batch summaries of a continuous tag (count, mean, min, max, time outside the action
limits in force at the batch's valid time), as the summaries view keeps them: against a
small series computed by hand, through a correction, and the same after a rebuild."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from ledger.application import Ledger
from ledger.cpv.readers import ChunkReaders
from ledger.cpv.summary import chunk_stats, combine, decimal_text
from ledger.domain.formats import encode_chunk
from ledger.domain.limits import ACTION, LimitsVersion
from ledger.domain.subjects import batch_subject
from ledger.timeutil import format_utc
from projections import summaries
from projections.rebuild import rebuild
from projections.runner import Projector
from projections.summaries import SUMMARIES, SummariesView
from projections.temporal import as_of
from tests.support.agreements import sign_retroactively
from tests.support.batches import define_parameter, register_batch, revise_parameter, submit_data
from tests.support.world import World

BATCH = "NWB101-24-001"
TAG = "BR1.PH"
START = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
MINUTE = 60_000
MIGRATED = "history migrated from the paper batch records"
# pH: action limits 6.90 .. 7.20 (tests.support.batches.WORLD_PARAMETERS).
FIRST = ["7.00", "7.25", "7.30", "7.22"]  # minutes 0..3: the last three beyond 7.20
SECOND = ["6.85", "7.20", "7.05", "6.80"]  # minutes 4..7: 7.20 is on the limit, not beyond
RECALIBRATED = ["7.00", "7.00", "7.00", "7.00"]
PH = LimitsVersion(1, "2024-01-01T00:00:00.000Z", None, "6.95", "7.15", "6.90", "7.20")


def _chunk(values: list[str], first_minute: int) -> dict[str, Any]:
    return encode_chunk(
        [
            (format_utc(START + timedelta(minutes=first_minute + i)), value, 192)
            for i, value in enumerate(values)
        ]
    )


@pytest.fixture
def projector(ledger: Ledger) -> Iterator[Projector]:
    running = Projector(ledger).start()
    try:
        yield running
    finally:
        running.close()


def test_a_chunk_summary_holds_each_point_until_the_next_and_counts_time_beyond_action() -> None:
    stats = chunk_stats("0" * 64, _chunk(FIRST, 0)["content"], PH)
    assert (stats.count, stats.low, stats.high) == (4, 7.00, 7.30)
    # 7.25 and 7.30 each hold for a minute; 7.22, the last point, holds for no time yet.
    assert (stats.outside_ms, stats.last_outside) == (2 * MINUTE, True)
    assert stats.first == "2024-03-01T08:00:00.000Z"
    assert stats.last == "2024-03-01T08:03:00.000Z"


def test_chunks_combine_with_the_gap_between_them_held_by_the_last_point() -> None:
    first = chunk_stats("a" * 64, _chunk(FIRST, 0)["content"], PH)
    second = chunk_stats("b" * 64, _chunk(SECOND, 4)["content"], PH)
    summary = combine([second, first])
    assert summary.count == 8
    assert summary.mean == "7.08375"  # 56.67 / 8
    assert (summary.min, summary.max) == ("6.8", "7.3")
    # 2 min in the first chunk, 7.22 held until 6.85 (1 min), 6.85 held for 1 min.
    assert summary.time_outside_limits_ms == 4 * MINUTE
    assert summary.limits_version == 1
    assert summary.chunks == ("a" * 64, "b" * 64)


def test_without_limits_in_force_there_is_no_time_outside_them() -> None:
    summary = combine([chunk_stats("a" * 64, _chunk(FIRST, 0)["content"], None)])
    assert (summary.time_outside_limits_ms, summary.limits_version) == (None, None)
    assert summary.mean == decimal_text(28.77 / 4)


def _summary(world: World, position: int | None = None) -> dict[str, Any]:
    query = sa.select(SUMMARIES).where(SUMMARIES.c.batch == BATCH, SUMMARIES.c.tag == TAG)
    if position is None:
        query = query.where(SUMMARIES.c.valid_to.is_(None))
    else:
        query = query.where(as_of(SUMMARIES, position))
    with world.ledger.engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
    assert len(rows) == 1, rows
    return rows[0]


def _all_summaries(world: World) -> list[tuple[Any, ...]]:
    with world.ledger.engine.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(sa.select(SUMMARIES)))


def _correct(world: World, old: dict[str, Any], new: dict[str, Any]) -> int:
    appended = world["contoso-cmo"].submit(
        world.ledger,
        "DataCorrected",
        batch_subject(BATCH),
        {
            "submission": "5f0e3a57-64a1-4d1c-9d36-0f7e2b1b9c02",
            "supersedes_chunks": [old["sha256"]],
            "series": [{"tag": TAG, "chunks": [new]}],
        },
        meaning="corrected",
        reason="pH probe recalibrated",
    )
    return int(appended.position)


def test_the_view_summarises_a_batch_s_tag_and_a_correction_replaces_a_chunk_s_share(
    world: World, projector: Projector
) -> None:
    agreement = sign_retroactively(world, "2023-12-01T00:00:00.000Z")
    define_parameter(world, agreement, "pH", effective_from=PH.effective_from, reason=MIGRATED)
    register_batch(world, agreement, BATCH, started_at=START)
    first, second = _chunk(FIRST, 0), _chunk(SECOND, 4)
    before = submit_data(world, BATCH, "continuous", [{"tag": TAG, "chunks": [first, second]}])
    recalibrated = _chunk(RECALIBRATED, 4)
    _correct(world, second, recalibrated)

    then = _summary(world, before.position)
    assert (then["count"], then["mean"], then["min"], then["max"]) == (8, "7.08375", "6.8", "7.3")
    assert (then["time_outside_limits_ms"], then["limits_version"]) == (4 * MINUTE, 1)
    assert json.loads(then["chunks"]) == sorted([first["sha256"], second["sha256"]])
    assert (then["first"], then["last"], then["data_class"]) == (
        "2024-03-01T08:00:00.000Z",
        "2024-03-01T08:07:00.000Z",
        "continuous",
    )
    now = _summary(world)
    assert now["count"] == 8
    assert float(now["mean"]) == pytest.approx(56.77 / 8, abs=1e-12)
    assert (now["min"], now["max"]) == ("7.0", "7.3")
    # 2 min in the first chunk and 7.22 held until the recalibrated 7.00: 1 min.
    assert now["time_outside_limits_ms"] == 3 * MINUTE
    assert json.loads(now["chunks"]) == sorted([first["sha256"], recalibrated["sha256"]])


def _reads_aside_from(monkeypatch: pytest.MonkeyPatch, chunks: int) -> list[int]:
    """Worker processes read a replay's chunks from ``chunks`` in a page on; the list
    grows by the number of chunks each time they are asked to read ahead."""
    monkeypatch.setattr(SummariesView, "read_aside_from", chunks)
    read_aside: list[int] = []
    read = ChunkReaders.read

    def counted(readers: ChunkReaders, asked: Any) -> Any:
        read_aside.append(len(asked))
        return read(readers, asked)

    monkeypatch.setattr(ChunkReaders, "read", counted)
    return read_aside


def _reads_in_process(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The chunks the view reads itself, not taken from the worker processes' reads."""
    read_here: list[str] = []

    def counted(sha256: str, content: str, version: LimitsVersion | None) -> Any:
        read_here.append(sha256)
        return chunk_stats(sha256, content, version)

    monkeypatch.setattr(summaries, "chunk_stats", counted)
    return read_here


@pytest.mark.parametrize("read_aside_from", [64, 1], ids=["in process", "worker processes"])
def test_a_rebuild_gives_the_same_summaries_at_every_position(
    world: World, projector: Projector, monkeypatch: pytest.MonkeyPatch, read_aside_from: int
) -> None:
    agreement = sign_retroactively(world, "2023-12-01T00:00:00.000Z")
    define_parameter(world, agreement, "pH", effective_from=PH.effective_from, reason=MIGRATED)
    register_batch(world, agreement, BATCH, started_at=START)
    second = _chunk(SECOND, 4)
    submit_data(world, BATCH, "continuous", [{"tag": TAG, "chunks": [_chunk(FIRST, 0), second]}])
    _correct(world, second, _chunk(RECALIBRATED, 4))
    projected = _all_summaries(world)
    assert len(projected) == 2, projected  # the summary before and after the correction
    projector.close()
    read_aside = _reads_aside_from(monkeypatch, read_aside_from)
    read_here = _reads_in_process(monkeypatch)

    rebuild(world.ledger, ["summaries"])

    assert _all_summaries(world) == projected
    assert read_aside == ([] if read_aside_from > 3 else [3])  # the page's three chunks
    assert len(read_here) == (3 if read_aside_from > 3 else 0)


def test_worker_reads_judge_each_chunk_against_the_limits_its_handler_finds(
    world: World, projector: Projector, monkeypatch: pytest.MonkeyPatch
) -> None:
    agreement = sign_retroactively(world, "2023-12-01T00:00:00.000Z")
    register_batch(world, agreement, BATCH, started_at=START)
    submit_data(world, BATCH, "continuous", [{"tag": TAG, "chunks": [_chunk(FIRST, 0)]}])
    # Limits come into force, then are revised, between the batches' chunks: each batch
    # is judged against the version its handler finds.
    ph = define_parameter(world, agreement, "pH", effective_from=PH.effective_from, reason=MIGRATED)
    second, third = "NWB101-24-002", "NWB101-24-003"
    register_batch(world, agreement, second, started_at=START + timedelta(days=1))
    chunks = [_chunk(FIRST, 10), _chunk(SECOND, 14)]
    submit_data(world, second, "continuous", [{"tag": TAG, "chunks": chunks}])
    widened = {"action": {"low": "6.80", "high": "7.30"}}
    revise_parameter(world, ph, widened, reason=MIGRATED, effective_from=format_utc(START))
    register_batch(world, agreement, third, started_at=START + timedelta(days=2))
    submit_data(world, third, "continuous", [{"tag": TAG, "chunks": [_chunk(FIRST, 20)]}])
    projected = _all_summaries(world)
    judged = {row[0]: row for row in projected}
    assert len(projected) == 3, projected
    projector.close()
    read_aside = _reads_aside_from(monkeypatch, 1)
    read_here = _reads_in_process(monkeypatch)

    rebuild(world.ledger, ["summaries"])

    assert _all_summaries(world) == projected
    assert (read_aside, read_here) == ([4], [])  # one read ahead over the page, all used
    columns = [c.name for c in SUMMARIES.columns]
    limits, outside = columns.index("limits_version"), columns.index("time_outside_limits_ms")
    assert [judged[b][limits] for b in (BATCH, second, third)] == [None, 1, 2]
    # Under the revised action limits (6.80 .. 7.30) no point of the third batch is beyond.
    assert (judged[second][outside] > 0, judged[third][outside]) == (True, 0)


@pytest.mark.parametrize("spread", [0.06, 0.2], ids=["few points beyond", "many points beyond"])
def test_time_beyond_limits_is_the_held_time_of_every_point_beyond_them(spread: float) -> None:
    rng = random.Random(spread)
    minutes = sorted(rng.sample(range(10_000), 600))
    values = [f"{rng.gauss(7.05, spread):.2f}" for _ in minutes]
    chunk = encode_chunk(
        [
            (format_utc(START + timedelta(minutes=m)), v, 192)
            for m, v in zip(minutes, values, strict=True)
        ]
    )
    beyond = [PH.evaluate(v) == ACTION for v in values]
    expected = sum(
        (minutes[i + 1] - minutes[i]) * MINUTE for i in range(len(values) - 1) if beyond[i]
    )
    assert sum(beyond[:-1]) > 0 and (sum(beyond) > 32) == (spread > 0.1)

    stats = chunk_stats(chunk["sha256"], chunk["content"], PH)

    assert (stats.outside_ms, stats.last_outside) == (expected, beyond[-1])
