"""Advisory locks are per ledger: two ledgers in two schemas of one PostgreSQL database
never wait on each other, while two processes of one ledger still exclude each other."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ledger.log.follow import apply_page, begin_page
from ledger.log.locks import lock_key
from ledger.log.tree import MerkleTree
from tests.conftest import fresh_world
from tests.support.world import World

pytestmark = pytest.mark.postgres


def _holding_the_tree_lock(world: World, held: threading.Event, done: threading.Event) -> None:
    """Hold ``world``'s tree page open (its advisory lock taken) until ``done``."""
    tree = MerkleTree(world.ledger)
    with world.ledger.storage.transaction(commit=False) as session:
        begin_page(session, world.ledger)
        apply_page(session, [tree], 1, 0)
        held.set()
        done.wait(30)


def _catch_up_within(world: World, seconds: float) -> bool:
    finished = threading.Event()

    def run() -> None:
        MerkleTree(world.ledger).catch_up()
        finished.set()

    threading.Thread(target=run, daemon=True).start()
    return finished.wait(seconds)


def test_a_ledger_in_another_schema_does_not_wait_on_this_one_s_locks(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with (
        fresh_world("postgres", request, tmp_path / "a") as first,
        fresh_world("postgres", request, tmp_path / "b") as second,
    ):
        assert lock_key(first.ledger.engine, "checkpoints") != lock_key(
            second.ledger.engine, "checkpoints"
        )
        held, done = threading.Event(), threading.Event()
        holder = threading.Thread(target=_holding_the_tree_lock, args=(first, held, done))
        holder.start()
        try:
            assert held.wait(30)
            assert _catch_up_within(second, 20), "the other schema's ledger went on"
            assert not _catch_up_within(first, 1), "the same ledger waits for the lock"
        finally:
            done.set()
            holder.join(30)
