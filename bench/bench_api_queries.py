"""Data queries over real HTTP: GraphQL next to a plain Starlette JSON endpoint, same run.

Builds a ledger (SQLite in a temporary directory, or PostgreSQL with
``--database-url``), serves it with uvicorn on loopback in a child process, and measures
from this process:

* ``auditTrail`` page of 100 events: requests/s and p50/p99 latency under 32 concurrent
  clients, for ``POST /graphql`` and for ``POST /bench/audit``, a Starlette endpoint that
  does the same work without GraphQL (signature check, the caller's authority, the same
  SQL, JSON of the same rows);
* one tag's continuous series of 20,160 points (14 days at one minute): latency of
  ``batch { continuous(tag) { timestamps values quality } }`` and of
  ``POST /bench/series``, the same points as plain JSON, one request at a time.

Every request is signed (RFC 9421) by the CMO, which sees every event. Request counts
are bounded (``small``: 1,600 per figure; ``full``: 8,000). Run it alone with
``python -m bench.bench_api_queries`` or with the others via ``python -m bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2

from bench.support import free_port, wait_healthy

__all__ = ["main"]

CMO = "contoso-cmo"
BATCH = "NWB101-24-001"
TAG = "BR1.TEMP"
POINTS = 14 * 24 * 60
CONCURRENCY = 32
REQUESTS = {"small": 1600, "full": 8000}
SERIES_REQUESTS = {"small": 20, "full": 60}
EVENTS = {"small": 300, "full": 3000}
ROUNDS = 4
AUDIT_QUERY = """
query($n: Int!) {
  auditTrail(first: $n) {
    edges { cursor node {
      position leafIndex subject version type signer key meaning reason signedAt recordedAt
      agreementId batch
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
SERIES_QUERY = """
query($b: String!, $t: String!) {
  batch(id: $b) { continuous(tag: $t) { points timestamps values quality } }
}
"""


# -- the ledger ------------------------------------------------------------------------------


def build(database_url: str, data_dir: Path, events: int) -> bytes:
    """Parties, one agreement, a 14-day tag and about ``events`` events in all; returns
    the CMO's signing key (seed bytes)."""
    from ledger.application import Ledger
    from ledger.config import Settings
    from ledger.timeutil import now_utc
    from tests.support.agreements import propose_and_sign
    from tests.support.batches import (
        continuous_series,
        discrete_records,
        register_batch,
        submit_data,
    )
    from tests.support.world import ORIGIN, build_world, notary_actor

    settings = Settings(database_url=database_url, data_dir=data_dir, kdf_profile="min")
    notary = notary_actor()
    ledger = Ledger.initialise(settings, ORIGIN, notary.public_key)
    try:
        world = build_world(ledger, notary)
        agreement = propose_and_sign(world)
        start = now_utc() - timedelta(days=14, minutes=5)
        register_batch(world, agreement, BATCH, started_at=start)
        submit_data(world, BATCH, "continuous", [continuous_series(TAG, start, POINTS)])
        serial = 0
        while ledger.head() < events:
            serial += 1
            name = f"NWB101-24-{serial + 1:03d}"
            register_batch(world, agreement, name)
            for round_ in range(4):
                records = discrete_records(f"R{round_}", sampled_at=now_utc() - timedelta(days=1))
                submit_data(world, name, "discrete", records)
        return bytes(world[CMO].key)
    finally:
        ledger.close()


# -- the server (child process) ---------------------------------------------------------------


def serve(database_url: str, data_dir: Path, port: int) -> None:
    """Serve the API plus the two plain endpoints until killed."""
    import uvicorn
    from starlette.routing import Route

    from api.app import create_app
    from ledger.config import Settings
    from tests.support.world import notary_actor

    settings = Settings(database_url=database_url, data_dir=data_dir, kdf_profile="min")
    app = create_app(settings, notary_key=notary_actor().key)
    app.router.routes.append(Route("/bench/audit", plain_audit, methods=["POST"]))
    app.router.routes.append(Route("/bench/series", plain_series, methods=["POST"]))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


async def _signed_work(request: Any, work: Callable[[Any, Any], Any]) -> Any:
    from starlette.concurrency import run_in_threadpool

    from api.access import load_authority
    from api.auth import SignedRequest

    services = request.app.state.services
    body = await request.body()
    signed = SignedRequest(request.method, str(request.url), request.headers)

    def run() -> Any:
        caller = services.auth.authenticate_http(signed, body)
        authority = load_authority(services.ledger.engine, caller)
        return work(services.ledger.engine, authority)

    return await run_in_threadpool(run)


async def plain_audit(request: Any) -> Any:
    """The first 100 events the caller may see, as plain JSON (same rows as the query)."""
    from sqlalchemy import select
    from starlette.responses import JSONResponse

    from api.access import now_text
    from api.queries.audit import ENTRY_COLUMNS, encode_cursor, scope_clause
    from ledger.clock import SYSTEM
    from projections.audit import AUDIT

    names = [column.name for column in ENTRY_COLUMNS]

    def work(engine: Any, authority: Any) -> Any:
        query = (
            select(*ENTRY_COLUMNS)
            .where(AUDIT.c.position > 0, AUDIT.c.position <= authority.position)
            .where(scope_clause(authority.event_scope(now_text(SYSTEM))))
            .order_by(AUDIT.c.position)
            .limit(101)
        )
        with engine.connect() as conn:
            rows = conn.execute(query).all()
        edges = [
            {"cursor": encode_cursor(row[0]), "node": dict(zip(names, row, strict=True))}
            for row in rows[:100]
        ]
        return {"edges": edges, "hasNextPage": len(rows) > 100}

    return JSONResponse(await _signed_work(request, work))


async def plain_series(request: Any) -> Any:
    """One tag's points as plain JSON columns (same points as the query)."""
    from starlette.responses import JSONResponse

    from api.access import now_text
    from ledger.clock import SYSTEM
    from ledger.domain.scope import DataItem
    from projections.data import BATCHES
    from projections.series import series

    log = request.app.state.services.ledger

    def work(engine: Any, authority: Any) -> Any:
        from sqlalchemy import select

        with engine.connect() as conn:
            agreement = conn.execute(
                select(BATCHES.c.agreement).where(BATCHES.c.batch == BATCH)
            ).scalar_one()
            item = DataItem(agreement, "continuous", BATCH, TAG)
            assert authority.series_refusal(item, None, None, now_text(SYSTEM)) is None
            found = series(conn, log, BATCH, TAG, position=authority.position)
        values = [float(v) for v in found.values]
        return {"timestamps": found.timestamps, "values": values, "quality": found.quality}

    return JSONResponse(await _signed_work(request, work))


# -- the load ---------------------------------------------------------------------------------


@dataclass
class Figure:
    """Latencies of one kind of request, in seconds, and the wall time they took."""

    name: str
    latencies: list[float]
    wall: float

    def line(self) -> str:
        ordered = sorted(self.latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        rate = len(ordered) / self.wall
        return f"{self.name:34} {rate:8.0f} req/s   p50 {p50:7.1f} ms   p99 {p99:7.1f} ms"


Post = Callable[[httpx2.AsyncClient], Awaitable[None]]


async def _load(url: str, auth: Any, post: Post, total: int, concurrency: int) -> Figure:
    latencies: list[float] = []
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx2.AsyncClient(base_url=url, auth=auth, limits=limits, timeout=60) as client:
        remaining = total

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                await post(client)
                latencies.append(time.perf_counter() - started)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - began
    return Figure("", latencies, wall)


def _poster(path: str, payload: dict[str, Any], check: Callable[[Any], None]) -> Post:
    body = json.dumps(payload).encode()

    async def post(client: httpx2.AsyncClient) -> None:
        response = await client.post(
            path, content=body, headers={"content-type": "application/json"}
        )
        response.raise_for_status()
        check(response.json())

    return post


def _graphql_ok(key: str, size: int) -> Callable[[Any], None]:
    def check(answer: Any) -> None:
        assert not answer.get("errors"), answer["errors"]
        found = answer["data"][key]
        assert size == len(found["edges"] if "edges" in found else found["continuous"]["values"])

    return check


def _plain_ok(size: int, key: str) -> Callable[[Any], None]:
    def check(answer: Any) -> None:
        assert len(answer[key]) == size

    return check


async def measure(url: str, scale: str, key: bytes) -> list[Figure]:
    """Both figures, GraphQL next to plain JSON, in the same run."""
    from nacl.signing import SigningKey

    from clients.http_signing import PartyAuth
    from tests.support.world import ORIGIN

    auth = PartyAuth(CMO, SigningKey(key), origin=ORIGIN)
    total = REQUESTS[scale]
    audit_gql = _poster(
        "/graphql", {"query": AUDIT_QUERY, "variables": {"n": 100}}, _graphql_ok("auditTrail", 100)
    )
    audit_plain = _poster("/bench/audit", {}, _plain_ok(100, "edges"))
    series_gql = _poster(
        "/graphql",
        {"query": SERIES_QUERY, "variables": {"b": BATCH, "t": TAG}},
        _graphql_ok("batch", POINTS),
    )
    series_plain = _poster("/bench/series", {}, _plain_ok(POINTS, "values"))
    for post in (audit_gql, audit_plain):  # warm caches and connection pools
        await _load(url, auth, post, 100, CONCURRENCY)
    await _load(url, auth, series_gql, 3, 1)
    await _load(url, auth, series_plain, 3, 1)
    audit = await _interleaved(url, auth, audit_gql, audit_plain, total)
    count = SERIES_REQUESTS[scale]
    series = await _interleaved(url, auth, series_gql, series_plain, count, concurrency=1)
    names = ("auditTrail 100", "series 20,160 points")
    figures: list[Figure] = []
    for name, pair in zip(names, (audit, series), strict=True):
        pair[0].name, pair[1].name = f"{name}, GraphQL", f"{name}, plain JSON"
        figures.extend(pair)
    return figures


async def _interleaved(
    url: str, auth: Any, graphql: Post, plain: Post, total: int, concurrency: int = CONCURRENCY
) -> tuple[Figure, Figure]:
    # Alternating rounds spread any drift of the machine (other load, disk) over both.
    pair = (Figure("", [], 0.0), Figure("", [], 0.0))
    for _ in range(ROUNDS):
        for figure, post in zip(pair, (graphql, plain), strict=True):
            found = await _load(url, auth, post, total // ROUNDS, concurrency)
            figure.latencies.extend(found.latencies)
            figure.wall += found.wall
    return pair


# -- orchestration ------------------------------------------------------------------------------


def run(scale: str, database_url: str | None) -> list[Figure]:
    """Build, serve, measure, stop; the figures."""
    with tempfile.TemporaryDirectory(prefix="cmo-bench-api-") as folder:
        data_dir = Path(folder) / "data"
        url = database_url or f"sqlite:///{Path(folder) / 'ledger.db'}"
        started = time.perf_counter()
        key = build(url, data_dir, EVENTS[scale])
        print(f"built the ledger in {time.perf_counter() - started:.1f} s", flush=True)
        port = free_port()
        command = [sys.executable, "-m", "bench.bench_api_queries", "--serve", url, str(data_dir)]
        child = subprocess.Popen([*command, str(port)], env=dict(os.environ))
        try:
            base = f"http://127.0.0.1:{port}"
            wait_healthy(base, child)
            return asyncio.run(measure(base, scale, key))
        finally:
            child.terminate()
            child.wait(30)


@contextlib.contextmanager
def _pg_schema(base: str) -> Iterator[str]:
    """A private schema for one run (dropped afterwards), as a database URL."""
    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def main(argv: list[str] | None = None) -> None:
    """Print the figures (``--database-url`` for PostgreSQL; default a temporary SQLite)."""
    from bench import scale

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="postgresql+psycopg://... (a schema is made)")
    parser.add_argument("--serve", nargs=3, metavar=("URL", "DATA_DIR", "PORT"), help="internal")
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve[0], Path(args.serve[1]), int(args.serve[2]))
        return
    backend = "SQLite" if args.database_url is None else "PostgreSQL"
    print(f"{backend}, {CONCURRENCY} concurrent clients for auditTrail, 1 for series", flush=True)
    with contextlib.ExitStack() as stack:
        database = None
        if args.database_url is not None:
            database = stack.enter_context(_pg_schema(args.database_url))
        figures = run(scale(), database)
    for figure in figures:
        print(figure.line())
    audit = _ratio(figures[0], figures[1], rate=True)
    series = _ratio(figures[2], figures[3], rate=False)
    print(f"auditTrail: plain JSON serves {audit:.2f}x the GraphQL requests/s")
    print(f"series: GraphQL p50 latency is {series:.2f}x the plain JSON p50")


def _ratio(graphql: Figure, plain: Figure, *, rate: bool) -> float:
    if rate:
        return (len(plain.latencies) / plain.wall) / (len(graphql.latencies) / graphql.wall)
    return statistics.median(graphql.latencies) / statistics.median(plain.latencies)


if __name__ == "__main__":
    main(sys.argv[1:])
