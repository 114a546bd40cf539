"""Concurrent single-event appends through group commit, against the same appends one at a
time, in one run, on SQLite and on PostgreSQL.

Each ledger runs as a server process does: the projector's read-your-writes is a ledger
listener and the Merkle tree its companion (one transaction for both), so an append
returns with its views and leaf up to date. The
events are a CMO's batch chains (``BatchRegistered`` then nine ``DataSubmitted``), signed
before any clock starts; each chain is submitted one event at a time, in order, as an
uploader does:

* **one at a time**: one thread, ``Ledger.append`` per event;
* **grouped**: ``CLIENTS`` threads, each with chains of its own, through one
  :class:`~ledger.group_commit.GroupCommit`.

It prints events per second of each, the grouped run as a ratio to one at a time, the
grouped append's latency (p50/p99) and the mean number of requests per transaction. Run
alone with ``python -m bench.bench_group_commit``; ``CMO_BENCH_BACKENDS=sqlite`` skips
PostgreSQL.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.support import batch_chains, database, percentile
from ledger.application import AppendRequest, Ledger
from ledger.config import Settings
from ledger.group_commit import GroupCommit
from ledger.log.tree import MerkleTree
from projections.runner import Projector
from tests.support.agreements import propose_and_sign
from tests.support.world import ORIGIN, World, build_world, notary_actor

__all__ = ["main"]

CLIENTS = 16
CHAINS = {"small": 3, "full": 12}
"""Batch chains (ten events each) per client."""
Item = tuple[dict[str, Any], str]


def main() -> None:
    chains = CHAINS[os.environ.get("CMO_BENCH_SCALE", "small")]
    events = CLIENTS * chains * 10
    print(f"{CLIENTS} clients x {chains} chains of 10 single-event appends ({events} events)")
    for backend in os.environ.get("CMO_BENCH_BACKENDS", "sqlite,postgres").split(","):
        try:
            _bench(backend, chains)
        except sa.exc.OperationalError as error:
            print(f"  {backend}: skipped, database unreachable ({error.orig})")


def _bench(backend: str, chains: int) -> None:
    with database(backend) as serial_url, database(backend) as grouped_url:
        serial = _AsServed(serial_url)
        grouped = _AsServed(grouped_url)
        try:
            work = _client_chains(serial.world, chains)
            one_at_a_time = _run_serial(serial.ledger, [item for w in work for item in w])
            rate, latencies, groups = _run_grouped(
                grouped.ledger, _client_chains(grouped.world, chains)
            )
        finally:
            serial.close()
            grouped.close()
    print(
        f"  {backend:<8} one at a time {one_at_a_time:7.0f} events/s; grouped {rate:7.0f} "
        f"events/s ({rate / one_at_a_time:.2f}x), append p50 "
        f"{percentile(latencies, 0.5) * 1000:.1f} ms p99 {percentile(latencies, 0.99) * 1000:.1f} "
        f"ms, {statistics.fmean(groups):.1f} requests per transaction"
    )


def _client_chains(world: World, chains: int) -> list[list[Item]]:
    """Each client's items: ``chains`` batch chains of its own, signed now."""
    source = batch_chains(world, world.agreement)  # type: ignore[attr-defined]
    return [[item for _ in range(chains) for item in next(source)] for _ in range(CLIENTS)]


def _run_serial(ledger: Ledger, items: Sequence[Item]) -> float:
    start = time.perf_counter()
    for envelope, signature in items:
        ledger.append(envelope, signature)
    return len(items) / (time.perf_counter() - start)


def _run_grouped(
    ledger: Ledger, work: Sequence[Sequence[Item]]
) -> tuple[float, list[float], list[int]]:
    groups: list[int] = []
    original = ledger.append_group

    def counted(requests: Sequence[AppendRequest], **options: Any) -> Any:
        groups.append(len(requests))
        return original(requests, **options)

    ledger.append_group = counted  # type: ignore[method-assign]
    writer = GroupCommit(ledger)
    latencies: list[float] = []
    lock = threading.Lock()

    def client(items: Sequence[Item]) -> None:
        for envelope, signature in items:
            began = time.perf_counter()
            writer.append(envelope, signature)
            with lock:
                latencies.append(time.perf_counter() - began)

    threads = [threading.Thread(target=client, args=(items,)) for items in work]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    return sum(len(items) for items in work) / elapsed, latencies, groups


class _AsServed:
    """A ledger with the world admitted, an agreement in force, the projector following
    and the tree riding along with it."""

    def __init__(self, url: str) -> None:
        directory = Path(tempfile.mkdtemp(prefix="bench-group-"))
        settings = Settings(database_url=url, data_dir=directory, kdf_profile="min")
        notary = notary_actor()
        self.world = build_world(Ledger.initialise(settings, ORIGIN, notary.public_key), notary)
        self.world.agreement = propose_and_sign(self.world)  # type: ignore[attr-defined]
        self.ledger = self.world.ledger
        self.tree = MerkleTree(self.ledger)
        self.projector = Projector(self.ledger, companions=(self.tree,)).start()

    def close(self) -> None:
        self.projector.close()
        self.ledger.close()


if __name__ == "__main__":
    main()
