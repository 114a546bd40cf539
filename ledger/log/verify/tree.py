"""The Merkle tree recomputed from the rows, against the stored tree and the checkpoints."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ledger.domain.key_history import compromised, finding
from ledger.keys import decode_public_key, key_id
from ledger.log.checkpoints import CHECKPOINTS, COSIGNATURES
from ledger.log.merkle import (
    EMPTY_ROOT,
    Coord,
    complete_nodes_after_append,
    right_edge_after_append,
    root_from_nodes,
)
from ledger.log.notes import (
    NoteError,
    cosigner_key_id,
    parse_checkpoint,
    parse_note,
    verify_cosignature,
    verify_note,
)
from ledger.log.tree import LEAVES, NODES
from ledger.log.verify.chain import Key
from ledger.log.verify.findings import Findings
from ledger.log.verify.rows import _FIRST
from ledger.timeutil import format_utc

if TYPE_CHECKING:
    from ledger.application import Ledger


# ------------------------------------------------------------------------ the tree


class TreeCheck:
    """The tree recomputed from the rows, against the stored tree and the checkpoints."""

    def __init__(
        self, conn: Connection, findings: Findings, ledger: Ledger, tables: set[str]
    ) -> None:
        self.conn = conn
        self.found = findings
        self.origin = ledger.identity.origin
        self.notary_key = decode_public_key(ledger.identity.notary_public_key)
        self.has_tree = {LEAVES.name, NODES.name} <= tables
        self.has_checkpoints = {CHECKPOINTS.name, COSIGNATURES.name} <= tables
        self.sql = _TreeSql(conn)
        # The recomputed tree: its size and right edge (the nodes of root_coords(size)).
        self.size = 0
        self.frontier: dict[Coord, bytes] = {}
        # The stored tree, and what comparing it with the rows found so far.
        self.stored_size, self.stored_last = self.sql.stored_extent() if self.has_tree else (0, 0)
        self.last_position = _FIRST
        self.offset = 0
        self.moved = 0
        self.previous: list[tuple[int, int, bytes]] = []  # the stored leaves of the last chunk
        self.first_bad_leaf: int | None = None
        self.bad_nodes: list[Coord] = []
        # Signed checkpoints, consumed in size order as the tree grows.
        self.checkpoints = _checkpoint_rows(conn) if self.has_checkpoints else iter(())
        self.next_checkpoint = next(self.checkpoints, None)
        self.checked_checkpoints = 0
        self.first_bad_checkpoint: int | None = None
        self.later_bad_checkpoints: list[int] = []

    def add(self, chunk: Sequence[tuple[Any, ...]]) -> None:
        """Compare a chunk's leaves (:class:`Checked` tuples) with the stored tree, then grow
        the recomputed tree."""
        positions = [c[0] for c in chunk]
        hashes = [c[2] for c in chunk]
        if self.has_tree:
            self._compare_leaves(positions, hashes, self.size)
        self._grow(hashes)
        self.last_position = positions[-1]

    # ------------------------------------------------------------ stored leaves

    def _compare_leaves(self, positions: list[int], hashes: list[bytes], first_index: int) -> None:
        stored = self.sql.leaves(self.last_position, positions[-1])
        first_stored = first_index + self.offset
        indexes = range(first_stored, first_stored + len(positions))
        expected = list(zip(positions, indexes, hashes, strict=True))
        if stored == expected:
            # Every leaf where the stored tree has it: nothing to report.
            self.moved = 0
            self.previous = stored
            return
        self._compare_leaves_one_by_one(positions, hashes, first_index, stored)

    def _compare_leaves_one_by_one(
        self,
        positions: list[int],
        leaf_hashes: list[bytes],
        first_index: int,
        stored: list[tuple[int, int, bytes]],
    ) -> None:
        stored = [(position, index, bytes(value)) for position, index, value in stored]
        hashes = {value: position for position, _, value in stored}
        previous = {bytes(value): position for position, _, value in self.previous}
        j = 0
        for offset, (position, leaf_hash) in enumerate(zip(positions, leaf_hashes, strict=True)):
            index = first_index + offset
            while j < len(stored) and stored[j][0] < position:
                self._deleted(*stored[j])
                j += 1
            if j < len(stored) and stored[j][0] == position:
                was = hashes.get(leaf_hash, previous.get(leaf_hash))
                self._compare_leaf(position, leaf_hash, index, stored[j][1], stored[j][2], was)
                j += 1
            elif position <= self.stored_last:
                self._trouble(index)
                self.found.error(position, index, "this event is not in the stored tree (inserted)")
                self.offset -= 1
        for row in stored[j:]:
            self._deleted(*row)
        self.previous = stored

    def _deleted(self, position: int, index: int, _: bytes) -> None:
        self._trouble(index)
        self.found.error(
            position, index, "the stored tree has an event here the log lacks (deleted)"
        )
        self.offset += 1

    def _compare_leaf(
        self,
        position: int,
        leaf_hash: bytes,
        index: int,
        stored_index: int,
        stored: bytes,
        was: int | None,
    ) -> None:
        """``was`` is where the stored tree has a leaf of this hash, if anywhere nearby."""
        if stored == leaf_hash:
            self.moved = 0
        else:
            self._trouble(index)
            if was is None:
                self.found.error(
                    position, index, "leaf differs from the stored tree: the event was changed"
                )
            elif position - was != self.moved:
                self.moved = position - was
                self.found.error(
                    position, index, f"this event was at position {was} in the stored tree (moved)"
                )
        if stored_index - index != self.offset:
            self.offset = stored_index - index
            self._trouble(index)
            self.found.error(
                position, index, f"the stored tree has this event at leaf {stored_index}"
            )

    def _trouble(self, index: int) -> None:
        if self.first_bad_leaf is None or index < self.first_bad_leaf:
            self.first_bad_leaf = index

    # --------------------------------------------------------- recomputed tree

    def _grow(self, hashes: list[bytes]) -> None:
        start = 0
        while True:
            self._checkpoints_at_size()
            if start == len(hashes):
                return
            stop = len(hashes)
            if self.next_checkpoint is not None:
                stop = min(stop, start + self.next_checkpoint[0] - self.size)
            self._append(hashes[start:stop])
            start = stop

    def _append(self, hashes: list[bytes]) -> None:
        before = self.size
        nodes = complete_nodes_after_append(before, hashes, self.frontier)
        self.size += len(hashes)
        self.frontier = right_edge_after_append(before, self.size, nodes, self.frontier)
        if self.has_tree:
            self._compare_nodes(nodes[len(hashes) :], before)

    def _compare_nodes(self, nodes: list[tuple[int, int, bytes]], size_before: int) -> None:
        """``nodes``: the interior nodes that appending to ``size_before`` completed, in
        (level, index) order, as ``complete_nodes_after_append`` gives them."""
        if not nodes:
            return
        rows = self.sql.nodes(size_before, self.size)
        if self.first_bad_leaf is None and self.size <= self.stored_size and rows == nodes:
            return  # all stored, all equal
        stored = {(level, index): bytes(value) for level, index, value in rows}
        for level, index, value in nodes:
            end = (index + 1) << level
            if end > self.stored_size:
                continue  # the stored tree has not reached this node yet
            if self.first_bad_leaf is not None and end > self.first_bad_leaf:
                continue  # explained by a leaf already reported
            if stored.get((level, index)) != value:
                self.bad_nodes.append((level, index))

    # ------------------------------------------------------------- checkpoints

    def _checkpoints_at_size(self) -> None:
        while self.next_checkpoint is not None and self.next_checkpoint[0] <= self.size:
            self._check_checkpoint(*self.next_checkpoint)
            self.next_checkpoint = next(self.checkpoints, None)

    def _check_checkpoint(self, size: int, root: bytes, note: str, signed_at: str) -> None:
        """The notary's signature, the stored columns, and the root over ``size`` leaves."""
        self.checked_checkpoints += 1
        where = f"checkpoint {size} (signed {signed_at})"
        try:
            checkpoint = parse_checkpoint(verify_note(note, [(self.origin, self.notary_key)]))
        except NoteError as exc:
            self.found.error(None, None, f"{where}: not signed by the notary's key: {exc}")
            return
        if (checkpoint.origin, checkpoint.size, checkpoint.root_hash) != (self.origin, size, root):
            self.found.error(None, None, f"{where}: the stored size or root is not what was signed")
        recomputed = root_from_nodes(size, self.frontier) if size else EMPTY_ROOT
        if recomputed == checkpoint.root_hash:
            return
        if self.first_bad_checkpoint is None:
            self.first_bad_checkpoint = size
            self.found.error(
                None, None, f"{where}: its root is not the root of the log's first {size} events"
            )
        else:
            self.later_bad_checkpoints.append(size)

    def finish(self, keys: Mapping[str, Mapping[str, Key]]) -> None:
        """Report what only the end of the log shows, then check the cosignatures."""
        if self.has_tree:
            for row in self.sql.leaves(self.last_position, None):
                self._deleted(*row)
        self._checkpoints_beyond_the_log()
        if self.later_bad_checkpoints:
            sizes = self.later_bad_checkpoints
            self.found.error(
                None,
                None,
                f"{len(sizes)} later checkpoints (sizes {sizes[0]} to {sizes[-1]}) do not match "
                "the log either",
            )
        if self.bad_nodes:
            level, index = self.bad_nodes[0]
            self.found.error(
                None,
                index << level,
                f"{len(self.bad_nodes)} stored tree nodes differ from the tree recomputed from "
                f"the log, the first at level {level}, index {index}",
            )
        if self.has_checkpoints:
            self._check_cosignatures(keys)

    def _checkpoints_beyond_the_log(self) -> None:
        while self.next_checkpoint is not None:
            size = self.next_checkpoint[0]
            self.checked_checkpoints += 1
            self.found.error(
                None,
                None,
                f"checkpoint {size}: covers {size} events, the log holds {self.size} (deleted)",
            )
            self.next_checkpoint = next(self.checkpoints, None)

    def _check_cosignatures(self, keys: Mapping[str, Mapping[str, Key]]) -> None:
        query = select(
            COSIGNATURES.c.size, COSIGNATURES.c.witness, COSIGNATURES.c.line, CHECKPOINTS.c.note
        ).join(CHECKPOINTS, CHECKPOINTS.c.size == COSIGNATURES.c.size)
        for size, witness, line, note in self.conn.execute(query.order_by(COSIGNATURES.c.size)):
            problem = _cosignature_problem(str(line), str(note), witness, keys.get(witness, {}))
            if problem is not None:
                self.found.error(
                    None, None, f"checkpoint {size}: the cosignature by {witness} {problem}"
                )


def _cosignature_problem(line: str, note: str, witness: str, keys: Mapping[str, Key]) -> str | None:
    try:
        body, _ = parse_note(note)
        _, (signature,) = parse_note(body + "\n" + line)
    except (NoteError, ValueError) as exc:
        return f"is malformed: {exc}"
    for key in keys.values():
        if cosigner_key_id(witness, key.public_key) != signature.key_id:
            continue
        try:
            timestamp = verify_cosignature(line, body, witness, key.public_key)
        except NoteError:
            return "does not verify"
        at = datetime.fromtimestamp(timestamp, UTC)
        if compromised(at, at, key.compromised_since):
            since = format_utc(key.compromised_since) if key.compromised_since else ""
            return f"is {finding(witness, key_id(key.public_key), since)}"
        return None
    return "is not by a key of that party"


# ------------------------------------------------------------------------ reading


class _TreeSql:
    """Raw reads of the stored tree (the driver's tuples, no per-row processing)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        quote = conn.dialect.identifier_preparer.format_table
        self.mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        self.leaves_table, self.nodes_table = quote(LEAVES), quote(NODES)
        self.nodes_sql = (
            f"SELECT level, idx, hash FROM {self.nodes_table} WHERE level = {self.mark} "
            f"AND idx BETWEEN {self.mark} AND {self.mark} ORDER BY idx"
        )

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, tuple(params))
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def stored_extent(self) -> tuple[int, int]:
        """The stored tree's size and the position of its last leaf."""
        rows = self._rows(
            f"SELECT leaf_index, position FROM {self.leaves_table} "
            f"ORDER BY leaf_index DESC LIMIT {self.mark}",
            (1,),
        )
        return (0, 0) if not rows else (int(rows[0][0]) + 1, int(rows[0][1]))

    def leaves(self, after: int, until: int | None) -> list[tuple[int, int, bytes]]:
        """Stored ``(position, leaf index, hash)`` for positions in ``(after, until]``."""
        sql = (
            f"SELECT position, leaf_index, leaf_hash FROM {self.leaves_table} "
            f"WHERE position > {self.mark}"
        )
        params: list[Any] = [after]
        if until is not None:
            sql += f" AND position <= {self.mark}"
            params.append(until)
        # Drivers give the hashes as bytes; only a mismatch needs them as keys.
        return self._rows(sql + " ORDER BY position", params)

    def nodes(self, size_before: int, size_after: int) -> list[tuple[int, int, bytes]]:
        """The stored interior nodes that growing the tree from ``size_before`` to
        ``size_after`` leaves completes, in (level, index) order."""
        # A query per level reads the primary key in order; one query with OR sorts.
        rows: list[tuple[int, int, bytes]] = []
        level = 1
        while (first := size_before >> level) < (end := size_after >> level):
            rows += self._rows(self.nodes_sql, (level, first, end - 1))
            level += 1
        return rows


def _checkpoint_rows(conn: Connection) -> Iterator[tuple[int, bytes, str, str]]:
    """Stored checkpoints by size, a page at a time."""
    after = -1
    columns = (CHECKPOINTS.c.size, CHECKPOINTS.c.root, CHECKPOINTS.c.note, CHECKPOINTS.c.signed_at)
    while True:
        query = select(*columns).where(CHECKPOINTS.c.size > after).order_by(CHECKPOINTS.c.size)
        rows = [
            (int(s), bytes(r), str(n), str(t)) for s, r, n, t in conn.execute(query.limit(1000))
        ]
        if not rows:
            return
        yield from rows
        after = rows[-1][0]
