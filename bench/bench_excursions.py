"""What evaluating data against the parameter registry costs on the append path.

Two ledgers on SQLite start from the same state: an agreement with WORLD.md's seven
parameters defined. Each round appends the same kind of CMO events to both, as served
(the projector updates the read models before the call returns): per batch one
``BatchRegistered``, nine ``DataSubmitted`` of discrete results naming registered
parameters, and one of a day of ``BR1.TEMP`` (1,440 points, an excursion among them).
On one ledger results are resolved against the registry (the rule) and evaluated
against the limits in force at their time (the data view, discrete and continuous); on
the other, both are switched off. The figure is the ratio of the two rates; the issue's
budget is a cost of at most 15 %.

Run alone with ``python -m bench.bench_excursions``; ``CMO_BENCH_SCALE=full`` runs more.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import ledger.domain.batches as batch_rules
from bench.support import sqlite_world
from ledger.domain.subjects import batch_subject
from ledger.log.envelope import event_hash
from ledger.timeutil import format_utc, now_utc
from projections.data import DataView
from projections.runner import Projector
from tests.support.agreements import MIGRATED, sign_retroactively
from tests.support.batches import (
    CMO,
    WORLD_PARAMETERS,
    continuous_series,
    data_payload,
    define_parameter,
    discrete_records,
)
from tests.support.world import World

__all__ = ["main"]

BATCHES = {"small": 20, "full": 100}
ROUNDS = 3
Item = tuple[dict[str, Any], str]


def main() -> None:
    batches = BATCHES[os.environ.get("CMO_BENCH_SCALE", "small")]
    with tempfile.TemporaryDirectory(prefix="bench-excursions-") as tmp:
        worlds = {name: open_world(Path(tmp) / name) for name in ("evaluated", "off")}
        chains = {name: batch_chains(world) for name, world in worlds.items()}
        projectors = {name: Projector(world.ledger).start() for name, world in worlds.items()}
        times: dict[str, list[float]] = {name: [] for name in worlds}
        events = 0
        try:
            for _ in range(ROUNDS):
                rounds = {name: [next(chains[name]) for _ in range(batches)] for name in worlds}
                events = sum(len(chain) for chain in rounds["off"])
                times["evaluated"].append(append(worlds["evaluated"], rounds["evaluated"]))
                with evaluation_off():
                    times["off"].append(append(worlds["off"], rounds["off"]))
        finally:
            for projector in projectors.values():
                projector.close()
            for world in worlds.values():
                world.ledger.close()
    rates = {name: events / min(values) for name, values in times.items()}
    ratio = rates["evaluated"] / rates["off"]
    print(f"{events} events per round ({batches} batches), best of {ROUNDS}")
    print(f"  append as served, evaluation off    {rates['off']:8.0f} events/s")
    print(
        f"  append as served, evaluated         {rates['evaluated']:8.0f} events/s   "
        f"{ratio:.2f} of off (cost {1 - ratio:.0%}; budget 15%)"
    )


def append(world: World, chains: list[list[Item]]) -> float:
    start = time.perf_counter()
    for chain in chains:
        world.ledger.append_many(chain)
    return time.perf_counter() - start


@contextmanager
def evaluation_off() -> Iterator[None]:
    """The registry lookup of the rule and the data view's evaluation, switched off."""
    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(batch_rules._Registry, "check", _nothing))
        stack.enter_context(mock.patch.object(DataView, "_evaluation", _no_evaluation))
        stack.enter_context(mock.patch.object(DataView, "_chunk_excursions", _nothing))
        yield


def _nothing(*_: Any) -> None:
    return None


def _no_evaluation(*_: Any) -> dict[str, Any]:
    return {}


def open_world(directory: Path) -> World:
    world = sqlite_world(directory)
    # Terms and limits in force before the data (migrated history), so every result and
    # point is evaluated.
    since = format_utc(now_utc() - timedelta(days=10))
    agreement = sign_retroactively(world, since)
    for name in WORLD_PARAMETERS:
        define_parameter(world, agreement, name, effective_from=since, reason=MIGRATED)
    world.agreement = agreement  # type: ignore[attr-defined]
    return world


def batch_chains(world: World) -> Iterator[list[Item]]:
    """Signed chains, one per batch: registration, nine discrete deliveries, one series."""
    cmo = world[CMO]
    started = now_utc() - timedelta(days=2)
    for number in range(10**6):
        batch = f"NWB101-24-{number:05d}"
        subject = batch_subject(batch)
        payload = {
            "agreement": str(world.agreement),  # type: ignore[attr-defined]
            "batch": batch,
            "product": "NWB-101",
            "site": "contoso-site-a",
            "started_at": format_utc(started),
        }
        envelope = cmo.envelope(
            "BatchRegistered", subject, payload, version=1, prev=None, meaning="authored"
        )
        chain = [(envelope, cmo.sign(envelope))]
        day = continuous_series("BR1.TEMP", started, 1440, seed=number, excursion=(600, 42))
        contents = [
            data_payload("discrete", discrete_records(f"R{run}", sampled_at=started))
            for run in range(9)
        ]
        contents.append(data_payload("continuous", [day]))
        for data in contents:
            envelope = cmo.envelope(
                "DataSubmitted",
                subject,
                data,
                version=len(chain) + 1,
                prev=event_hash(*chain[-1]),
                meaning="submitted",
            )
            chain.append((envelope, cmo.sign(envelope)))
        yield chain


if __name__ == "__main__":
    main()
