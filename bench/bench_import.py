"""Importing a historian export: rows/s and peak memory, next to plain ``csv.reader``.

Writes a continuous CSV of 3 tags (``BR1.TEMP``, ``BR1.PH``, ``BR1.DO``; one-minute
points, interleaved as a PI export is) of 1,000,000 rows (``full``) or 100,000
(``small``), then runs each phase in a fresh interpreter so its peak RSS is its own:

* ``python``: the interpreter with the importer imported, reading nothing (the floor);
* ``csv.reader``: every row parsed by the standard library, nothing checked (the baseline);
* ``validate``: :func:`clients.importers.validate_continuous`, the pass before signing;
* ``build``: validation plus every ``DataSubmitted`` payload (chunks gzip-compressed);
* ``sign``: ``build`` plus an Ed25519-signed envelope per payload, as a client sends them.

Peak memory that does not grow with the file is the point: the importer holds at most
``CHUNK_POINTS`` points per tag and one payload at a time. Run it alone with
``python -m bench.bench_import`` or with the others via ``python -m bench``.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.memory import peak_rss_mib

__all__ = ["main"]

ROWS = {"small": 100_000, "full": 1_000_000}
TAGS = {"BR1.TEMP": (37.0, 0.04, 2), "BR1.PH": (7.05, 0.01, 3), "BR1.DO": (40.0, 1.5, 1)}
# The part of WORLD.md's agreement terms the importer reads.
TERMS = {
    "data_classes": {
        "continuous": {
            "format": {
                "name": "continuous-csv/v1",
                "columns": ["tag", "timestamp", "value", "quality"],
            }
        }
    }
}
PHASES = ("python", "csv.reader", "validate", "build", "sign")
_ROOT = Path(__file__).resolve().parents[1]


def write_export(path: Path, rows: int) -> None:
    """A historian CSV of ``rows`` rows: 3 tags, one point each per minute from 2024-01-01."""
    rng = random.Random(2024)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("tag,timestamp,value,quality\n")
        written = minute = 0
        while written < rows:
            stamp = (start + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            lines = []
            for tag, (base, noise, places) in TAGS.items():
                if written == rows:
                    break
                quality = 64 if rng.random() < 0.001 else 192
                lines.append(f"{tag},{stamp},{base + rng.gauss(0.0, noise):.{places}f},{quality}\n")
                written += 1
            out.write("".join(lines))
            minute += 1


def _phase(name: str, path: Path) -> dict[str, Any]:
    """Run one phase in this process; return what it measured."""
    from clients.importers import ContinuousImport, build_submissions, validate_continuous

    began = time.perf_counter()
    extra: dict[str, Any] = {}
    if name == "csv.reader":
        with path.open(newline="", encoding="utf-8") as handle:
            extra["rows"] = sum(1 for _ in csv.reader(handle)) - 1
    elif name == "validate":
        extra["rows"] = validate_continuous(path, TERMS, set(TAGS)).rows
    elif name in ("build", "sign"):
        source = ContinuousImport(path, TERMS, tags=set(TAGS))
        payloads = build_submissions(source, source_system="contoso-pi-historian")
        extra.update(_consume(payloads, sign=name == "sign"))
        assert source.summary is not None
        extra["rows"] = source.summary.rows
    extra["seconds"] = time.perf_counter() - began
    extra["peak_rss_mib"] = peak_rss_mib()
    return extra


def _consume(payloads: Any, *, sign: bool) -> dict[str, Any]:
    """Go through every payload, one at a time; sign each as the CMO's historian would."""
    from nacl.signing import SigningKey

    from ledger.domain.subjects import batch_subject
    from ledger.keys import key_id
    from ledger.log.envelope import event_hash, sign_envelope
    from ledger.timeutil import format_utc, now_utc

    key = SigningKey.generate()
    subject = str(batch_subject("NWB101-24-001"))
    prev: str | None = "0" * 64
    count = chunks = 0
    for version, payload in enumerate(payloads, 2):
        count += 1
        chunks += sum(len(entry["chunks"]) for entry in payload["series"])
        if not sign:
            continue
        envelope = {
            "ledger": "localhost/cmo-ledger",
            "type": "DataSubmitted",
            "subject": subject,
            "version": version,
            "prev": prev,
            "payload": payload,
            "signer": "contoso-cmo",
            "key": key_id(key.verify_key),
            "signed_at": format_utc(now_utc()),
            "meaning": "submitted",
        }
        prev = event_hash(envelope, sign_envelope(envelope, key))
    return {"submissions": count, "chunks": chunks}


def _run(name: str, path: Path) -> dict[str, Any]:
    """Run a phase in a fresh interpreter, so the peak RSS is that phase's alone."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_import", "--phase", name, str(path)],
        cwd=_ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def main() -> None:
    """Write the export, run every phase, print a table."""
    from bench import scale

    rows = ROWS[scale()]
    with tempfile.TemporaryDirectory(prefix="cmo-bench-import-") as folder:
        path = Path(folder) / "BR-2000-1.csv"
        began = time.perf_counter()
        write_export(path, rows)
        size = path.stat().st_size
        print(
            f"{rows:,} rows, 3 tags, {size / 2**20:.1f} MiB CSV "
            f"(written in {time.perf_counter() - began:.1f} s)"
        )
        print(f"{'phase':<12} {'seconds':>8} {'rows/s':>10} {'peak RSS MiB':>13}  notes")
        for name in PHASES:
            result = _run(name, path)
            seconds = result["seconds"]
            rate = f"{rows / seconds:,.0f}" if name != "python" else "-"
            notes = (
                f"{result['submissions']} submissions, {result['chunks']} chunks"
                if "submissions" in result
                else ""
            )
            print(
                f"{name:<12} {seconds:>8.2f} {rate:>10} {result['peak_rss_mib']:>13.1f}  {notes}",
                flush=True,
            )


def _child() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=PHASES)
    parser.add_argument("file", nargs="?", type=Path)
    args = parser.parse_args()
    if args.phase is None:
        main()
        return
    print(json.dumps(_phase(args.phase, args.file)))


if __name__ == "__main__":
    _child()
