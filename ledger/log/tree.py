"""The log's Merkle tree, stored node by node and kept up to date as a follower.

Every stored event is one leaf, in position order, with dense leaf indexes 0, 1, 2, ...
(positions may have gaps on PostgreSQL). The leaf is ``StoredEvent.leaf_bytes()``.

Tables:

* ``merkle_leaves(leaf_index PK, position UNIQUE, leaf_hash)``: which event each leaf is;
* ``merkle_nodes(level, idx, hash, PK(level, idx))``: every *complete* subtree, as
  ``ledger.log.merkle`` defines them (level 0 repeats the leaf hashes, so one batched read
  of ``merkle_nodes`` serves any root or proof).

Complete nodes never change once written, so readers need no lock: a root, an
inclusion proof or a consistency proof is one query for O(log n) nodes.

:class:`MerkleTree` is a :class:`~ledger.log.follow.Follower`: each page of events adds its
leaves and the nodes they complete in the page's transaction, together with the
follower's tracking row, under the follower's lock (a PostgreSQL advisory lock, or the
SQLite write lock). A crash in the middle of a page leaves nothing of it behind.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Table,
    select,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from ledger.errors import NotFound, ValidationFailed
from ledger.log.follow import Follower
from ledger.log.merkle import (
    EMPTY_ROOT,
    Coord,
    NodeMap,
    complete_nodes_after_append,
    consistency_proof,
    consistency_proof_coords,
    inclusion_proof,
    inclusion_proof_coords,
    leaf_hash,
    nodes_needed_for_append,
    right_edge_after_append,
    root_coords,
    root_from_nodes,
    unique_coords,
)

if TYPE_CHECKING:
    from ledger.application import Ledger, Recorded

__all__ = [
    "LEAVES",
    "NODES",
    "MerkleTree",
    "TreeStore",
    "append_leaves",
    "append_to_edge",
    "create_tree_tables",
    "read_nodes",
    "tree_size",
]

# INTEGER on SQLite makes leaf_index the rowid; BIGINT elsewhere.
_INDEX = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()
LEAVES = Table(
    "merkle_leaves",
    metadata,
    Column("leaf_index", _INDEX, primary_key=True, autoincrement=False),
    Column("position", BigInteger, nullable=False, unique=True),
    Column("leaf_hash", LargeBinary(32), nullable=False),
)
NODES = Table(
    "merkle_nodes",
    metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
    # Clustered on (level, idx) on SQLite: a proof's nodes are one index walk each.
    sqlite_with_rowid=False,
)


def create_tree_tables(engine: Engine) -> None:
    """Create ``merkle_leaves`` and ``merkle_nodes`` when missing."""
    metadata.create_all(engine, checkfirst=True)


def tree_size(conn: Connection) -> int:
    """The number of leaves stored."""
    last = conn.exec_driver_sql(f"SELECT max(leaf_index) FROM {LEAVES.name}").scalar()
    return 0 if last is None else int(last) + 1


def read_nodes(conn: Connection, coords: Iterable[Coord]) -> dict[Coord, bytes]:
    """The stored hashes of ``coords``, in one query (absent nodes are left out).

    Plain SQL: building the statement with SQLAlchemy's expression language costs more
    than running it.
    """
    by_level: dict[int, list[int]] = defaultdict(list)
    for level, index in coords:
        by_level[level].append(index)
    if not by_level:
        return {}
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    clauses: list[str] = []
    params: list[int] = []
    for level, indexes in sorted(by_level.items()):
        clauses.append(f"(level = {mark} AND idx IN ({', '.join([mark] * len(indexes))}))")
        params.extend((level, *indexes))
    sql = f"SELECT level, idx, hash FROM {NODES.name} WHERE {' OR '.join(clauses)}"
    rows = conn.exec_driver_sql(sql, tuple(params))
    return {(level, index): bytes(value) for level, index, value in rows}


def append_leaves(
    conn: Connection, size: int, positions: Sequence[int], hashes: Sequence[bytes]
) -> int:
    """Store leaves ``size, size + 1, ...`` and the nodes they complete; return the new size.

    The caller owns the transaction: the leaves and their nodes commit together or not at all.
    """
    if len(positions) != len(hashes):
        raise ValueError("one position per leaf hash")
    if not hashes:
        return size
    return append_to_edge(conn, size, positions, hashes)[0]


def append_to_edge(
    conn: Connection,
    size: int,
    positions: Sequence[int],
    hashes: Sequence[bytes],
    edge: NodeMap | None = None,
) -> tuple[int, dict[Coord, bytes]]:
    """:func:`append_leaves`, also given and giving the tree's right edge (the nodes of
    ``root_coords(size)``): with the edge known, the nodes the append needs are not read."""
    if len(positions) != len(hashes):
        raise ValueError("one position per leaf hash")
    needed = nodes_needed_for_append(size, len(hashes))
    if edge is None:
        edge = read_nodes(conn, root_coords(size))
    known = {coord: edge[coord] for coord in needed}
    nodes = complete_nodes_after_append(size, hashes, known)
    if hashes:
        _write_leaves(conn, size, positions, hashes)
        _write_nodes(conn, nodes)
    new_size = size + len(hashes)
    return new_size, right_edge_after_append(size, new_size, nodes, edge)


def _write_leaves(
    conn: Connection, size: int, positions: Sequence[int], hashes: Sequence[bytes]
) -> None:
    rows = [
        (size + offset, position, value)
        for offset, (position, value) in enumerate(zip(positions, hashes, strict=True))
    ]
    conn.exec_driver_sql(_insert_sql(conn, LEAVES), rows)  # type: ignore[arg-type]


def _write_nodes(conn: Connection, nodes: Sequence[tuple[int, int, bytes]]) -> None:
    if nodes:
        conn.exec_driver_sql(_insert_sql(conn, NODES), list(nodes))  # type: ignore[arg-type]


def _insert_sql(conn: Connection, table: Table) -> str:
    # Driver SQL with one tuple a row: SQLAlchemy's per-row parameter processing of an
    # executemany costs more than the insert.
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    columns = ", ".join(column.name for column in table.c)
    return f"INSERT INTO {table.name} ({columns}) VALUES ({', '.join([mark] * len(table.c))})"


class TreeStore:
    """Read access to a stored tree: size, roots, proofs, leaves."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def size(self) -> int:
        """The number of leaves in the stored tree."""
        with self.engine.connect() as conn:
            return tree_size(conn)

    def root(self, size: int | None = None) -> bytes:
        """The root hash of the tree's first ``size`` leaves (default: all of them)."""
        with self.engine.connect() as conn:
            size = self._check_size(conn, size)
            if size == 0:
                return EMPTY_ROOT
            return root_from_nodes(size, read_nodes(conn, root_coords(size)))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[size]) of RFC 9162 (default ``size``: the whole tree)."""
        with self.engine.connect() as conn:
            size = self._check_size(conn, size)
            if not 0 <= index < size:
                raise NotFound(f"leaf {index} is not in a tree of size {size}", field="leaf")
            coords = unique_coords(inclusion_proof_coords(index, size))
            return inclusion_proof(index, size, read_nodes(conn, coords))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[new_size]) of RFC 9162; empty when ``old_size`` is 0 or equal."""
        with self.engine.connect() as conn:
            new_size = self._check_size(conn, new_size)
            if not 0 <= old_size <= new_size:
                raise ValidationFailed(
                    f"no consistency proof from size {old_size} to size {new_size}", field="size"
                )
            if old_size in (0, new_size):
                # RFC 9162 defines no proof from the empty tree; the empty list is what
                # clients.offline.verify_consistency_between expects for it.
                return []
            coords = unique_coords(consistency_proof_coords(old_size, new_size))
            return consistency_proof(old_size, new_size, read_nodes(conn, coords))

    def leaf(self, index: int) -> tuple[int, bytes]:
        """``(position, leaf hash)`` of leaf ``index``."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(LEAVES.c.position, LEAVES.c.leaf_hash).where(LEAVES.c.leaf_index == index)
            ).first()
        if row is None:
            raise NotFound(f"no leaf {index} in the stored tree", field="leaf")
        return int(row[0]), bytes(row[1])

    def leaf_position(self, index: int) -> int:
        """The log position of the event that is leaf ``index``."""
        return self.leaf(index)[0]

    def leaf_index(self, position: int) -> int | None:
        """The leaf index of the event at ``position``; ``None`` when not in the tree yet."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(LEAVES.c.leaf_index).where(LEAVES.c.position == position)
            ).scalar()
        return None if value is None else int(value)

    @staticmethod
    def _check_size(conn: Connection, size: int | None) -> int:
        stored = tree_size(conn)
        if size is None:
            return stored
        if size < 0:
            raise ValidationFailed(f"negative tree size {size}", field="size")
        if size > stored:
            raise NotFound(f"the tree has {stored} leaves, not {size}", field="size")
        return size


class MerkleTree(Follower, TreeStore):
    """The ledger's tree, built from the log page by page (see the module docstring)."""

    name = "merkle"

    def __init__(self, ledger: Ledger, *, create: bool = True) -> None:
        Follower.__init__(self, ledger)
        TreeStore.__init__(self, ledger.engine)
        self._edge: tuple[int, dict[Coord, bytes]] | None = None
        if create:
            self.create_tables()

    def create_own_tables(self) -> None:
        """Create ``merkle_leaves`` and ``merkle_nodes``."""
        create_tree_tables(self.ledger.engine)

    def apply(self, session: Session, events: Sequence[Recorded]) -> None:
        """Add one leaf per event, and every node it completes, in the page's transaction.

        The size and right edge a page leaves are carried to the next page, which reads
        neither when it finds the tree where that page committed it (see
        :meth:`~ledger.log.follow.Follower.page_begun`).
        """
        conn = session.connection()
        positions = [event.position for event in events]
        hashes = [leaf_hash(event.event.leaf_bytes()) for event in events]
        carried = self._edge if self.carried else None
        size, edge = (tree_size(conn), None) if carried is None else carried
        self._edge = append_to_edge(conn, size, positions, hashes, edge)

    def forget_carried(self) -> None:
        """Forget the carried size and edge."""
        self._edge = None
