"""The browser console over real HTTP: what its pages cost the server, against its floor.

Builds a SQLite ledger in a temporary directory (the parties, one agreement in force, migrated;
``culture temperature`` defined; batch ``NWB101-24-001`` with event records and 20,000
one-minute points of ``BR1.TEMP``, then batches of ten events each up to ``small``: 3,000
events, ``full``: 1,000,000, which takes up to half an hour to build), serves it with
uvicorn on loopback in a child process, signs Northwind in (``cmo-ledger login``'s link,
confirmed by ``POST``) and measures from this process, one request at a time, in alternating rounds:

* ``GET /healthz``: the floor (the HTTP stack, no session, no query);
* ``GET /console``: the home page (agreements, approvals, open deviations of the 50 most
  recent batches, claims);
* ``GET /console/batches/NWB101-24-001``: the batch record (timeline, data, the chart of
  20,000 points drawn as 2,000 bucket means, proof).

It prints each one's p50/p95 request time and, for the pages, both as ratios to the floor's
p50/p95 of the same run. Then Chromium (Playwright, Debian's ``chromium``) opens the batch
record and reports navigation start to the load event (``PerformanceNavigationTiming``),
median of a few loads. Run it alone with ``python -m bench.bench_console`` or with the
others via ``python -m bench`` (``make bench``).
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2

from bench.support import print_against_floor, serve_app, served_child

__all__ = ["main"]

SPONSOR = "northwind-bio"
BATCH = "NWB101-24-001"
TAG = "BR1.TEMP"
POINTS = 20_000
EVENTS = {"small": 3_000, "full": 1_000_000}
REQUESTS = {"small": 40, "full": 100}
"""Requests per page and round-robin run (split over :data:`ROUNDS`)."""
ROUNDS = 4
RENDERS = 5
PATHS = ("/healthz", "/console", f"/console/batches/{BATCH}")


def build(database_url: str, data_dir: Path, events: int) -> bytes:
    """The ledger; returns the sponsor's signing key (seed bytes)."""
    from bench.support import batch_chains
    from ledger.application import Ledger
    from ledger.config import Settings
    from ledger.timeutil import format_utc, now_utc
    from tests.support.agreements import sign_retroactively
    from tests.support.batches import (
        continuous_series,
        define_parameter,
        event_records,
        register_batch,
        submit_data,
    )
    from tests.support.world import ORIGIN, build_world, notary_actor

    settings = Settings(database_url=database_url, data_dir=data_dir, kdf_profile="min")
    notary = notary_actor()
    ledger = Ledger.initialise(settings, ORIGIN, notary.public_key)
    try:
        world = build_world(ledger, notary)
        start = now_utc() - timedelta(minutes=POINTS + 60)
        agreement = sign_retroactively(world, format_utc(start - timedelta(days=30)))
        define_parameter(
            world,
            agreement,
            "culture temperature",
            effective_from=format_utc(start),
            reason="history migrated from the paper batch records",
        )
        register_batch(world, agreement, BATCH, started_at=start)
        submit_data(world, BATCH, "event", event_records(started_at=start))
        submit_data(world, BATCH, "continuous", [continuous_series(TAG, start, POINTS)])
        for chain in batch_chains(world, agreement):
            if ledger.head() >= events:
                break
            ledger.append_many(chain)
        return bytes(world[SPONSOR].key)
    finally:
        ledger.close()


def _session(base: str, key: bytes) -> str:
    """A console session token for the sponsor: the login link, confirmed."""
    from nacl.signing import SigningKey

    from api.console.security import SESSION_COOKIE
    from clients.cli.login import sign_in_link

    link = sign_in_link(base, SPONSOR, SigningKey(key)).url
    form = {name: values[0] for name, values in parse_qs(urlsplit(link).query).items()}
    response = httpx2.post(f"{base}/console/sign-in", data=form, follow_redirects=False)
    if response.status_code != 303 or SESSION_COOKIE not in response.cookies:
        raise SystemExit(f"sign-in failed: HTTP {response.status_code}: {response.text[:200]}")
    return str(response.cookies[SESSION_COOKIE])


def measure(base: str, token: str, scale: str) -> dict[str, list[float]]:
    """Request times (s) of each path, one request at a time, in alternating rounds."""
    from api.console.security import SESSION_COOKIE

    times: dict[str, list[float]] = {path: [] for path in PATHS}
    with httpx2.Client(base_url=base, cookies={SESSION_COOKIE: token}, timeout=120) as http:
        for path in PATHS:  # warm caches, connections and templates
            for _ in range(3):
                http.get(path).raise_for_status()
        for _ in range(ROUNDS):
            for path in PATHS:
                for _ in range(REQUESTS[scale] // ROUNDS):
                    started = time.perf_counter()
                    response = http.get(path)
                    elapsed = time.perf_counter() - started
                    response.raise_for_status()
                    times[path].append(elapsed)
    return times


def render_time(base: str, key: bytes) -> list[float]:
    """Navigation start to load event of the batch record in Chromium (ms), per load."""
    from nacl.signing import SigningKey
    from playwright.sync_api import sync_playwright

    from clients.cli.login import sign_in_link

    executable = shutil.which("chromium")
    if executable is None:
        print("no chromium: the render time is not measured (apt-get install chromium)")
        return []
    timings: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_context(base_url=base).new_page()
            page.goto(sign_in_link(base, SPONSOR, SigningKey(key)).url)
            with page.expect_navigation():
                page.click("#confirm-sign-in")
            for attempt in range(RENDERS + 1):
                page.goto(f"/console/batches/{BATCH}", wait_until="load")
                took = page.evaluate(
                    "() => { const n = performance.getEntriesByType('navigation')[0];"
                    " return n.loadEventEnd - n.startTime; }"
                )
                if attempt:  # the first load warms the server
                    timings.append(float(took))
        finally:
            browser.close()
    return timings


def run(scale: str) -> tuple[dict[str, list[float]], list[float]]:
    """Build, serve, sign in, measure, stop."""
    with tempfile.TemporaryDirectory(prefix="cmo-bench-console-") as folder:
        data_dir = Path(folder) / "data"
        url = f"sqlite:///{Path(folder) / 'ledger.db'}"
        started = time.perf_counter()
        key = build(url, data_dir, EVENTS[scale])
        print(f"built the ledger in {time.perf_counter() - started:.1f} s", flush=True)
        with served_child("bench.bench_console", url, data_dir) as base:
            token = _session(base, key)
            return measure(base, token, scale), render_time(base, key)


def main(argv: list[str] | None = None) -> None:
    """Print the figures."""
    from bench import scale

    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--serve"]:
        serve_app(args[1], Path(args[2]), int(args[3]))
        return
    chosen = scale()
    print(
        f"SQLite, {EVENTS[chosen]:,} events, batch of {POINTS:,} points, "
        f"{REQUESTS[chosen]} requests per page, one at a time",
        flush=True,
    )
    times, renders = run(chosen)
    print_against_floor(times, "/healthz", "the /healthz floor")
    if renders:
        print(
            f"batch record of {POINTS:,} points in Chromium, navigation start to load: "
            f"median {statistics.median(renders):.0f} ms, max {max(renders):.0f} ms "
            f"({len(renders)} loads)"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
