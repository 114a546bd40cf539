"""``submitEvents`` over HTTP against in-process appends, on SQLite, in one run.

The events are a CMO's: per batch one ``BatchRegistered`` and nine ``DataSubmitted`` of
discrete results (about 1.2 KB per envelope), signed before any clock starts. Each round
stores 1,000 of them (100 batches) in one all-or-nothing batch, three ways, each on its
own ledger that starts from the same state:

* **in-process, bare**: ``Ledger.append_many`` on a ledger with nothing else running;
* **in-process, as served**: the same plus what the server does per batch: the projector
  (read models updated before the call returns) with the Merkle tree as its companion
  (the batch's leaves added in the views' transaction), as ``api.services`` runs them;
* **HTTP**: one signed ``submitEvents`` request to ``cmo-ledger serve`` (one worker, its
  own process) asking for each event's position and leaf index; the time covers the
  client's JSON and request signature, the transfer, and the server's work.

Figures are the best of three rounds, as wall time and (in process) as CPU time, which
other load on a shared machine skews least. Run alone with ``python -m bench.bench_api_submit``;
``CMO_BENCH_SCALE=full`` runs five rounds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2

from bench.support import batch_chains, free_port, sqlite_world, wait_healthy
from clients.http_signing import PartyAuth
from ledger.keystore import create_keystore
from ledger.log.tree import MerkleTree
from projections.runner import Projector
from tests.support.agreements import propose_and_sign
from tests.support.batches import CMO
from tests.support.world import World

__all__ = ["main"]

EVENTS = 1_000
ROUNDS = {"small": 3, "full": 5}
PASSPHRASE = "bench passphrase"
SUBMIT = """
mutation($events: [SignedEnvelopeInput!]!) { submitEvents(events: $events) { position leafIndex } }
"""
Item = tuple[dict[str, Any], str]


def main() -> None:
    rounds = ROUNDS[os.environ.get("CMO_BENCH_SCALE", "small")]
    print(f"{EVENTS} events per round, best of {rounds}; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        worlds = {name: open_world(Path(tmp) / name) for name in ("bare", "served", "http")}
        queues = {name: signed_events(world) for name, world in worlds.items()}
        batches = {name: [take(queues[name], EVENTS) for _ in range(rounds)] for name in worlds}
        served = AsServed(worlds["served"])
        bare, http_world = worlds["bare"].ledger, worlds["http"]
        http_world.ledger.close()
        times: dict[str, list[float]] = {name: [] for name in worlds}
        cpu: dict[str, list[float]] = {name: [] for name in ("bare", "served")}
        with serving(http_world) as url:
            for index in range(rounds):
                items = {name: batches[name][index] for name in worlds}
                for name, action in (("bare", bare.append_many), ("served", served.append)):
                    wall, spent = cpu_timed(action, items[name])
                    times[name].append(wall)
                    cpu[name].append(spent)
                times["http"].append(timed(submit, url, http_world, items["http"]))
        report(
            {name: EVENTS / min(values) for name, values in times.items()},
            {name: EVENTS / min(values) for name, values in cpu.items()},
        )
        served.close()
        bare.close()


def report(rates: dict[str, float], per_cpu: dict[str, float]) -> None:
    print("                                          wall        per CPU-second")
    print(
        f"  in-process append_many, bare        {rates['bare']:8.0f} events/s "
        f"{per_cpu['bare']:8.0f} events/s"
    )
    print(
        f"  in-process, projector + tree        {rates['served']:8.0f} events/s "
        f"{per_cpu['served']:8.0f} events/s"
    )
    print(
        f"  HTTP submitEvents (1 request)       {rates['http']:8.0f} events/s   "
        f"{rates['http'] / rates['served']:.2f} of in-process as served, "
        f"{rates['http'] / rates['bare']:.2f} of bare"
    )


def timed(action: Callable[..., object], *args: Any) -> float:
    start = time.perf_counter()
    action(*args)
    return time.perf_counter() - start


def cpu_timed(action: Callable[..., object], *args: Any) -> tuple[float, float]:
    """Wall time, and CPU time of this process (all its threads: the projector's too)."""
    before, start = time.process_time(), time.perf_counter()
    action(*args)
    return time.perf_counter() - start, time.process_time() - before


# ------------------------------------------------------------------------ events


def open_world(directory: Path) -> World:
    world = sqlite_world(directory)
    world.agreement = propose_and_sign(world)  # type: ignore[attr-defined]
    return world


def take(queue: Iterator[Item], count: int) -> list[Item]:
    return [next(queue) for _ in range(count)]


# ------------------------------------------------------------------- three ways


class AsServed:
    """``append_many`` with the projector following and the tree riding along."""

    def __init__(self, world: World) -> None:
        self.ledger = world.ledger
        self.tree = MerkleTree(self.ledger)
        self.projector = Projector(self.ledger, companions=(self.tree,)).start()

    def append(self, items: list[Item]) -> None:
        appended = self.ledger.append_many(items)
        if self.projector.reached < appended[-1].position:
            raise RuntimeError(f"the views and the tree lag: {self.projector.error}")

    def close(self) -> None:
        self.projector.close()
        self.ledger.close()


def submit(url: str, world: World, items: list[Item]) -> None:
    actor = world[CMO]
    events = [{"envelope": envelope, "signature": signature} for envelope, signature in items]
    body = {"query": SUBMIT, "variables": {"events": events}}
    auth = PartyAuth(actor.party_id, actor.key, origin=world.ledger.identity.origin)
    with httpx2.Client(auth=auth, timeout=300) as client:
        response = client.post(f"{url}/graphql", json=body)
    answer = response.json()
    if response.status_code != 200 or answer.get("errors"):
        raise RuntimeError(f"submitEvents failed: {response.status_code} {answer}")
    stored = answer["data"]["submitEvents"]
    assert len(stored) == len(items) and stored[-1]["leafIndex"] is not None


class serving:
    """``cmo-ledger serve`` (one worker) on ``world``'s ledger, in its own process."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        settings = self.world.ledger.settings
        create_keystore(
            settings.notary_keystore,
            "notary",
            PASSPHRASE,
            signing_key=self.world.notary.key,
            opslimit=1,
            memlimit=8192,
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("CMO_LEDGER_")}
        env.update(
            CMO_LEDGER_DATABASE_URL=settings.database_url,
            CMO_LEDGER_DATA_DIR=str(settings.data_dir),
            CMO_LEDGER_PASSPHRASE=PASSPHRASE,
        )
        port = free_port()
        command = [sys.executable, "-c", "from clients.cli import main; main()", "serve"]
        self.log = (settings.data_dir / "serve.log").open("w")
        self.process = subprocess.Popen(
            [*command, "--port", str(port)], env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, self.process)
        return url

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(60)
        self.log.close()


def signed_events(world: World) -> Iterator[Item]:
    """The events of :func:`bench.support.batch_chains`, one after another."""
    for chain in batch_chains(world, world.agreement):  # type: ignore[attr-defined]
        yield from chain


if __name__ == "__main__":
    main()
