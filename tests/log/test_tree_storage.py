"""The stored Merkle tree: equal to the RFC reference over a real ledger, built exactly once,
and never half-built."""

from __future__ import annotations

import hashlib
import threading

import pytest
import sqlalchemy as sa
from nacl.signing import SigningKey

from ledger.application import Ledger
from ledger.errors import NotFound
from ledger.log.merkle import consistency_proof_of, inclusion_proof_of, leaf_hash, root_of
from ledger.log.tree import LEAVES, NODES, MerkleTree
from tests.support.world import World


def add_keys(world: World, *parties: str) -> None:
    """Each party adds a second key: one KeyAdded event per party."""
    for party in parties:
        key = SigningKey(hashlib.sha256(f"{party} second key".encode()).digest())
        world.add_key(party, key)


def reference_leaves(ledger: Ledger) -> list[bytes]:
    return [leaf_hash(recorded.event.leaf_bytes()) for recorded in ledger.iter_log()]


def row_counts(ledger: Ledger) -> tuple[int, int]:
    with ledger.engine.connect() as conn:
        leaves = conn.execute(sa.select(sa.func.count()).select_from(LEAVES)).scalar_one()
        nodes = conn.execute(sa.select(sa.func.count()).select_from(NODES)).scalar_one()
    return leaves, nodes


def test_stored_roots_and_proofs_equal_the_reference(world: World) -> None:
    add_keys(world, "contoso-cmo", "northwind-bio", "helios-tx", "fabrikam-cmo", "qa-auditor-llc")
    tree = MerkleTree(world.ledger)
    tree.page_size = 3  # several pages, each extending the tree where the last one stopped
    tree.catch_up()
    leaves = reference_leaves(world.ledger)
    assert tree.size() == len(leaves) == 11
    for size in range(1, len(leaves) + 1):
        assert tree.root(size) == root_of(leaves[:size])
        for index in range(size):
            assert tree.inclusion_proof(index, size) == inclusion_proof_of(leaves[:size], index)
        for old in range(1, size + 1):
            assert tree.consistency_proof(old, size) == consistency_proof_of(leaves[:size], old)


def test_the_tree_grows_with_the_log_one_event_at_a_time(world: World) -> None:
    tree = MerkleTree(world.ledger)
    tree.catch_up()
    for party in ("contoso-cmo", "helios-tx", "agency-inspectorate"):
        add_keys(world, party)
        tree.catch_up()
        leaves = reference_leaves(world.ledger)
        assert tree.size() == len(leaves)
        assert tree.root() == root_of(leaves)
    assert row_counts(world.ledger) == (9, 9 + 4 + 2 + 1)  # complete nodes, level by level


def test_each_leaf_maps_to_its_event_position(world: World) -> None:
    tree = MerkleTree(world.ledger)
    tree.catch_up()
    for index, recorded in enumerate(world.ledger.iter_log()):
        assert tree.leaf_position(index) == recorded.position
        assert tree.leaf_index(recorded.position) == index
        assert tree.leaf(index)[1] == leaf_hash(recorded.event.leaf_bytes())


def test_leaf_indexes_stay_dense_where_positions_have_gaps(world: World) -> None:
    if not world.ledger.settings.is_postgres:
        pytest.skip("SQLite positions have no gaps")
    with world.ledger.engine.begin() as conn:
        # What a rolled-back conflicting insert leaves behind: burnt sequence values.
        conn.execute(
            sa.text(
                "SELECT setval(pg_get_serial_sequence('ledger_events', 'id'), max(id) + 5)"
                " FROM ledger_events"
            )
        )
    add_keys(world, "contoso-cmo")
    tree = MerkleTree(world.ledger)
    tree.catch_up()
    positions = [recorded.position for recorded in world.ledger.iter_log()]
    assert positions[-1] - positions[-2] > 1
    assert [tree.leaf_position(index) for index in range(7)] == positions
    assert tree.root() == root_of(reference_leaves(world.ledger))


def test_a_page_that_fails_midway_leaves_nothing_behind(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = MerkleTree(world.ledger)
    tree.page_size = 4
    tree.catch_up(until=world.ledger.read(0, 4)[-1].position)
    before, position = row_counts(world.ledger), tree.position()

    def crash(*args: object) -> None:
        raise RuntimeError("power cut between the leaves and the nodes")

    # The leaves of the page are written; the crash comes before its nodes.
    monkeypatch.setattr("ledger.log.tree._write_nodes", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        tree.catch_up()
    assert row_counts(world.ledger) == before
    assert tree.position() == position
    assert tree.size() == 4

    monkeypatch.undo()
    tree.catch_up()
    assert tree.root() == root_of(reference_leaves(world.ledger))


def test_sizes_and_leaves_beyond_the_tree_are_refused(world: World) -> None:
    tree = MerkleTree(world.ledger)
    tree.catch_up()
    with pytest.raises(NotFound):
        tree.root(7)
    with pytest.raises(NotFound):
        tree.inclusion_proof(6, 6)
    with pytest.raises(NotFound):
        tree.leaf_position(6)
    assert tree.consistency_proof(0, 6) == []
    assert tree.consistency_proof(6, 6) == []


def test_processes_sharing_a_database_build_the_tree_once(world: World) -> None:
    add_keys(world, "contoso-cmo", "northwind-bio", "helios-tx")
    others = [Ledger.open(world.ledger.settings) for _ in range(3)]
    try:
        trees = [MerkleTree(ledger) for ledger in others]
        for tree in trees:
            tree.page_size = 2
        errors: list[BaseException] = []

        def build(tree: MerkleTree) -> None:
            try:
                tree.catch_up()
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=build, args=(tree,)) for tree in trees]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert row_counts(world.ledger)[0] == 9
        assert trees[0].root() == root_of(reference_leaves(world.ledger))
    finally:
        for ledger in others:
            ledger.close()
