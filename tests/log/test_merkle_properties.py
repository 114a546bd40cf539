"""Properties of the stored-node Merkle functions on random trees of up to 2,048 leaves."""

from __future__ import annotations

import hashlib
from functools import cache

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ledger.log.merkle import (
    complete_nodes_after_append,
    consistency_proof,
    consistency_proof_coords,
    consistency_proof_of,
    inclusion_proof,
    inclusion_proof_coords,
    inclusion_proof_of,
    leaf_hash,
    nodes_needed_for_append,
    right_edge_after_append,
    root_coords,
    root_from_nodes,
    root_of,
    subtree_ranges,
    unique_coords,
    verify_consistency,
    verify_inclusion,
)

MAX_LEAVES = 2048
LEAVES = [leaf_hash(b"entry %d" % i) for i in range(MAX_LEAVES)]
# The nodes of a tree of n leaves are exactly the nodes of this tree that end by leaf n.
NODES = {(lv, i): v for lv, i, v in complete_nodes_after_append(0, LEAVES, {})}

sizes = st.integers(min_value=1, max_value=2000)
FAST = settings(max_examples=150, deadline=None)

Coord = tuple[int, int]


@cache
def root(size: int) -> bytes:
    return root_of(LEAVES[:size])


def fetch(coords: list[Coord], size: int) -> dict[Coord, bytes]:
    """One batch read, checking it asks only for nodes that exist at ``size``."""
    assert all((index + 1) << level <= size for level, index in coords)
    return {c: NODES[c] for c in coords}


def flip(value: bytes, bit: int) -> bytes:
    bit %= len(value) * 8
    flipped = bytearray(value)
    flipped[bit // 8] ^= 1 << (bit % 8)
    return bytes(flipped)


@st.composite
def size_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(sizes)
    return size, draw(st.integers(min_value=0, max_value=size - 1))


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    n = draw(sizes)
    return draw(st.integers(min_value=1, max_value=n)), n


def inclusion_case(size: int, index: int) -> list[bytes]:
    coords = unique_coords(inclusion_proof_coords(index, size))
    return inclusion_proof(index, size, fetch(coords, size))


def consistency_case(m: int, n: int) -> list[bytes]:
    coords = unique_coords(consistency_proof_coords(m, n))
    return consistency_proof(m, n, fetch(coords, n))


# ------------------------------------------------------------------ stored-node model


@FAST
@given(batches=st.lists(st.integers(min_value=0, max_value=170), min_size=1, max_size=12))
def test_appending_in_any_batches_stores_each_complete_subtree_once(batches: list[int]) -> None:
    stored: dict[Coord, bytes] = {}
    size = 0
    for count in batches:
        new_leaves = LEAVES[size : size + count]
        needed = nodes_needed_for_append(size, count)
        assert len(needed) <= size.bit_length()
        for level, index, value in complete_nodes_after_append(
            size, new_leaves, fetch(needed, size)
        ):
            assert (level, index) not in stored
            stored[(level, index)] = value
        nodes = complete_nodes_after_append(size, new_leaves, fetch(needed, size))
        edge = right_edge_after_append(
            size, size + count, nodes, {c: stored[c] for c in root_coords(size)}
        )
        size += count
        assert edge == {c: stored[c] for c in root_coords(size)}
        assert root_from_nodes(size, stored) == root(size)
    assert stored == {c: v for c, v in NODES.items() if (c[1] + 1) << c[0] <= size}


@FAST
@given(start=st.integers(min_value=0, max_value=5000), length=st.integers(0, 5000))
def test_subtree_ranges_tile_the_range_with_aligned_nodes(start: int, length: int) -> None:
    coords = subtree_ranges(start, start + length)
    position = start
    for level, index in coords:
        assert index << level == position
        position += 1 << level
    assert position == start + length
    assert len(coords) <= 2 * max(1, (start + length).bit_length())


@FAST
@given(size=sizes)
def test_root_needs_at_most_log2_size_nodes(size: int) -> None:
    coords = root_coords(size)
    assert len(coords) == size.bit_count()
    assert root_from_nodes(size, fetch(coords, size)) == root(size)


# ---------------------------------------------------------------- stored = reference


@FAST
@given(case=size_and_index())
def test_stored_node_inclusion_proofs_equal_reference_proofs(case: tuple[int, int]) -> None:
    size, index = case
    coords = unique_coords(inclusion_proof_coords(index, size))
    assert len(coords) <= 2 * size.bit_length()
    assert inclusion_case(size, index) == inclusion_proof_of(LEAVES[:size], index)


@FAST
@given(case=two_sizes())
def test_stored_node_consistency_proofs_equal_reference_proofs(case: tuple[int, int]) -> None:
    m, n = case
    coords = unique_coords(consistency_proof_coords(m, n))
    assert len(coords) <= 2 * n.bit_length()
    assert consistency_case(m, n) == consistency_proof_of(LEAVES[:n], m)


# ---------------------------------------------------------------------- verification


@FAST
@given(case=size_and_index())
def test_every_inclusion_proof_verifies(case: tuple[int, int]) -> None:
    size, index = case
    proof = inclusion_case(size, index)
    assert verify_inclusion(LEAVES[index], index, size, proof, root(size))


@FAST
@given(case=two_sizes())
def test_every_consistency_proof_verifies(case: tuple[int, int]) -> None:
    m, n = case
    assert verify_consistency(m, n, consistency_case(m, n), root(m), root(n))


@FAST
@given(case=size_and_index(), position=st.integers(min_value=0), bit=st.integers(min_value=0))
def test_flipped_bit_in_any_inclusion_proof_hash_fails(
    case: tuple[int, int], position: int, bit: int
) -> None:
    size, index = case
    proof = inclusion_case(size, index)
    assume(proof)
    position %= len(proof)
    proof[position] = flip(proof[position], bit)
    assert not verify_inclusion(LEAVES[index], index, size, proof, root(size))


@FAST
@given(case=size_and_index(), bit=st.integers(min_value=0))
def test_flipped_bit_in_the_leaf_or_the_root_fails_inclusion(
    case: tuple[int, int], bit: int
) -> None:
    size, index = case
    proof = inclusion_case(size, index)
    assert not verify_inclusion(flip(LEAVES[index], bit), index, size, proof, root(size))
    assert not verify_inclusion(LEAVES[index], index, size, proof, flip(root(size), bit))


@FAST
@given(case=size_and_index(), other=st.integers(min_value=0, max_value=2000))
def test_inclusion_proof_fails_for_any_other_index(case: tuple[int, int], other: int) -> None:
    size, index = case
    assume(other != index)
    proof = inclusion_case(size, index)
    assert not verify_inclusion(LEAVES[index], other, size, proof, root(size))


@FAST
@given(case=size_and_index(), other=st.integers(min_value=1, max_value=2000))
def test_inclusion_proof_fails_against_any_other_tree_size(
    case: tuple[int, int], other: int
) -> None:
    size, index = case
    assume(other != size and index < other)
    proof = inclusion_case(size, index)
    assert not verify_inclusion(LEAVES[index], index, other, proof, root(other))
    assert not verify_inclusion(LEAVES[index], index, size * 2, proof, root(size))
    assert not verify_inclusion(LEAVES[index], index, size // 2, proof, root(size))


@FAST
@given(case=two_sizes(), position=st.integers(min_value=0), bit=st.integers(min_value=0))
def test_flipped_bit_in_any_consistency_proof_hash_fails(
    case: tuple[int, int], position: int, bit: int
) -> None:
    m, n = case
    proof = consistency_case(m, n)
    assume(proof)
    position %= len(proof)
    proof[position] = flip(proof[position], bit)
    assert not verify_consistency(m, n, proof, root(m), root(n))


@FAST
@given(case=two_sizes(), bit=st.integers(min_value=0))
def test_flipped_bit_in_either_root_fails_consistency(case: tuple[int, int], bit: int) -> None:
    m, n = case
    proof = consistency_case(m, n)
    assert not verify_consistency(m, n, proof, flip(root(m), bit), root(n))
    assert not verify_consistency(m, n, proof, root(m), flip(root(n), bit))


@FAST
@given(case=two_sizes(), other=st.integers(min_value=0, max_value=2000))
def test_consistency_proof_fails_for_any_other_old_size(case: tuple[int, int], other: int) -> None:
    m, n = case
    assume(other != m and other <= n)
    proof = consistency_case(m, n)
    assert not verify_consistency(other, n, proof, root(other), root(n))


@FAST
@given(case=two_sizes(), other=st.integers(min_value=0, max_value=2000))
def test_consistency_proof_fails_for_any_other_new_size(case: tuple[int, int], other: int) -> None:
    m, n = case
    assume(other != n and m <= other)
    proof = consistency_case(m, n)
    assert not verify_consistency(m, other, proof, root(m), root(other))


def test_every_proof_in_every_tree_up_to_64_leaves_matches_the_reference_and_verifies() -> None:
    for n in range(1, 65):
        for i in range(n):
            proof = inclusion_case(n, i)
            assert proof == inclusion_proof_of(LEAVES[:n], i)
            assert verify_inclusion(LEAVES[i], i, n, proof, root(n))
        for m in range(1, n + 1):
            proof = consistency_case(m, n)
            assert proof == consistency_proof_of(LEAVES[:n], m)
            assert verify_consistency(m, n, proof, root(m), root(n))


malformed = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=40),
    st.binary(max_size=40),
    st.lists(st.one_of(st.binary(max_size=40), st.none(), st.integers()), max_size=5),
)


@settings(max_examples=200, deadline=None)
@given(leaf=malformed, index=malformed, size=malformed, proof=malformed, root_hash=malformed)
def test_malformed_inclusion_arguments_return_false_without_raising(
    leaf: object, index: object, size: object, proof: object, root_hash: object
) -> None:
    assert verify_inclusion(leaf, index, size, proof, root_hash) is False  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(m=malformed, n=malformed, proof=malformed, root_m=malformed, root_n=malformed)
def test_malformed_consistency_arguments_return_false_without_raising(
    m: object, n: object, proof: object, root_m: object, root_n: object
) -> None:
    assert verify_consistency(m, n, proof, root_m, root_n) is False  # type: ignore[arg-type]


# ----------------------------------------------------------------------- performance


class _EveryNode(dict[Coord, bytes]):
    """A stand-in for a huge stored tree: any coordinate has some 32-byte hash."""

    def __missing__(self, coord: Coord) -> bytes:
        value = self[coord] = hashlib.sha256(repr(coord).encode()).digest()
        return value


def test_an_inclusion_proof_at_a_million_leaves_reads_at_most_log2_nodes() -> None:
    size = 1_000_000
    for index in (0, 1, 524_287, 524_288, 999_998, 999_999):
        known = _EveryNode()
        proof = inclusion_proof(index, size, known)
        assert len(proof) <= size.bit_length()
        assert len(unique_coords(inclusion_proof_coords(index, size))) <= 2 * size.bit_length()
        assert len(known) == len(unique_coords(inclusion_proof_coords(index, size)))


def test_a_consistency_proof_at_a_million_leaves_reads_at_most_log2_nodes() -> None:
    size = 1_000_000
    for old in (1, 2, 1023, 524_288, 999_999):
        known = _EveryNode()
        proof = consistency_proof(old, size, known)
        assert len(proof) <= 2 * size.bit_length()
        coords = unique_coords(consistency_proof_coords(old, size))
        assert len(coords) <= 3 * size.bit_length()
        assert len(known) == len(coords)
