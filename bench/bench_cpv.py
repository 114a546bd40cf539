"""The ``cpv`` analysis over real HTTP: an X-bar/R chart with capability across many
batches, against a signed floor query of the same run.

Builds a SQLite ledger in a temporary directory: one agreement in force, ``pH`` defined
by the sponsor, ``batches`` batches (``small``: 100, ``full``: 1,000) of 20 replicate
results each, a ``PPQ`` baseline of the first 20, then batches of ten events each until the
log holds ``events`` (``small``: 10,000; ``full``: 1,000,000). Every view is then rebuilt
from the log (timed: the rebuild's events/s on this log), so that the server starts with
its views current. Serves it with uvicorn on
loopback in a child process and measures from this process, one signed request at a time
(RFC 9421, as the sponsor), in alternating rounds:

* ``{ ledger { origin } }``: the floor (signature check, GraphQL, no data);
* ``cpv(agreementId, parameter: "pH", baseline: "PPQ")``: the whole analysis (points of
  every batch, limits from the baseline, run rules, capability with intervals, normality,
  the inputs digest and the checkpoint), as the client asks it (``clients.client.CPV``:
  the points as one JSON value, ``pointsJson``);
* the same with typed ``points { ... }``: one GraphQL object per point and per result.

It checks that both answer the same points, and prints p50/p95 of each and the analyses as
ratios to the floor, then the server's CPU per request of each (all its threads, its
background work included, from ``/proc``): a figure other processes on a busy machine
inflate far less than the wall-clock times.

``CMO_BENCH_CPV_BATCHES`` and ``CMO_BENCH_CPV_EVENTS`` override the scale's batches and
events of this discrete case, e.g. ``CMO_BENCH_CPV_BATCHES=1000 CMO_BENCH_CPV_EVENTS=30000``
measures the full scale's analysis without building a million events first;
``CMO_BENCH_CPV_SERIES=0`` then skips the continuous case.

Then the continuous case, in a second ledger: ``pH`` measured by the tag ``BR1.PH``,
``series`` batches (``small``: 100 of 2,000 one-minute points; ``full``: 1,000 of 20,000, the
issue's size) in chunks of a day (1,440 points), a ``PPQ`` baseline of the first 20. Every
other view is projected first; then the summaries view is rebuilt from the log (the
chunks decoded and summarised: the summaries were not in the read model) and the first
``cpv(..., statistic: MEAN)`` answered as the client asks it (``pointsJson``): together
the **cold** figure. The **warm** figures are p50/p95 of the same request with the
summaries in the read model, and of the same analysis with typed points, against the floor
of the same run.

Run it alone with ``python -m bench.bench_cpv`` or with the others via ``python -m bench``
(``make bench``).
"""

from __future__ import annotations

import math
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.support import batch_chains, print_against_floor, serve_app, served_child

__all__ = ["main"]

SPONSOR = "northwind-bio"
CMO = "contoso-cmo"
PARAMETER = "pH"
REPLICATES = 20
BASELINE = 20
BATCHES = {"small": 100, "full": 1_000}
EVENTS = {"small": 10_000, "full": 1_000_000}
REQUESTS = {"small": 40, "full": 100}
ROUNDS = 4
FLOOR = "{ ledger { origin } }"
TAG = "BR1.PH"
SERIES = {"small": (100, 2_000), "full": (1_000, 20_000)}
"""Batches and points per batch of the continuous case."""
CHUNK = 1_440
SERIES_QUERY = """
query($a: ID!, $p: String!, $b: String!) {
  cpv(agreementId: $a, parameter: $p, baseline: $b, statistic: MEAN) {
    chart statistic tag inputsDigest location { centre lower upper }
    points { batch value summary { count mean min max timeOutsideLimitsMs } }
    violations { rule batches } capability { cpk { value } }
  }
}
"""


def _results(batch: str, rng: random.Random, sampled_at: str) -> list[dict[str, Any]]:
    return [
        {
            "id": f"PH-{index:03d}",
            "parameter": PARAMETER,
            "value": f"{rng.gauss(7.05, 0.02):.3f}",
            "unit": "[pH]",
            "sampled_at": sampled_at,
            "method": "in-process control",
        }
        for index in range(1, REPLICATES + 1)
    ]


def build(database_url: str, data_dir: Path, batches: int, events: int) -> tuple[bytes, str]:
    """The ledger; returns the sponsor's signing key (seed bytes) and the agreement id."""
    from ledger.application import Ledger
    from ledger.config import Settings
    from ledger.domain.subjects import baseline_subject
    from ledger.timeutil import format_utc, now_utc
    from tests.support.agreements import sign_retroactively
    from tests.support.batches import define_parameter, register_batch, submit_data
    from tests.support.world import ORIGIN, build_world, notary_actor

    settings = Settings(database_url=database_url, data_dir=data_dir, kdf_profile="min")
    notary = notary_actor()
    ledger = Ledger.initialise(settings, ORIGIN, notary.public_key)
    try:
        world = build_world(ledger, notary)
        start = now_utc() - timedelta(days=batches + 30)
        agreement = sign_retroactively(world, format_utc(start - timedelta(days=1)))
        define_parameter(
            world,
            agreement,
            PARAMETER,
            effective_from=format_utc(start),
            reason="history migrated from the paper batch records",
        )
        rng = random.Random(19)
        names = []
        for number in range(batches):
            name = f"CPV-{number:05d}"
            started = start + timedelta(days=number)
            register_batch(world, agreement, name, started_at=started)
            records = _results(name, rng, format_utc(started + timedelta(hours=6)))
            submit_data(world, name, "discrete", records)
            names.append(name)
        world[CMO].submit(
            ledger,
            "BaselineDefined",
            baseline_subject(str(agreement), PARAMETER, "PPQ"),
            {
                "agreement": str(agreement),
                "parameter": PARAMETER,
                "name": "PPQ",
                "batches": names[:BASELINE],
            },
            meaning="authored",
            reason="process performance qualification campaign",
        )
        for chain in batch_chains(world, agreement):
            if ledger.head() >= events:
                break
            ledger.append_many(chain)
        return bytes(world[SPONSOR].key), str(agreement)
    finally:
        ledger.close()


Measured = tuple[dict[str, list[float]], dict[str, float]]
"""Each operation's request times (s), and its server CPU seconds per request."""


def measure(base: str, key: bytes, agreement: str, batches: int, requests: int) -> Measured:
    """Request times (s) of the floor and the analysis, one request at a time, and the CPU
    the server spent on each (all its threads; NaN where ``/proc`` does not tell)."""
    from nacl.signing import SigningKey

    from clients.client import CPV, LedgerClient
    from ledger.evidence.export import TYPED_POINTS

    asked = {"a": agreement, "p": PARAMETER, "b": "PPQ"}
    operations: dict[str, tuple[str, dict[str, Any]]] = {
        "floor": (FLOOR, {}),
        "cpv": (CPV, asked),
        "cpv typed points": (CPV.replace("pointsJson", TYPED_POINTS), asked),
    }
    times: dict[str, list[float]] = {name: [] for name in operations}
    cpu = dict.fromkeys(operations, 0.0)
    server = _server()
    with LedgerClient(base, SPONSOR, SigningKey(key), timeout=120) as client:
        typed = client.graphql(*operations["cpv typed points"])["cpv"]
        if len(typed["points"]) != batches or typed["capability"] is None:
            raise SystemExit(f"the analysis is not the one built: {str(typed)[:300]}")
        answer = client.graphql(*operations["cpv"])["cpv"]
        if answer["pointsJson"] != typed["points"]:
            raise SystemExit("pointsJson is not the points the typed field answers")
        print(f"chart {answer['chart']}, {len(typed['points'])} points", flush=True)
        for _ in range(ROUNDS):
            for name, (query, variables) in operations.items():
                spent = _cpu_seconds(server)
                for _ in range(requests // ROUNDS):
                    started = time.perf_counter()
                    client.graphql(query, variables)
                    times[name].append(time.perf_counter() - started)
                cpu[name] += _cpu_seconds(server) - spent
    return times, {name: cpu[name] / len(times[name]) for name in operations}


def _server() -> int | None:
    """The process id of this process's child (the server), where ``/proc`` lists it."""
    parent = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == parent:
            return int(stat.parent.name)
    return None


def _cpu_seconds(pid: int | None) -> float:
    """User and system CPU seconds of process ``pid`` so far, all its threads."""
    if pid is None:
        return math.nan
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def print_cpu(cpu: dict[str, float], floor: str) -> None:
    """The server's CPU per request of each operation, and as a ratio to the floor's."""
    for name, seconds in cpu.items():
        line = f"{name:34} server CPU {seconds * 1000:8.1f} ms per request"
        if name != floor and cpu[floor] > 0:
            line += f"   = {seconds / cpu[floor]:6.1f}x the floor's"
        print(line)


def run(batches: int, events: int, requests: int) -> Measured:
    """Build, serve, measure, stop."""
    with tempfile.TemporaryDirectory(prefix="cmo-bench-cpv-") as folder:
        data_dir = Path(folder) / "data"
        url = f"sqlite:///{Path(folder) / 'ledger.db'}"
        started = time.perf_counter()
        key, agreement = build(url, data_dir, batches, events)
        print(f"built the ledger in {time.perf_counter() - started:.1f} s", flush=True)
        # Projected before serving: a server would catch up with the whole log first.
        seconds = project_all(url, data_dir)
        print(f"projected every view in {seconds:.1f} s ({events / seconds:,.0f} events/s)")
        with served_child("bench.bench_cpv", url, data_dir) as base:
            return measure(base, key, agreement, batches, requests)


def project_all(database_url: str, data_dir: Path) -> float:
    """Seconds to rebuild every view from the log."""
    from projections.runner import ALL_VIEWS

    return rebuild_views(database_url, data_dir, [view.name for view in ALL_VIEWS])


def _series_entry(started: Any, points: int, rng: random.Random) -> dict[str, Any]:
    from ledger.domain.formats import encode_chunk
    from ledger.timeutil import format_utc

    rows = []
    for minute in range(points):
        stamp = format_utc(started + timedelta(minutes=minute))
        rows.append((stamp, f"{rng.gauss(7.05, 0.04):.3f}", 192))
    chunks = [encode_chunk(rows[at : at + CHUNK]) for at in range(0, points, CHUNK)]
    return {"tag": TAG, "chunks": chunks}


def build_series(database_url: str, data_dir: Path, batches: int, points: int) -> tuple[bytes, str]:
    """The continuous ledger, every view but the summaries projected; returns the sponsor's
    signing key (seed bytes) and the agreement id."""
    from ledger.application import Ledger
    from ledger.config import Settings
    from ledger.domain.subjects import baseline_subject
    from ledger.timeutil import format_utc, now_utc
    from projections.rebuild import rebuild
    from projections.runner import ALL_VIEWS
    from tests.support.agreements import sign_retroactively
    from tests.support.batches import define_parameter, register_batch, submit_data
    from tests.support.world import ORIGIN, build_world, notary_actor

    settings = Settings(database_url=database_url, data_dir=data_dir, kdf_profile="min")
    notary = notary_actor()
    ledger = Ledger.initialise(settings, ORIGIN, notary.public_key)
    try:
        world = build_world(ledger, notary)
        days = points // CHUNK + 2
        start = now_utc() - timedelta(days=batches * days + 30)
        agreement = sign_retroactively(world, format_utc(start - timedelta(days=1)))
        define_parameter(
            world,
            agreement,
            PARAMETER,
            effective_from=format_utc(start),
            reason="history migrated from the paper batch records",
        )
        rng = random.Random(19)
        names = []
        for number in range(batches):
            name = f"CPV-C-{number:05d}"
            started = start + timedelta(days=number * days)
            register_batch(world, agreement, name, started_at=started)
            submit_data(world, name, "continuous", [_series_entry(started, points, rng)])
            names.append(name)
        world[CMO].submit(
            ledger,
            "BaselineDefined",
            baseline_subject(str(agreement), PARAMETER, "PPQ"),
            {
                "agreement": str(agreement),
                "parameter": PARAMETER,
                "name": "PPQ",
                "batches": names[:BASELINE],
            },
            meaning="authored",
            reason="process performance qualification campaign",
        )
        rebuild(ledger, [view.name for view in ALL_VIEWS if view.name != "summaries"])
        return bytes(world[SPONSOR].key), str(agreement)
    finally:
        ledger.close()


def rebuild_summaries(database_url: str, data_dir: Path) -> float:
    """Seconds to rebuild the summaries view from the log."""
    return rebuild_views(database_url, data_dir, ["summaries"])


def rebuild_views(database_url: str, data_dir: Path, names: list[str]) -> float:
    """Seconds to rebuild the views ``names`` from the log."""
    from ledger.application import Ledger
    from ledger.config import Settings
    from projections.rebuild import rebuild

    settings = Settings(database_url=database_url, data_dir=data_dir, kdf_profile="min")
    ledger = Ledger.open(settings)
    try:
        started = time.perf_counter()
        rebuild(ledger, names)
        return time.perf_counter() - started
    finally:
        ledger.close()


def measure_series(
    base: str, key: bytes, agreement: str, batches: int
) -> tuple[float, dict[str, list[float]]]:
    """The first analysis's time (s), then the floor's and the warm analyses' times: as the
    client asks it (``pointsJson``) and with typed points."""
    from nacl.signing import SigningKey

    from clients.client import CPV, LedgerClient

    asked = {"a": agreement, "p": PARAMETER, "b": "PPQ"}
    operations: dict[str, tuple[str, dict[str, Any]]] = {
        "floor": (FLOOR, {}),
        "cpv continuous (warm)": (CPV, {**asked, "s": "MEAN"}),
        "cpv continuous, typed points (warm)": (SERIES_QUERY, asked),
    }
    times: dict[str, list[float]] = {name: [] for name in operations}
    with LedgerClient(base, SPONSOR, SigningKey(key), timeout=120) as client:
        started = time.perf_counter()
        answer = client.graphql(*operations["cpv continuous (warm)"])["cpv"]
        first = time.perf_counter() - started
        if len(answer["pointsJson"]) != batches or answer["statistic"] != "MEAN":
            raise SystemExit(f"the analysis is not the one built: {str(answer)[:300]}")
        typed = client.graphql(*operations["cpv continuous, typed points (warm)"])["cpv"]
        if [p["value"] for p in typed["points"]] != [p["value"] for p in answer["pointsJson"]]:
            raise SystemExit("pointsJson is not the points the typed field answers")
        print(f"chart {answer['chart']} of the batch means of {answer['tag']}", flush=True)
        for _ in range(ROUNDS):
            for name, (query, variables) in operations.items():
                for _ in range(REQUESTS["small"] // ROUNDS):
                    started = time.perf_counter()
                    client.graphql(query, variables)
                    times[name].append(time.perf_counter() - started)
    return first, times


def run_series(scale: str) -> None:
    """Build the continuous ledger, rebuild its summaries (cold), serve, measure, print."""
    batches, points = SERIES[scale]
    print(
        f"SQLite, continuous {TAG}: {batches:,} batches x {points:,} points in chunks of "
        f"{CHUNK:,}, {REQUESTS['small']} requests each, one at a time",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="cmo-bench-cpv-series-") as folder:
        data_dir = Path(folder) / "data"
        url = f"sqlite:///{Path(folder) / 'ledger.db'}"
        started = time.perf_counter()
        key, agreement = build_series(url, data_dir, batches, points)
        print(f"built the ledger in {time.perf_counter() - started:.1f} s", flush=True)
        rebuilt = rebuild_summaries(url, data_dir)
        with served_child("bench.bench_cpv", url, data_dir) as base:
            first, times = measure_series(base, key, agreement, batches)
    floor = statistics.median(times["floor"])
    print(
        f"cold: summaries rebuilt from the log {rebuilt * 1000:8.1f} ms + first analysis "
        f"{first * 1000:6.1f} ms = {(rebuilt + first) * 1000:8.1f} ms "
        f"= {(rebuilt + first) / floor:8.1f}x the signed floor query"
    )
    print_against_floor(times, "floor", "the signed floor query")


def main(argv: list[str] | None = None) -> None:
    """Print the figures."""
    from bench import scale

    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--serve"]:
        serve_app(args[1], Path(args[2]), int(args[3]))
        return
    chosen = scale()
    batches = _size("CMO_BENCH_CPV_BATCHES", BATCHES[chosen])
    events = _size("CMO_BENCH_CPV_EVENTS", EVENTS[chosen])
    print(
        f"SQLite, {events:,} events, {batches:,} batches x {REPLICATES} "
        f"replicates of {PARAMETER}, {REQUESTS[chosen]} requests each, one at a time",
        flush=True,
    )
    times, cpu = run(batches, events, REQUESTS[chosen])
    print_against_floor(times, "floor", "the signed floor query")
    print_cpu(cpu, "floor")
    if os.environ.get("CMO_BENCH_CPV_SERIES", "1") != "0":
        run_series(chosen)


def _size(name: str, default: int) -> int:
    """The whole number the environment variable ``name`` sets, else ``default``."""
    value = os.environ.get(name)
    if value is None:
        return default
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"{name} is {value!r}: set it to a whole number of 1 or more")
    return int(value)


if __name__ == "__main__":
    main(sys.argv[1:])
