"""The verifiable log: ``verify`` throughput, inclusion-proof latency, append cost of the tree.

Everything is measured in one run, next to its baseline, as wall time and as CPU time
(the machine may be shared; CPU time is what other load skews least):

* **verify**: a SQLite ledger of real signed events shaped like a CMO's log (parties,
  an agreement, then batches: ``BatchRegistered`` and nine ``DataSubmitted`` of discrete
  results each, about 1.2 KB per envelope), with its tree and a checkpoint; 24k events
  (``small``) or 100k (``full``). Baseline: plain PyNaCl ``VerifyKey.verify`` of the same
  signatures over the same bytes, on one core. ``verify`` runs on one core (the process
  pinned to one CPU, no workers) and with two workers. Best of three interleaved rounds.
* **inclusion proofs**: trees of 10k, 100k and 1M leaves stored as ``ledger.log.tree`` stores
  them (SQLite); the mean time of ``inclusion_proof`` over random leaves, each one
  batched read of O(log n) nodes.
* **append**: ``Ledger.append`` one envelope at a time (signed before the clock starts),
  without the tree and with the notary's background thread building the tree and signing
  checkpoints (the final catch-up and signature of each round counted). Also the CPU the
  notary's thread itself used. Baselines: a bare eventsourcing Application on the same
  persistence settings saving one event (of about an envelope's size) per transaction, in
  rounds interleaved with the appends' (which goes first rotates); and one-row
  transactions of the same state bytes into a plain SQLite table.

Scale: ``CMO_BENCH_SCALE`` = ``small`` (default) or ``full``. Run alone with
``python -m bench.bench_log``; name sections to run only those, e.g.
``python -m bench.bench_log append``.
"""

from __future__ import annotations

import base64
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from nacl.signing import VerifyKey

from bench.support import batch_chains
from ledger.application import Ledger
from ledger.canonical import canonical_bytes
from ledger.config import Settings
from ledger.keys import decode_public_key, key_id
from ledger.log.checkpoints import Notary
from ledger.log.envelope import ENVELOPE_DOMAIN
from ledger.log.merkle import leaf_hash, root_of, verify_inclusion
from ledger.log.tree import TreeStore, append_leaves, create_tree_tables
from ledger.log.verify import verify_ledger
from tests.support.agreements import propose_and_sign
from tests.support.world import ORIGIN, World, build_world, notary_actor

__all__ = ["main"]

SCALES = {
    "small": {"verify": 24_000, "append": 600, "proof_sizes": (10_000, 100_000, 1_000_000)},
    "full": {"verify": 100_000, "append": 2_000, "proof_sizes": (10_000, 100_000, 1_000_000)},
}
ROUNDS = 3
PROOFS = 2_000


SECTIONS = ("verify", "proofs", "append")


def main() -> None:
    scale = os.environ.get("CMO_BENCH_SCALE", "small")
    config = SCALES[scale]
    chosen = [name for name in sys.argv[1:] if name in SECTIONS] or list(SECTIONS)
    print(f"scale {scale}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-log-") as tmp:
        if "verify" in chosen:
            bench_verify(Path(tmp) / "verify", int(config["verify"]))  # type: ignore[arg-type]
        if "proofs" in chosen:
            bench_proofs(Path(tmp) / "proofs", config["proof_sizes"])  # type: ignore[arg-type]
        if "append" in chosen:
            bench_append(Path(tmp) / "append", int(config["append"]))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- events


def open_world(directory: Path) -> World:
    directory.mkdir(parents=True)
    settings = Settings(database_url=f"sqlite:///{directory / 'ledger.db'}", data_dir=directory)
    notary = notary_actor()
    return build_world(Ledger.initialise(settings, ORIGIN, notary.public_key), notary)


def fill(world: World, events: int) -> None:
    """Append batch chains until the log holds at least ``events`` events."""
    agreement = propose_and_sign(world)
    chains = batch_chains(world, agreement)
    while world.ledger.head() < events:
        world.ledger.append_many([item for _ in range(20) for item in next(chains)])


# --------------------------------------------------------------------------- verify


def raw_items(ledger: Ledger) -> list[tuple[VerifyKey, bytes, bytes]]:
    """``(key, signed bytes, signature)`` of every event, for the PyNaCl baseline."""
    keys = {ledger.identity.notary_key_id: decode_public_key(ledger.identity.notary_public_key)}
    items = []
    for recorded in ledger.iter_log():
        envelope = dict(recorded.event.envelope)
        if envelope["type"] in ("PartyAdmitted", "KeyAdded"):
            public_key = decode_public_key(envelope["payload"]["public_key"])
            keys[key_id(public_key)] = public_key
        signed = ENVELOPE_DOMAIN + canonical_bytes(envelope)
        items.append((envelope["key"], signed, base64.b64decode(recorded.event.signature)))
    return [(keys[kid], signed, signature) for kid, signed, signature in items]


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def cpu_timed(action: Callable[[], object]) -> tuple[float, float]:
    """Wall time, and CPU time of this process and its finished children."""
    wall, own, children = cpu_split(action)
    return wall, own + children


def cpu_split(action: Callable[[], object]) -> tuple[float, float, float]:
    """Wall time, CPU time of this process, and CPU time of its finished children."""
    before, start = os.times(), time.perf_counter()
    action()
    wall, after = time.perf_counter() - start, os.times()
    own = after.user - before.user + after.system - before.system
    children = sum(after[i] - before[i] for i in (2, 3))  # children's user and system
    return wall, own, children


def pinned(action: Callable[[], object]) -> tuple[float, float]:
    """``cpu_timed`` with this process on one CPU."""
    everything = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(everything)})
    try:
        return cpu_timed(action)
    finally:
        os.sched_setaffinity(0, everything)


def bench_verify(directory: Path, events: int) -> None:
    world = open_world(directory)
    fill(world, events)
    ledger = world.ledger
    Notary(ledger, world.notary.key).checkpoint_now()
    items = raw_items(ledger)
    count = len(items)
    size = statistics.mean(len(signed) for _, signed, _ in items)
    print(f"\nverify: {count} events, {size:.0f} signed bytes per envelope on average")

    def raw() -> None:
        for key, signed, signature in items:
            key.verify(signed, signature)

    def verify(workers: int) -> Callable[[], None]:
        def run() -> None:
            report = verify_ledger(ledger, workers=workers)
            assert report.ok and report.events == count, report.problems[:3]

        return run

    runs: dict[str, list[tuple[float, float]]] = {"raw": [], "one": [], "two": []}
    split: list[tuple[float, float]] = []  # CPU of the caller and of the workers, 2 workers
    for _ in range(ROUNDS):
        runs["raw"].append(pinned(raw))
        runs["one"].append(pinned(verify(1)))
        wall, own, children = cpu_split(verify(2))
        runs["two"].append((wall, own + children))
        split.append((own, children))
    wall = {name: count / min(w for w, _ in results) for name, results in runs.items()}
    cpu = {name: count / min(c for _, c in results) for name, results in runs.items()}
    print("                                 best wall      per CPU-second")
    print(f"  raw PyNaCl verify, 1 core   {wall['raw']:9.0f} events/s {cpu['raw']:9.0f} events/s")
    for name, label in (("one", "verify, 1 core"), ("two", "verify, 2 workers")):
        print(f"  {label:<27} {wall[name]:9.0f} events/s {cpu[name]:9.0f} events/s")
    one, raw_rate = wall["one"] / wall["raw"], cpu["one"] / cpu["raw"]
    print(f"  1 core / raw:     {one:.2f} (wall)  {raw_rate:.2f} (CPU)")
    print(f"  2 cores / 1 core: {wall['two'] / wall['one']:.2f}x (wall)")
    own, children = min(split, key=sum)
    raw_seconds = count / cpu["raw"]
    print(
        f"  2 workers, CPU per event / raw: caller {own / raw_seconds:.3f}, workers "
        f"{children / raw_seconds:.3f}, sum {(own + children) / raw_seconds:.3f}; 2 / sum = "
        f"{2 * raw_seconds / (own + children):.2f}x raw with both cores busy"
    )
    print(f"  2 workers / raw: {wall['two'] / wall['raw']:.2f}x (wall)")
    ledger.close()


# --------------------------------------------------------------------------- proofs


def bench_proofs(directory: Path, sizes: tuple[int, ...]) -> None:
    directory.mkdir(parents=True)
    engine = sa.create_engine(f"sqlite:///{directory / 'tree.db'}")
    create_tree_tables(engine)
    store = TreeStore(engine)
    rng = random.Random(6962)
    print("\ninclusion proof (stored tree, SQLite): mean over random leaves")
    leaves: list[bytes] = []
    for target in sizes:
        start = time.perf_counter()
        while len(leaves) < target:
            step = min(100_000, target - len(leaves))
            new = [leaf_hash(b"%d" % (len(leaves) + i)) for i in range(step)]
            with engine.begin() as conn:
                append_leaves(
                    conn, len(leaves), range(len(leaves) + 1, len(leaves) + step + 1), new
                )
            leaves.extend(new)
        built = time.perf_counter() - start
        root = store.root(target)
        indexes = [rng.randrange(target) for _ in range(PROOFS)]
        store.inclusion_proof(indexes[0], target)  # warm the connection pool
        elapsed = timed(lambda n=target, at=indexes: [store.inclusion_proof(i, n) for i in at])
        index = indexes[-1]
        assert verify_inclusion(
            leaves[index], index, target, store.inclusion_proof(index, target), root
        )
        print(
            f"  {target:>9} leaves: {elapsed / PROOFS * 1e3:6.3f} ms per proof "
            f"({len(store.inclusion_proof(index, target))} hashes; tree stored in {built:.1f} s)"
        )
    assert store.root(sizes[0]) == root_of(leaves[: sizes[0]])
    engine.dispose()


# --------------------------------------------------------------------------- append


def bench_append(directory: Path, events: int) -> None:
    plain, maintained = open_world(directory / "plain"), open_world(directory / "tree")
    notary = Notary(maintained.ledger, maintained.notary.key)
    rounds = 2 * ROUNDS
    per_round = max(events // rounds, 10)
    # Signed before any clock starts: a party's signing is not the ledger's work.
    queues = {id(w): iter(envelopes(w, per_round * rounds)) for w in (plain, maintained)}
    library = LibrarySaves(directory / "library")
    spent = {name: [0.0, 0.0] for name in ("plain", "tree", "library")}  # wall, CPU
    background = [0.0]  # CPU of the notary's thread (tree and checkpoints)
    tick = notary.tick

    def counted_tick() -> object:
        start = time.thread_time()
        try:
            return tick()
        finally:
            background[0] += time.thread_time() - start

    notary.tick = counted_tick  # type: ignore[method-assign]

    def run(name: str) -> None:
        if name == "library":
            wall, cpu = cpu_timed(lambda: library.save_each(per_round))
        else:
            world = plain if name == "plain" else maintained
            wall, cpu = cpu_timed(
                lambda: (
                    append(world, queues[id(world)], per_round),
                    name == "tree" and notary.checkpoint_now(),  # the last events too
                )
            )
        spent[name] = [spent[name][0] + wall, spent[name][1] + cpu]

    notary.start()
    try:
        for number in range(rounds):
            # Rotate which goes first, so none always runs on a warmer machine.
            order = ("plain", "library", "tree")
            for offset in range(len(order)):
                run(order[(number + offset) % len(order)])
    finally:
        notary.stop()
        library.close()
    total = per_round * rounds
    latest = notary.latest()
    assert latest is not None and latest.size == maintained.ledger.head()
    raw = raw_sqlite_inserts(directory / "raw.db", plain.ledger, total)
    rate = {name: (total / wall, total / cpu) for name, (wall, cpu) in spent.items()}
    (plain_wall, plain_cpu), (tree_wall, tree_cpu) = spent["plain"], spent["tree"]
    print(f"\nappend: {total} envelopes, one at a time      wall        per CPU-second")
    print(f"  raw SQLite, a transaction per row  {raw:8.0f} rows/s")
    print(
        f"  eventsourcing, an event per save   {rate['library'][0]:8.0f} events/s "
        f"{rate['library'][1]:8.0f} events/s"
    )
    print(
        f"  append without the tree            {rate['plain'][0]:8.0f} events/s "
        f"{rate['plain'][1]:8.0f} events/s   ({rate['plain'][0] / raw:.2f} of raw, "
        f"{rate['plain'][0] / rate['library'][0]:.2f} of eventsourcing; per CPU-second "
        f"{rate['plain'][1] / rate['library'][1]:.2f})"
    )
    print(
        f"  append, tree and checkpoints kept  {rate['tree'][0]:8.0f} events/s "
        f"{rate['tree'][1]:8.0f} events/s"
    )
    print(
        f"  cost of the tree: {(tree_wall / plain_wall - 1) * 100:+.1f}% wall, "
        f"{(tree_cpu / plain_cpu - 1) * 100:+.1f}% CPU; the notary's thread used "
        f"{background[0] / tree_cpu * 100:.1f}% of the CPU"
    )
    plain.ledger.close()
    maintained.ledger.close()


def envelopes(world: World, count: int) -> list[tuple[dict[str, Any], str]]:
    """``count`` signed envelopes: batch chains under a new agreement."""
    agreement = propose_and_sign(world)
    signed: list[tuple[dict[str, Any], str]] = []
    for chain in batch_chains(world, agreement):
        signed.extend(chain[: count - len(signed)])
        if len(signed) >= count:
            return signed
    return signed


def append(world: World, queue: Iterator[tuple[dict[str, Any], str]], count: int) -> None:
    for _ in range(count):
        envelope, signature = next(queue)
        world.ledger.append(envelope, signature)


class _Tally(Aggregate):
    """The smallest aggregate: each event carries a text the size of an envelope."""

    @event("Counted")
    def count(self, text: str) -> None:
        self.last = text


class LibrarySaves:
    """A bare eventsourcing ``Application`` on the ledger's persistence settings (a SQLite
    file, eventsourcing-sqlalchemy) saving one event per transaction: what the library
    costs before any signature, rule or leaf encoding."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        settings = Settings(
            database_url=f"sqlite:///{directory / 'library.db'}", data_dir=directory
        )
        self.app = Application[UUID](env=settings.eventsourcing_env())
        self.tally = _Tally()
        self.app.save(self.tally)
        self.text = "x" * 1100

    def save_each(self, count: int) -> None:
        for _ in range(count):
            self.tally.count(self.text)
            self.app.save(self.tally)

    def close(self) -> None:
        self.app.close()


def raw_sqlite_inserts(path: Path, ledger: Ledger, count: int) -> float:
    """Rows/s of one-row transactions of the ledger's own state bytes into plain SQLite."""
    states = [
        bytes(r[0])
        for r in sqlite3.connect(ledger.settings.sqlite_path()).execute(
            "SELECT state FROM ledger_events ORDER BY id LIMIT ?", (count,)
        )
    ]
    states = (states * (count // len(states) + 1))[:count]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, originator_id BLOB, originator_version "
        "INTEGER, topic TEXT, state BLOB, UNIQUE (originator_id, originator_version))"
    )

    def insert() -> None:
        for version, state in enumerate(states, 1):
            conn.execute("BEGIN")
            conn.execute(
                "INSERT INTO events (originator_id, originator_version, topic, state) "
                "VALUES (?, ?, ?, ?)",
                (b"\x01" * 16, version, "cmo.DataSubmitted.v1", state),
            )
            conn.execute("COMMIT")

    elapsed = timed(insert)
    conn.close()
    return count / elapsed


if __name__ == "__main__":
    main()
