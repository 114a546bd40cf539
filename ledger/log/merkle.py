"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and proof verification.

Two ways to compute the same values:

* reference functions over a list of leaf hashes (``root_of``, ``inclusion_proof_of``,
  ``consistency_proof_of``), written straight from the RFC's recursive definitions;
* stored-node functions for a tree kept as *complete* subtrees. Node ``(level, index)``
  is the hash of the complete subtree over leaves ``[index * 2**level, (index + 1) *
  2**level)``; level 0 holds the leaf hashes. Every RFC subtree hash is a right fold of
  at most ``log2(n)`` such nodes, so a root or a proof needs O(log n) node reads, which
  the caller fetches in one batch from the coordinates these functions name.

Verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2 and never raises: a malformed
proof, hash or size simply fails.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Coord",
    "MissingNodeError",
    "NodeMap",
    "complete_nodes_after_append",
    "consistency_proof",
    "consistency_proof_coords",
    "consistency_proof_of",
    "inclusion_proof",
    "inclusion_proof_coords",
    "inclusion_proof_of",
    "leaf_hash",
    "node_hash",
    "nodes_needed_for_append",
    "range_hash",
    "right_edge_after_append",
    "root_coords",
    "root_from_nodes",
    "root_of",
    "subtree_ranges",
    "unique_coords",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Coord = tuple[int, int]
"""A stored node's ``(level, index)``."""

NodeMap = Mapping[Coord, bytes]
"""Stored node hashes keyed by ``(level, index)``."""

_LeafRange = tuple[int, int]


class MissingNodeError(KeyError):
    """A node the computation needs is absent from the supplied node mapping."""


# --------------------------------------------------------------------------- hashing


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the hash of one leaf."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


# --------------------------------------------------------------- reference functions


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 section 2.1.1 over the given leaf hashes."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return node_hash(root_of(leaf_hashes[:k]), root_of(leaf_hashes[k:]))


def inclusion_proof_of(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) of RFC 9162 section 2.1.3.1."""
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} is outside a tree of size {n}")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return [*inclusion_proof_of(leaf_hashes[:k], index), root_of(leaf_hashes[k:])]
    return [*inclusion_proof_of(leaf_hashes[k:], index - k), root_of(leaf_hashes[:k])]


def consistency_proof_of(leaf_hashes: Sequence[bytes], m: int) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 section 2.1.4.1, for ``0 < m <= n``."""
    n = len(leaf_hashes)
    if not 0 < m <= n:
        raise ValueError(f"no consistency proof from size {m} to size {n}")
    return _subproof_of(m, leaf_hashes, complete=True)


def _subproof_of(m: int, leaf_hashes: Sequence[bytes], *, complete: bool) -> list[bytes]:
    """SUBPROOF(m, D, b) of RFC 9162 section 2.1.4.1."""
    n = len(leaf_hashes)
    if m == n:
        return [] if complete else [root_of(leaf_hashes)]
    k = _split(n)
    if m <= k:
        left = _subproof_of(m, leaf_hashes[:k], complete=complete)
        return [*left, root_of(leaf_hashes[k:])]
    right = _subproof_of(m - k, leaf_hashes[k:], complete=False)
    return [*right, root_of(leaf_hashes[:k])]


# ------------------------------------------------------------- stored-node geometry


def subtree_ranges(start: int, end: int) -> list[Coord]:
    """The complete nodes, left to right, that exactly cover leaves ``[start, end)``.

    Each step takes the largest node that is aligned at ``start`` and fits before ``end``.
    """
    if not 0 <= start <= end:
        raise ValueError(f"bad leaf range [{start}, {end})")
    coords: list[Coord] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        coords.append((level, start >> level))
        start += 1 << level
    return coords


def root_coords(size: int) -> list[Coord]:
    """The nodes whose right fold is the root of the tree of ``size`` leaves."""
    return subtree_ranges(0, size)


def unique_coords(groups: Iterable[Iterable[Coord]]) -> list[Coord]:
    """Every coordinate of ``groups`` once, in first-seen order, for one batch read."""
    return list(dict.fromkeys(coord for group in groups for coord in group))


def _lookup(known: NodeMap, coord: Coord) -> bytes:
    try:
        return known[coord]
    except KeyError:
        raise MissingNodeError(f"stored node level={coord[0]} index={coord[1]} missing") from None


def _fold(coords: Sequence[Coord], known: NodeMap) -> bytes:
    """Right fold of node hashes: the RFC hash of the subtree the nodes cover."""
    acc = _lookup(known, coords[-1])
    for coord in reversed(coords[:-1]):
        acc = node_hash(_lookup(known, coord), acc)
    return acc


def range_hash(start: int, end: int, known: NodeMap) -> bytes:
    """MTH(D[start:end]) from stored nodes.

    Only defined for the subtrees RFC 9162 hashes: ``start`` must be a multiple of the
    smallest power of two that is at least ``end - start``.
    """
    size = end - start
    if start < 0 or size <= 0 or start % (1 << (size - 1).bit_length()):
        raise ValueError(f"[{start}, {end}) is not an RFC 9162 subtree")
    return _fold(subtree_ranges(start, end), known)


def root_from_nodes(size: int, known: NodeMap) -> bytes:
    """The root hash of the tree of ``size`` leaves, from ``root_coords(size)``."""
    if size < 0:
        raise ValueError(f"negative tree size {size}")
    return EMPTY_ROOT if size == 0 else range_hash(0, size, known)


# ------------------------------------------------------------------------- appending


def nodes_needed_for_append(size_before: int, count: int) -> list[Coord]:
    """The existing nodes ``complete_nodes_after_append`` reads when ``count`` leaves are added.

    They are the left siblings, among the nodes of ``root_coords(size_before)``, of the
    new nodes whose subtree becomes complete.
    """
    if size_before < 0 or count < 0:
        raise ValueError("sizes must not be negative")
    new_size = size_before + count
    needed: list[Coord] = []
    for level in range(size_before.bit_length()):
        if not (size_before >> level) & 1:
            continue
        parent_end = ((size_before >> (level + 1)) + 1) << (level + 1)
        if parent_end <= new_size:
            needed.append((level, (size_before >> level) - 1))
    return needed


def complete_nodes_after_append(
    size_before: int, new_leaf_hashes: Sequence[bytes], known: NodeMap
) -> list[tuple[int, int, bytes]]:
    """Every node ``(level, index, hash)`` that becomes complete when the leaves are appended.

    Includes the new level-0 leaves. ``known`` must hold ``nodes_needed_for_append``.
    """
    if size_before < 0:
        raise ValueError(f"negative tree size {size_before}")
    for h in new_leaf_hashes:
        if len(h) != HASH_SIZE:
            raise ValueError(f"leaf hash of {len(h)} bytes, expected {HASH_SIZE}")
    new_size = size_before + len(new_leaf_hashes)
    out = [(0, size_before + i, h) for i, h in enumerate(new_leaf_hashes)]
    level, first, current = 0, size_before, list(new_leaf_hashes)
    while (lo := size_before >> (level + 1)) < (hi := new_size >> (level + 1)):
        parents: list[bytes] = []
        for index in range(lo, hi):
            left = 2 * index
            left_hash = current[left - first] if left >= first else _lookup(known, (level, left))
            parents.append(node_hash(left_hash, current[left + 1 - first]))
        level, first, current = level + 1, lo, parents
        out.extend((level, lo + i, h) for i, h in enumerate(parents))
    return out


def right_edge_after_append(
    size_before: int, size_after: int, nodes: Sequence[tuple[int, int, bytes]], edge: NodeMap
) -> dict[Coord, bytes]:
    """The nodes of ``root_coords(size_after)``: ``nodes`` is what
    ``complete_nodes_after_append`` gave for the append, ``edge`` the right edge before it.

    ``nodes`` holds each level's new nodes as one run, in index order, so each node of
    the new edge is found by position instead of by a search.
    """
    run_start: dict[int, int] = {}  # level -> where its run starts, minus its first index
    offset, level = 0, 0
    while (first := size_before >> level) < (end := size_after >> level):
        run_start[level] = offset - first
        offset += end - first
        level += 1
    new_edge: dict[Coord, bytes] = {}
    for level, index in root_coords(size_after):
        start = run_start.get(level)
        if start is not None and index >= size_before >> level:
            new_edge[(level, index)] = nodes[start + index][2]
        else:
            new_edge[(level, index)] = _lookup(edge, (level, index))
    return new_edge


# ---------------------------------------------------------------------------- proofs


def _inclusion_ranges(index: int, size: int) -> list[_LeafRange]:
    """The leaf ranges hashed by PATH(index, D[size]), in proof order."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    lo, hi = 0, size
    ranges: list[_LeafRange] = []
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
    ranges.reverse()
    return ranges


def _consistency_ranges(m: int, n: int) -> list[_LeafRange]:
    """The leaf ranges hashed by PROOF(m, D[n]), in proof order."""
    if not 0 < m <= n:
        raise ValueError(f"no consistency proof from size {m} to size {n}")
    lo, hi, complete = 0, n, True
    siblings: list[_LeafRange] = []
    while m != hi:
        mid = lo + _split(hi - lo)
        if m <= mid:
            siblings.append((mid, hi))
            hi = mid
        else:
            siblings.append((lo, mid))
            lo, complete = mid, False
    siblings.reverse()
    return siblings if complete else [(lo, hi), *siblings]


def inclusion_proof_coords(index: int, size: int) -> list[list[Coord]]:
    """For each hash of the inclusion proof, the stored nodes it folds."""
    return [subtree_ranges(a, b) for a, b in _inclusion_ranges(index, size)]


def consistency_proof_coords(m: int, n: int) -> list[list[Coord]]:
    """For each hash of the consistency proof from ``m`` to ``n``, the stored nodes it folds."""
    return [subtree_ranges(a, b) for a, b in _consistency_ranges(m, n)]


def inclusion_proof(index: int, size: int, known: NodeMap) -> list[bytes]:
    """PATH(index, D[size]) from stored nodes (``inclusion_proof_coords`` must be known)."""
    return [_fold(group, known) for group in inclusion_proof_coords(index, size)]


def consistency_proof(m: int, n: int, known: NodeMap) -> list[bytes]:
    """PROOF(m, D[n]) from stored nodes (``consistency_proof_coords`` must be known)."""
    return [_fold(group, known) for group in consistency_proof_coords(m, n)]


# ---------------------------------------------------------------------- verification


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _proof_hashes(proof: object) -> list[bytes] | None:
    """The proof as a list of 32-byte hashes, or ``None`` when it is malformed."""
    if not isinstance(proof, Sequence) or isinstance(proof, (str, bytes, bytearray)):
        return None
    hashes = list(proof)
    return hashes if all(_is_hash(h) for h in hashes) else None


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows the leaf at ``index`` in the tree of ``size`` with ``root``.

    RFC 9162 section 2.1.3.2.
    """
    path = _proof_hashes(proof)
    if path is None or not (_is_hash(leaf_hash) and _is_hash(root)):
        return False
    if not (_is_size(index) and _is_size(size)) or index >= size:
        return False
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    m: int, n: int, proof: Sequence[bytes], root_m: bytes, root_n: bytes
) -> bool:
    """Whether ``proof`` shows the tree of size ``m`` is a prefix of the tree of size ``n``.

    RFC 9162 section 2.1.4.2; ``m == n`` needs an empty proof and equal roots, and ``m == 0``
    has no proof in the RFC, so it fails.
    """
    path = _proof_hashes(proof)
    if path is None or not (_is_hash(root_m) and _is_hash(root_n)):
        return False
    if not (_is_size(m) and _is_size(n)) or not 0 < m <= n:
        return False
    if m == n:
        return not path and root_m == root_n
    if not path:
        return False
    if m & (m - 1) == 0:
        path.insert(0, root_m)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == root_m and sr == root_n
