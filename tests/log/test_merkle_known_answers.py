"""Known answers: the RFC 6962 golden tree of transparency-dev/merkle (testonly, proof)."""

from __future__ import annotations

import hashlib

import pytest

from ledger.log.merkle import (
    EMPTY_ROOT,
    MissingNodeError,
    complete_nodes_after_append,
    consistency_proof,
    consistency_proof_coords,
    consistency_proof_of,
    inclusion_proof,
    inclusion_proof_coords,
    inclusion_proof_of,
    leaf_hash,
    node_hash,
    nodes_needed_for_append,
    range_hash,
    root_coords,
    root_from_nodes,
    root_of,
    subtree_ranges,
    verify_consistency,
    verify_inclusion,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


LEAF_INPUTS = [
    h(x)
    for x in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
LEAF_HASHES = [leaf_hash(x) for x in LEAF_INPUTS]

# ROOTS[n] is the root of the tree of the first n leaf inputs.
ROOTS = [
    h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# NODE_HASHES[level][index]: every complete subtree of the 8-leaf tree.
NODE_HASHES = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]
ALL_NODES = {
    (level, index): value
    for level, row in enumerate(NODE_HASHES)
    for index, value in enumerate(row)
}

# (leaf index, tree size, proof); transparency-dev numbers leaves from 1, these from 0.
INCLUSION_VECTORS = [
    (0, 1, []),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

# (old size, new size, proof)
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


def nodes_of_size(size: int) -> dict[tuple[int, int], bytes]:
    """The stored nodes of the golden tree cut at ``size`` leaves."""
    return {(lv, i): v for (lv, i), v in ALL_NODES.items() if (i + 1) << lv <= size}


# ------------------------------------------------------------------------- hashing


def test_leaf_hash_is_sha256_of_zero_byte_then_data() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()


def test_node_hash_is_sha256_of_one_byte_then_both_children() -> None:
    left, right = b"L" * 32, b"R" * 32
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()


def test_empty_tree_root_is_sha256_of_the_empty_string() -> None:
    assert EMPTY_ROOT == ROOTS[0] == hashlib.sha256(b"").digest()
    assert root_of([]) == EMPTY_ROOT
    assert root_from_nodes(0, {}) == EMPTY_ROOT


def test_golden_roots_start_with_the_published_prefixes() -> None:
    prefixes = ["6e340b9c", "fac54203", "aeb6bcfe", "d37ee418"]
    prefixes += ["4e3bbb1f", "76e67dad", "ddb89be4", "5dc9da79"]
    assert [root.hex()[:8] for root in ROOTS[1:]] == prefixes


@pytest.mark.parametrize("size", range(9))
def test_reference_root_matches_golden_root(size: int) -> None:
    assert root_of(LEAF_HASHES[:size]) == ROOTS[size]


@pytest.mark.parametrize("size", range(9))
def test_stored_node_root_matches_golden_root(size: int) -> None:
    assert root_from_nodes(size, nodes_of_size(size)) == ROOTS[size]


# --------------------------------------------------------------------- stored nodes


def test_appending_golden_leaves_one_by_one_stores_exactly_the_golden_nodes() -> None:
    stored: dict[tuple[int, int], bytes] = {}
    for size, leaf in enumerate(LEAF_HASHES):
        needed = {c: stored[c] for c in nodes_needed_for_append(size, 1)}
        for level, index, value in complete_nodes_after_append(size, [leaf], needed):
            assert (level, index) not in stored
            stored[(level, index)] = value
    assert stored == ALL_NODES


def test_appending_golden_leaves_in_one_batch_stores_exactly_the_golden_nodes() -> None:
    assert nodes_needed_for_append(0, 8) == []
    new = complete_nodes_after_append(0, LEAF_HASHES, {})
    assert {(lv, i): v for lv, i, v in new} == ALL_NODES
    assert len(new) == len(ALL_NODES)


def test_appending_three_leaves_to_five_reads_only_the_left_siblings() -> None:
    assert nodes_needed_for_append(5, 3) == [(0, 4), (2, 0)]
    needed = {c: ALL_NODES[c] for c in nodes_needed_for_append(5, 3)}
    new = complete_nodes_after_append(5, LEAF_HASHES[5:], needed)
    assert [(lv, i) for lv, i, _ in new] == [(0, 5), (0, 6), (0, 7), (1, 2), (1, 3), (2, 1), (3, 0)]
    assert all(ALL_NODES[(lv, i)] == v for lv, i, v in new)


def test_root_coords_match_golden_compact_trees() -> None:
    assert [root_coords(n) for n in range(9)] == [
        [],
        [(0, 0)],
        [(1, 0)],
        [(1, 0), (0, 2)],
        [(2, 0)],
        [(2, 0), (0, 4)],
        [(2, 0), (1, 2)],
        [(2, 0), (1, 2), (0, 6)],
        [(3, 0)],
    ]


def test_subtree_ranges_cover_an_unaligned_range_with_the_largest_aligned_nodes() -> None:
    assert subtree_ranges(3, 13) == [(0, 3), (2, 1), (2, 2), (0, 12)]
    assert subtree_ranges(5, 5) == []


def test_subtree_ranges_refuse_a_reversed_range() -> None:
    with pytest.raises(ValueError, match="bad leaf range"):
        subtree_ranges(4, 3)


def test_range_hash_refuses_a_range_that_is_not_an_rfc_subtree() -> None:
    with pytest.raises(ValueError, match="not an RFC 9162 subtree"):
        range_hash(1, 4, ALL_NODES)
    assert range_hash(4, 7, ALL_NODES) == root_of(LEAF_HASHES[4:7])


def test_missing_stored_node_raises_missing_node_error_naming_it() -> None:
    with pytest.raises(MissingNodeError, match="level=2 index=0"):
        inclusion_proof(5, 8, {(0, 4): ALL_NODES[(0, 4)], (1, 3): ALL_NODES[(1, 3)]})


def test_inclusion_proof_of_leaf_5_in_size_8_reads_one_node_per_hash() -> None:
    assert inclusion_proof_coords(5, 8) == [[(0, 4)], [(1, 3)], [(2, 0)]]


def test_inclusion_proof_hash_of_an_incomplete_subtree_folds_several_nodes() -> None:
    assert inclusion_proof_coords(0, 7) == [[(0, 1)], [(1, 1)], [(1, 2), (0, 6)]]
    assert inclusion_proof(0, 7, nodes_of_size(7))[2] == root_of(LEAF_HASHES[4:7])


def test_consistency_proof_from_6_to_8_reads_one_node_per_hash() -> None:
    assert consistency_proof_coords(6, 8) == [[(1, 2)], [(1, 3)], [(2, 0)]]


# ---------------------------------------------------------------------------- proofs


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_inclusion_proof_matches_golden_vector(index: int, size: int, proof: list[bytes]) -> None:
    assert inclusion_proof_of(LEAF_HASHES[:size], index) == proof
    assert inclusion_proof(index, size, nodes_of_size(size)) == proof
    assert verify_inclusion(LEAF_HASHES[index], index, size, proof, ROOTS[size])


@pytest.mark.parametrize(("m", "n", "proof"), CONSISTENCY_VECTORS)
def test_consistency_proof_matches_golden_vector(m: int, n: int, proof: list[bytes]) -> None:
    assert consistency_proof_of(LEAF_HASHES[:n], m) == proof
    assert consistency_proof(m, n, nodes_of_size(n)) == proof
    assert verify_consistency(m, n, proof, ROOTS[m], ROOTS[n])


def corrupted_inclusion_probes(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> dict[str, tuple[bytes, int, int, list[bytes], bytes]]:
    probes = {
        "index - 1": (leaf, index - 1, size, proof, root),
        "index + 1": (leaf, index + 1, size, proof, root),
        "index ^ 2": (leaf, index ^ 2, size, proof, root),
        "size * 2": (leaf, index, size * 2, proof, root),
        "size / 2": (leaf, index, size // 2, proof, root),
        "wrong leaf": (b"WrongLeaf", index, size, proof, root),
        "empty root": (leaf, index, size, proof, EMPTY_ROOT),
        "random root": (leaf, index, size, proof, SOME_HASH),
        "trailing garbage": (leaf, index, size, [*proof, b""], root),
        "trailing root": (leaf, index, size, [*proof, root], root),
        "preceding garbage": (leaf, index, size, [b"", *proof], root),
        "preceding root": (leaf, index, size, [root, *proof], root),
    }
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        probes[f"flipped bit in proof[{i}]"] = (leaf, index, size, flipped, root)
    if proof:
        probes["removed component"] = (leaf, index, size, proof[:-1], root)
    if len(proof) > 1:
        probes["inserted component"] = (leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root)
    return probes


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS[1:])
def test_corrupted_golden_inclusion_proofs_fail(index: int, size: int, proof: list[bytes]) -> None:
    probes = corrupted_inclusion_probes(index, size, proof, ROOTS[size], LEAF_HASHES[index])
    accepted = [name for name, args in probes.items() if verify_inclusion(*args)]
    assert accepted == []


def corrupted_consistency_probes(
    m: int, n: int, proof: list[bytes], root_m: bytes, root_n: bytes
) -> dict[str, tuple[int, int, list[bytes], bytes, bytes]]:
    probes = {
        "m - 1": (m - 1, n, proof, root_m, root_n),
        "m + 1": (m + 1, n, proof, root_m, root_n),
        "m ^ 2": (m ^ 2, n, proof, root_m, root_n),
        "n * 2": (m, n * 2, proof, root_m, root_n),
        "n / 2": (m, n // 2, proof, root_m, root_n),
        "wrong old root": (m, n, proof, b"WrongRoot", root_n),
        "wrong new root": (m, n, proof, root_m, b"WrongRoot"),
        "swapped roots": (m, n, proof, root_n, root_m),
        "empty proof": (m, n, [], root_m, root_n),
        "trailing garbage": (m, n, [*proof, b""], root_m, root_n),
        "trailing old root": (m, n, [*proof, root_m], root_m, root_n),
        "trailing new root": (m, n, [*proof, root_n], root_m, root_n),
        "preceding garbage": (m, n, [b"", *proof], root_m, root_n),
        "preceding old root": (m, n, [root_m, *proof], root_m, root_n),
        "preceding new root": (m, n, [root_n, *proof], root_m, root_n),
        "preceding proof[0]": (m, n, [proof[0], *proof], root_m, root_n),
        "truncated proof": (m, n, proof[:-1], root_m, root_n),
    }
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        probes[f"flipped bit in proof[{i}]"] = (m, n, flipped, root_m, root_n)
    return probes


@pytest.mark.parametrize(("m", "n", "proof"), CONSISTENCY_VECTORS[1:])
def test_corrupted_golden_consistency_proofs_fail(m: int, n: int, proof: list[bytes]) -> None:
    probes = corrupted_consistency_probes(m, n, proof, ROOTS[m], ROOTS[n])
    accepted = [name for name, args in probes.items() if verify_consistency(*args)]
    assert accepted == []


# ------------------------------------------------------------------------ edge cases


def test_single_leaf_tree_root_is_the_leaf_hash_with_an_empty_proof() -> None:
    leaf = leaf_hash(b"data")
    assert root_of([leaf]) == leaf
    assert verify_inclusion(leaf, 0, 1, [], leaf)
    assert not verify_inclusion(leaf, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], leaf)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (1, 1), (2, 1), (8, 8), (-1, 8)])
def test_inclusion_outside_the_tree_fails(index: int, size: int) -> None:
    assert not verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)
    assert not verify_inclusion(SOME_HASH, index, size, [], SOME_HASH)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (8, 8), (-1, 8)])
def test_inclusion_proof_outside_the_tree_is_refused(index: int, size: int) -> None:
    with pytest.raises(ValueError, match="outside a tree"):
        inclusion_proof_coords(index, size)
    with pytest.raises(ValueError, match="outside a tree"):
        inclusion_proof_of(LEAF_HASHES[:size], index)


def test_consistency_from_size_zero_is_refused() -> None:
    assert not verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    assert not verify_consistency(0, 8, [], EMPTY_ROOT, ROOTS[8])
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_proof_coords(0, 8)
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_proof_of(LEAF_HASHES, 0)


def test_consistency_between_equal_sizes_needs_an_empty_proof_and_equal_roots() -> None:
    assert consistency_proof_coords(8, 8) == []
    assert verify_consistency(8, 8, [], ROOTS[8], ROOTS[8])
    assert not verify_consistency(8, 8, [], ROOTS[8], ROOTS[7])
    assert not verify_consistency(8, 8, [EMPTY_ROOT], ROOTS[8], ROOTS[8])


def test_consistency_towards_a_smaller_tree_fails() -> None:
    assert not verify_consistency(8, 6, CONSISTENCY_VECTORS[2][2], ROOTS[8], ROOTS[6])
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_proof_coords(8, 6)


def test_consistency_from_a_power_of_two_omits_the_old_root() -> None:
    proof = consistency_proof(4, 8, ALL_NODES)
    assert proof == [NODE_HASHES[2][1]]
    assert verify_consistency(4, 8, proof, ROOTS[4], ROOTS[8])
