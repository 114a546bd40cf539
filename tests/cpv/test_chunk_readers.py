"""Worker processes read a replay's chunks as the view would in process; a part they fail
to read is left to the view, which meets the chunk's own error there."""

from __future__ import annotations

import binascii
from datetime import UTC, datetime, timedelta

import pytest

from ledger.cpv.readers import ChunkReaders
from ledger.cpv.summary import chunk_stats
from ledger.domain.formats import encode_chunk
from ledger.domain.limits import LimitsVersion
from ledger.timeutil import format_utc
from tests.support.workers import kill_workers

START = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
PH = LimitsVersion(1, "2024-01-01T00:00:00.000Z", None, "6.95", "7.15", "6.90", "7.20")


def _chunk(values: list[str]) -> dict[str, str]:
    points = [(format_utc(START + timedelta(minutes=i)), v, 192) for i, v in enumerate(values)]
    return encode_chunk(points)


def test_workers_read_each_chunk_as_the_view_reads_it_against_its_version() -> None:
    chunks = [_chunk(["7.00", "7.25"]), _chunk(["6.85", "7.05", "7.10"])]
    asked = [(c["sha256"], c["content"], v) for c in chunks for v in (None, PH)]
    readers = ChunkReaders(2)
    try:
        reading = readers.read(asked)
        for sha256, content, version in asked:
            assert reading.get(sha256, version) == chunk_stats(sha256, content, version)
        assert reading.get(chunks[0]["sha256"], LimitsVersion(2, PH.effective_from)) is None
    finally:
        readers.close()


def test_a_chunk_the_workers_cannot_read_is_left_to_the_view() -> None:
    good = _chunk(["7.00"])
    asked = [("0" * 64, "not base64 at all", PH), (good["sha256"], good["content"], PH)]
    readers = ChunkReaders(1)
    try:
        reading = readers.read(asked)
        assert reading.get("0" * 64, PH) is None
        assert reading.get(good["sha256"], PH) == chunk_stats(good["sha256"], good["content"], PH)
        with pytest.raises(binascii.Error):
            chunk_stats("0" * 64, "not base64 at all", PH)
    finally:
        readers.close()


def test_workers_lost_between_pages_leave_the_next_to_the_view_then_start_again() -> None:
    chunk = _chunk(["7.00", "7.05"])
    asked = [(chunk["sha256"], chunk["content"], PH)]
    expected = chunk_stats(chunk["sha256"], chunk["content"], PH)
    readers = ChunkReaders(2)
    try:
        assert readers.read(asked).get(chunk["sha256"], PH) == expected
        assert readers._pool is not None
        kill_workers(readers._pool)
        assert readers.read(asked).get(chunk["sha256"], PH) is None  # read in process then
        assert readers.read(asked).get(chunk["sha256"], PH) == expected  # new workers
    finally:
        readers.close()
