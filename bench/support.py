"""Helpers the benchmarks share: realistic signed event chains and waiting for a server."""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import sqlalchemy as sa

from ledger.application import Ledger
from ledger.config import Settings
from ledger.domain.subjects import batch_subject
from ledger.log.envelope import event_hash
from ledger.timeutil import format_utc, now_utc
from tests.support.batches import data_payload, discrete_records
from tests.support.world import ORIGIN, World, build_world, notary_actor

__all__ = [
    "PG_URL",
    "batch_chains",
    "database",
    "free_port",
    "percentile",
    "print_against_floor",
    "serve_app",
    "served_child",
    "sqlite_world",
    "wait_healthy",
]

CMO = "contoso-cmo"
PG_URL = os.environ.get(
    "CMO_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/cmo_ledger_test"
)
"""The PostgreSQL server benchmarks make their schemas in (``CMO_TEST_PG_URL``)."""


@contextlib.contextmanager
def database(backend: str) -> Iterator[str]:
    """The URL of a new, empty database on ``backend`` (``sqlite``: a file in a temporary
    directory; ``postgres``: a schema of its own in :data:`PG_URL`), dropped afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{Path(directory) / 'ledger.db'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()


def sqlite_world(directory: Path) -> World:
    """A new SQLite ledger in ``directory`` with the world's parties admitted."""
    directory.mkdir(parents=True)
    settings = Settings(
        database_url=f"sqlite:///{directory / 'ledger.db'}", data_dir=directory, kdf_profile="min"
    )
    notary = notary_actor()
    return build_world(Ledger.initialise(settings, ORIGIN, notary.public_key), notary)


def batch_chains(world: World, agreement: uuid.UUID) -> Iterator[list[tuple[dict[str, Any], str]]]:
    """Signed chains, one per batch: ``BatchRegistered`` then nine ``DataSubmitted``."""
    cmo = world[CMO]
    for number in range(10**6):
        batch = f"NWB101-24-{number:05d}"
        subject = batch_subject(batch)
        payload = {
            "agreement": str(agreement),
            "batch": batch,
            "product": "NWB-101",
            "site": "contoso-site-a",
            "started_at": format_utc(now_utc() - timedelta(days=14)),
        }
        envelope = cmo.envelope(
            "BatchRegistered", subject, payload, version=1, prev=None, meaning="authored"
        )
        chain = [(envelope, cmo.sign(envelope))]
        for run in range(9):
            data = data_payload("discrete", discrete_records(f"R{run}"))
            envelope = cmo.envelope(
                "DataSubmitted",
                subject,
                data,
                version=run + 2,
                prev=event_hash(*chain[-1]),
                meaning="submitted",
            )
            chain.append((envelope, cmo.sign(envelope)))
        yield chain


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Return once ``url/healthz`` answers 200; fail if ``process`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the server exited before it was ready: see its log")
        try:
            if httpx2.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become ready in time")


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], share: float) -> float:
    """The value at ``share`` (0-1) of the sorted ``values`` (nearest rank below)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def print_against_floor(times: dict[str, list[float]], floor: str, label: str) -> None:
    """One line per measured name: p50 and p95 of its times (s), and, but for ``floor``,
    both as ratios to the floor's of the same run."""
    floor50, floor95 = statistics.median(times[floor]), percentile(times[floor], 0.95)
    for name, found in times.items():
        p50, p95 = statistics.median(found), percentile(found, 0.95)
        line = f"{name:34} p50 {p50 * 1000:8.1f} ms   p95 {p95 * 1000:8.1f} ms"
        if name != floor:
            line += f"   = {p50 / floor50:6.1f}x / {p95 / floor95:6.1f}x {label}"
        print(line)


def serve_app(database_url: str, data_dir: Path, port: int) -> None:
    """Serve the API and the console of a bench ledger until killed (the child's side of
    :func:`served_child`)."""
    import uvicorn

    from api.app import create_app

    settings = Settings(database_url=database_url, data_dir=data_dir, kdf_profile="min")
    # Settled like ``cmo-ledger serve``'s workers: the child owns its interpreter.
    app = create_app(settings, notary_key=notary_actor().key, settle=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


@contextlib.contextmanager
def served_child(module: str, database_url: str, data_dir: Path) -> Iterator[str]:
    """Run ``python -m module --serve URL DIR PORT`` (whose ``main`` calls
    :func:`serve_app`) and yield its base URL once healthy; stop it afterwards."""
    port = free_port()
    command = [sys.executable, "-m", module, "--serve", database_url, str(data_dir), str(port)]
    child = subprocess.Popen(command, env=dict(os.environ))
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, child)
        yield base
    finally:
        child.terminate()
        child.wait(30)
