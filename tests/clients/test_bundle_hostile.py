"""A crafted chunk in an evidence bundle cannot exhaust the auditor's memory: chunks are
inflated through the ledger's codec, never past one submission's allowance."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from clients.bundle import decode_series
from clients.offline import VerificationError
from ledger.domain.formats import MAX_DECOMPRESSED_BYTES, encode_chunk

BOMB_BYTES = 4 * MAX_DECOMPRESSED_BYTES
# The child's interpreter and imports take about 40 MiB; the allowance adds at most 64 MiB.
PEAK_LIMIT_MIB = 160


def gzip_bomb(size: int) -> str:
    """Base64 of a gzip stream inflating to ``size`` zero bytes, built without holding them."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [packer.compress(block) for _ in range(size // len(block))]
    parts.append(packer.flush())
    return base64.b64encode(b"".join(parts)).decode()


def bomb_chunk() -> dict[str, object]:
    chunk = dict(encode_chunk([("2024-03-01T08:00:00.000Z", "37.0", 192)]))
    chunk["content"] = gzip_bomb(BOMB_BYTES)
    return chunk


CHILD = """
import json, sys
from clients.bundle import decode_series
from clients.offline import VerificationError
chunk = json.load(open(sys.argv[1]))
try:
    decode_series(chunk)
    outcome = "decoded"
except VerificationError as exc:
    outcome = str(exc)
with open("/proc/self/status") as status:
    peak = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:")) / 1024
print(json.dumps({"outcome": outcome, "peak_mib": peak}))
"""


def test_a_gzip_bomb_chunk_is_refused_within_a_fixed_memory_budget(tmp_path: Path) -> None:
    path = tmp_path / "chunk.json"
    path.write_text(json.dumps(bomb_chunk()))
    assert path.stat().st_size < BOMB_BYTES // 100
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True
    )
    found = json.loads(done.stdout)
    assert "at most" in found["outcome"] and "uncompressed" in found["outcome"]
    assert found["peak_mib"] < PEAK_LIMIT_MIB, found


def test_a_chunk_whose_digest_does_not_match_its_bytes_is_refused() -> None:
    chunk = dict(encode_chunk([("2024-03-01T08:00:00.000Z", "37.0", 192)]))
    chunk["sha256"] = hashlib.sha256(b"other bytes").hexdigest()
    with pytest.raises(VerificationError, match="sha256"):
        decode_series(chunk)


def test_a_truncated_gzip_stream_is_refused() -> None:
    chunk = dict(encode_chunk([("2024-03-01T08:00:00.000Z", "37.0", 192)]))
    raw = base64.b64decode(str(chunk["content"]))
    chunk["content"] = base64.b64encode(raw[: len(raw) // 2]).decode()
    with pytest.raises(VerificationError, match=r"truncated|gzip"):
        decode_series(chunk)


def test_a_valid_chunk_decodes_to_its_points() -> None:
    points = [("2024-03-01T08:00:00.000Z", "37.0", 192), ("2024-03-01T08:01:00.000Z", "37.1", 0)]
    assert decode_series(encode_chunk(points)) == points
