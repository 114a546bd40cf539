"""Projection rebuild throughput and ``as_of`` latency, on SQLite and PostgreSQL.

A base log of real signed events comes from the seeded scenario of the tests
(``tests.support.scenario``, every event type). It is then cloned, with every UUID and
batch name renamed per clone, until the log holds 100k and 1M events (``full``) or 10k
and 50k (``small``, the default; ``CMO_BENCH_SCALE``). Clones are new agreements,
batches and grants: the work per event and the rows per agreement stay those of the
scenario. Signatures of clones do not verify (projections do not check them).

For each size:

* **rebuild**: every view dropped and replayed, in a fresh interpreter so its peak RSS
  is its own; events/s (by the clock and by CPU time) and rows written;
* **its floor** (SQLite): reading the whole log alone as the rebuild reads it, and
  writing the rebuilt rows alone into a new file as the rebuild writes them; what the
  two leave is the most a rebuild could reach with handlers that cost nothing;
* **raw SQLite**: the same number of rows inserted with ``executemany`` into a plain
  SQLite table shaped like the audit index, batch by batch, in the same run, with the
  rebuild's ``synchronous=NORMAL`` and only the inserts and commits timed: the floor of
  "one row per event". Divided by the rebuild's rows per event it is what SQLite inserts
  alone would allow the rebuild, before reading the log or running any handler;
* **as_of**: median and 95th percentile of ``grants_as_of`` (a grantee's grants under
  one agreement) and ``parameters_as_of`` (an agreement's parameters) at random
  positions;
* **served**: median and 95th percentile over signed HTTP (the API in this process, one
  request at a time) of ``traceBatch`` of a random batch as its sponsor (terms and limits
  over the batch's window with what was learnt late, grants, events), and of an
  agreement's ``parameters { limitsAt(time) }`` at a random valid time inside
  ``asOf(position)`` at a random position (both axes); beside them, the floor of any
  signed request, ``{ me { id } }`` (signature check, authority, HTTP).

Run alone with ``python -m bench.bench_projections``.
"""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.memory import peak_rss_mib
from bench.support import database
from ledger.application import Ledger
from ledger.config import Settings

SCALES = {"small": (10_000, 50_000), "full": (100_000, 1_000_000)}
BASE_EVENTS = 2_000
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_BATCH = re.compile(rb"(NWB101|HEL7)-24-(\d{4})")
_PARTY_TOPICS = ("cmo.PartyAdmitted.v1", "cmo.KeyAdded.v1", "cmo.KeyRevoked.v1")


def main() -> None:
    scale = os.environ.get("CMO_BENCH_SCALE", "small")
    sizes = SCALES[scale]
    print(f"scale {scale}: sizes {sizes}; base scenario {BASE_EVENTS} signed events", flush=True)
    for backend in os.environ.get("CMO_BENCH_BACKENDS", "sqlite,postgres").split(","):
        try:
            with database(backend) as url:
                _bench_backend(backend, url, sizes)
        except sa.exc.OperationalError as error:
            print(f"{backend}: skipped, database unreachable ({error.orig})", flush=True)


def _bench_backend(backend: str, url: str, sizes: tuple[int, ...]) -> None:
    ledger = _base_ledger(url)
    cloner = _Cloner(ledger)
    try:
        for size in sizes:
            cloner.fill_to(size)
            rebuilt = _rebuild_in_child(url)
            raw = _raw_sqlite_rows_per_second(rebuilt["events"])
            access, parameters = _as_of_latencies(ledger)
            _report(backend, rebuilt, raw, access, parameters)
            _report_served(backend, rebuilt["events"], _served_latencies(ledger))
    finally:
        ledger.close()


def _report(
    backend: str,
    rebuilt: dict[str, Any],
    raw: float,
    access: tuple[float, float],
    parameters: tuple[float, float],
) -> None:
    events, seconds = rebuilt["events"], rebuilt["seconds"]
    rate = events / seconds
    per_event = rebuilt["rows"] / events
    print(
        f"{backend:8s} {events:>9,} events: rebuild {rate:>8,.0f} events/s "
        f"({rebuilt['rows'] / seconds:,.0f} rows/s, {per_event:.1f} rows/event, "
        f"CPU {events / rebuilt['cpu_seconds']:,.0f} events/s), "
        f"peak RSS {rebuilt['peak_rss_mb']:.0f} MB; raw SQLite inserts {raw:,.0f} rows/s "
        f"(rebuild = {rate / raw:.3f} of raw; at {per_event:.1f} rows/event raw inserts alone "
        f"cap a rebuild at {raw / per_event:,.0f} events/s); as_of median/p95: "
        f"access {access[0]:.2f}/{access[1]:.2f} ms, "
        f"parameters {parameters[0]:.2f}/{parameters[1]:.2f} ms",
        flush=True,
    )
    read, write = rebuilt["read_seconds"], rebuilt["write_seconds"]
    if write is not None:
        print(
            f"{'':8s} {'':>9s}         of the rebuild's {seconds:.1f} s: reading the log alone "
            f"{read:.1f} s, writing its {rebuilt['rows']:,} rows alone {write:.1f} s, so "
            f"{read + write:.1f} s before any handler runs (at most "
            f"{events / (read + write):,.0f} events/s)",
            flush=True,
        )


def _base_ledger(url: str) -> Ledger:
    from tests.support.scenario import Scenario
    from tests.support.world import ORIGIN, build_world, notary_actor

    notary = notary_actor()
    ledger = Ledger.initialise(Settings(database_url=url), ORIGIN, notary.public_key)
    Scenario(build_world(ledger, notary), seed=20240601).run(BASE_EVENTS)
    return ledger


class _Cloner:
    """Appends renamed copies of the base log (party events left out: parties are shared)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.table = ledger.storage.events_table
        columns = (self.table.c.originator_id, self.table.c.originator_version)
        with ledger.engine.connect() as conn:
            query = sa.select(*columns, self.table.c.topic, self.table.c.state)
            rows = conn.execute(query.order_by(self.table.c.id)).all()
        self.template = [row for row in rows if row.topic not in _PARTY_TOPICS]
        self.clones = 0

    def fill_to(self, size: int) -> None:
        """Clone until the log holds ``size`` events."""
        while self.ledger.head() < size:
            self.clones += 1
            rows = self._renamed()[: size - self.ledger.head()]
            with self.ledger.engine.begin() as conn:
                for start in range(0, len(rows), 5000):
                    conn.execute(self.table.insert(), rows[start : start + 5000])

    def _renamed(self) -> list[dict[str, Any]]:
        names: dict[bytes, bytes] = {}
        clone = self.clones

        def rename(match: re.Match[bytes]) -> bytes:
            old = match.group(0)
            if old not in names:
                new = uuid.uuid5(uuid.NAMESPACE_OID, f"{clone}/{old.decode()}")
                names[old] = str(new).encode()
            return names[old]

        batch = b"\\1-C%d-\\2" % clone
        return [
            {
                "originator_id": uuid.UUID(_UUID.sub(rename, str(subject).encode()).decode()),
                "originator_version": version,
                "topic": topic,
                "state": _BATCH.sub(batch, _UUID.sub(rename, bytes(state))),
            }
            for subject, version, topic, state in self.template
        ]


def _rebuild_in_child(url: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.bench_projections", "--rebuild", url]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the rebuild failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _rebuild_here(url: str) -> None:
    from projections.rebuild import rebuild
    from projections.runner import ALL_VIEWS

    ledger = Ledger(Settings(database_url=url))
    start, cpu = time.perf_counter(), time.process_time()
    rebuild(ledger)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    rows = 0
    with ledger.engine.connect() as conn:
        for view in ALL_VIEWS:
            for table in view.all_tables():
                rows += conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    result = {
        "events": ledger.head(),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rows": rows,
        "peak_rss_mb": peak_rss_mib(),
        "read_seconds": _read_log_seconds(ledger),
        "write_seconds": _same_rows_seconds(url) if url.startswith("sqlite") else None,
    }
    ledger.close()
    print(json.dumps(result), flush=True)


def _read_log_seconds(ledger: Ledger) -> float:
    """Seconds to read and decode the whole log as a rebuild does (pages of
    ``REBUILD_PAGE``, the cycle collector paused), and nothing else."""
    from sqlalchemy.orm import Session

    from ledger.log.follow import read_events
    from ledger.runtime import collector_paused
    from projections.rebuild import REBUILD_PAGE

    with collector_paused():  # as the rebuild does while it replays
        start, after = time.perf_counter(), 0
        with ledger.engine.connect() as conn, Session(bind=conn) as session:
            while events := read_events(session, ledger, after, REBUILD_PAGE):
                after = events[-1].position
        return time.perf_counter() - start


def _same_rows_seconds(url: str) -> float:
    """Seconds to write the rebuilt views' own rows, and nothing else, into a new SQLite
    file as a rebuild writes them: the same tables and key indexes, ``executemany`` pages
    of ``REBUILD_PAGE`` rows each committed, secondary indexes made at the end. Only the
    inserts, commits and index builds are timed. The rows go table by table, which is
    kinder to SQLite's cache than a rebuild's interleaving: a floor, not a target."""
    from projections.rebuild import _REBUILD_CHECKPOINT_PAGES, REBUILD_PAGE
    from projections.runner import ALL_VIEWS
    from projections.temporal import secondary_indexes

    tables = [table for view in ALL_VIEWS for table in view.all_tables()]
    source = sqlite3.connect(url.removeprefix("sqlite:///"))
    seconds = 0.0
    with tempfile.TemporaryDirectory() as directory:
        engine = sa.create_engine(f"sqlite:///{Path(directory) / 'rows.db'}")
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            for table in tables:
                table.create(conn)
                for index in secondary_indexes(table):
                    index.drop(conn)
        target = sqlite3.connect(Path(directory) / "rows.db")
        target.execute("PRAGMA synchronous=NORMAL")
        target.execute(f"PRAGMA wal_autocheckpoint={_REBUILD_CHECKPOINT_PAGES}")
        for table in tables:
            names = ", ".join(f'"{column.name}"' for column in table.c)
            marks = ", ".join("?" * len(table.c))
            insert = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'
            rows = source.execute(f'SELECT {names} FROM "{table.name}" ORDER BY rowid')
            while page := rows.fetchmany(REBUILD_PAGE):
                start = time.perf_counter()
                target.executemany(insert, page)
                target.commit()
                seconds += time.perf_counter() - start
        target.close()
        start = time.perf_counter()
        with engine.begin() as conn:
            for table in tables:
                for index in secondary_indexes(table):
                    index.create(conn)
        seconds += time.perf_counter() - start
        engine.dispose()
    source.close()
    return seconds


def _raw_sqlite_rows_per_second(count: int) -> float:
    """Rows/s of plain ``executemany`` inserts of audit-shaped rows into a new SQLite file."""
    with tempfile.TemporaryDirectory() as directory:
        db = sqlite3.connect(Path(directory) / "raw.db")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # as the rebuild's connection has it
        db.execute(
            "CREATE TABLE raw (position INTEGER PRIMARY KEY, leaf INTEGER, subject TEXT, "
            "version INTEGER, type TEXT, signer TEXT, key TEXT, meaning TEXT, reason TEXT, "
            "signed_at TEXT, recorded_at TEXT, through TEXT, agreement TEXT, batch TEXT)"
        )
        row = (str(uuid.uuid4()), 3, "DataSubmitted", "contoso-cmo", "f" * 32, "submitted")
        times = ("2026-03-03T09:15:00.000Z",) * 3
        # Only the inserts and commits are timed: making the rows (two uuid4 strings a
        # row) took about a third of the loop, which made SQLite look slower than it is.
        seconds = 0.0
        for first in range(0, count, 2000):
            page = [
                (i, i - 1, *row, None, *times, str(uuid.uuid4()), "NWB101-24-001")
                for i in range(first + 1, min(first + 2000, count) + 1)
            ]
            start = time.perf_counter()
            db.executemany(f"INSERT INTO raw VALUES ({', '.join('?' * 14)})", page)
            db.commit()
            seconds += time.perf_counter() - start
        db.close()
    return count / seconds


def _as_of_latencies(ledger: Ledger) -> tuple[tuple[float, float], tuple[float, float]]:
    from projections.access import GRANTS, grants_as_of
    from projections.parameters import PARAMETERS, parameters_as_of

    rng = random.Random(5)
    head = ledger.head()
    with ledger.engine.connect() as conn:
        grants = conn.execute(sa.select(GRANTS.c.grantee, GRANTS.c.agreement).distinct()).all()
        agreements = conn.execute(sa.select(PARAMETERS.c.agreement).distinct()).scalars().all()

        def access() -> None:
            grantee, agreement = rng.choice(grants)
            grants_as_of(conn, rng.randrange(1, head + 1), grantee, agreement)

        def parameters() -> None:
            parameters_as_of(conn, rng.randrange(1, head + 1), rng.choice(agreements))

        return _latency(access), _latency(parameters)


TRACE = """
query($b: String!) { traceBatch(id: $b) {
  position termsInForce { version } termsKnownAfterData
  parameterLimits { parameterId versions { version } versionsKnownAfterData }
  grants { id } events { position type signer }
} }
"""
LIMITS_AT = """
query($k: Int!, $a: ID!, $t: DateTime!) {
  asOf(position: $k) { parameters(agreementId: $a) { id limitsAt(time: $t) { version } } }
}
"""


def _served_latencies(ledger: Ledger) -> dict[str, tuple[float, float]]:
    """traceBatch and limitsAt over signed HTTP, as the sponsor of what they ask about."""
    from ledger.timeutil import format_utc, now_utc
    from projections.agreements import AGREEMENTS
    from projections.data import BATCHES
    from projections.parameters import PARAMETERS
    from tests.support.server import running_server
    from tests.support.world import actor_of, notary_actor

    rng = random.Random(7)
    head = ledger.head()
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.select(AGREEMENTS.c.agreement, AGREEMENTS.c.sponsor)).all()
        sponsors: dict[str, str] = {str(a): str(s) for a, s in rows}
        batches = conn.execute(sa.select(BATCHES.c.batch, BATCHES.c.agreement).distinct()).all()
        defined = conn.execute(sa.select(PARAMETERS.c.agreement).distinct()).scalars().all()
    start = now_utc().timestamp() - 90 * 86_400
    with running_server(ledger.settings, notary_actor().key) as server:
        clients = {party: server.http(actor_of(party)) for party in set(sponsors.values())}

        def ask(party: str, query: str, variables: dict[str, Any]) -> None:
            body = {"query": query, "variables": variables}
            answer = clients[party].post(server.graphql_url, json=body).json()
            if answer.get("errors"):
                raise RuntimeError(f"{party}: {answer['errors']}")

        def trace() -> None:
            batch, agreement = rng.choice(batches)
            ask(sponsors[agreement], TRACE, {"b": batch})

        def limits_at() -> None:
            agreement = rng.choice(defined)
            when = format_utc(datetime.fromtimestamp(start + rng.random() * 90 * 86_400, UTC))
            variables = {"k": rng.randrange(1, head + 1), "a": agreement, "t": when}
            ask(sponsors[agreement], LIMITS_AT, variables)

        try:

            def floor() -> None:
                ask(rng.choice(list(clients)), "{ me { id } }", {})

            return {
                "signed request floor ({ me { id } })": _latency(floor, 200),
                "traceBatch": _latency(trace, 200),
                "limitsAt": _latency(limits_at, 200),
            }
        finally:
            for client in clients.values():
                client.close()


def _report_served(backend: str, events: int, found: dict[str, tuple[float, float]]) -> None:
    shown = ", ".join(f"{name} {p50:.1f}/{p95:.1f} ms" for name, (p50, p95) in found.items())
    print(
        f"{backend:8s} {events:>9,} events: served median/p95 {shown} "
        "(budget: traceBatch p50 < 50 ms, limitsAt < 5 ms)",
        flush=True,
    )


def _latency(query: Callable[[], None], runs: int = 300) -> tuple[float, float]:
    for _ in range(20):
        query()  # warm the statement cache and the database's pages
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        query()
        timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    return statistics.median(timings), timings[int(runs * 0.95)]


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    if len(sys.argv) == 3 and sys.argv[1] == "--rebuild":
        _rebuild_here(sys.argv[2])
    else:
        main()
