"""Whole-ledger verification from the raw stored rows, trusting nothing already derived.

For every row of the events table, in position order, :func:`verify_ledger` checks:

* the stored state decodes to an envelope, a signature and ``recorded_at``;
* the topic is the registered topic of the envelope's event type, the envelope names this
  ledger, and the row's originator id and version are the envelope's subject and version;
* ``version`` follows the subject's previous event, ``prev`` is that event's hash, and
  only an event type that creates a subject starts one;
* the Ed25519 signature verifies, and the key belonged to the signer and was valid at
  ``signed_at`` (key history is replayed from ``PartyAdmitted``/``KeyAdded``/
  ``KeyRevoked`` as they come, and a person's keys, as keys of the person's party, from
  ``PersonAdmitted``/``PersonKeyAdded``/``PersonKeyRevoked``; which person may sign
  what is the command path's rule); a signature at or after a key's
  ``compromised_since`` is a warning, not a failure;
* the leaf recomputed from the row is the stored tree's leaf for that position, and the
  stored tree's nodes are the nodes recomputed from all leaves;
* every stored checkpoint is signed by the notary's key and its root is the root
  recomputed over its first ``size`` leaves; every stored cosignature verifies.

Each finding is a :class:`Problem` naming the position and the leaf index. Reading,
decoding, hashing and signature checks run in worker processes, a range of positions at a
time, each worker on a connection of its own: on PostgreSQL in the caller's exported
snapshot; on SQLite up to the last position the caller's snapshot holds (the log only
grows, so those rows are the snapshot's unless rewritten while verify runs). The checks
that need the log's order (chains, key history, the tree) run in the caller.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from ledger.log.verify.chain import LogCheck
from ledger.log.verify.findings import Findings, Problem, Report
from ledger.log.verify.rows import (
    CHUNK_SIZE,
    MMAP_BYTES,
    Checked,
    EventSql,
    RowContext,
    check_rows,
    registered_keys,
)
from ledger.log.verify.tree import TreeCheck
from ledger.log.verify.workers import Runner
from ledger.runtime import collector_paused

if TYPE_CHECKING:
    from ledger.application import Ledger

__all__ = [
    "CHUNK_SIZE",
    "Checked",
    "Problem",
    "Report",
    "RowContext",
    "check_rows",
    "verify_ledger",
]


# ------------------------------------------------------------------------ entry point


def verify_ledger(
    ledger: Ledger,
    *,
    workers: int | None = None,
    chunk_size: int = CHUNK_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Verify the whole ledger (see the module docstring).

    ``workers`` defaults to the number of CPUs (a ledger of at most two chunks is checked
    in this process); ``progress(done, total)`` is called after each chunk.
    """
    with ledger.engine.connect() as conn, _snapshot(conn, ledger):
        found = Findings()
        log = LogCheck(ledger, found)
        tree = TreeCheck(conn, found, ledger, set(inspect(conn).get_table_names()))
        events = EventSql(conn, ledger)
        total, last = events.extent()
        wanted = (os.cpu_count() or 1) if workers is None else workers
        context = RowContext(
            registered_keys(events, ledger, log.specs),
            log.origin,
            {name: spec.topic for name, spec in log.specs.items()},
        )
        runner = Runner(1 if total <= 2 * chunk_size else max(wanted, 1), context, events)
        done = 0
        try:
            with collector_paused():
                for chunk in runner.run(events.ranges(chunk_size, total, last)):
                    if not chunk:
                        continue  # its rows were deleted since (on SQLite, workers read later)
                    log.events(chunk, done)
                    tree.add(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, max(total, done))
        finally:
            runner.close()
        tree.finish(log.keys)
    problems = sorted(found.problems, key=lambda p: (p.position is None, p.position or 0))
    return Report(done, tree.checked_checkpoints, tree.stored_size, problems)


@contextmanager
def _snapshot(conn: Connection, ledger: Ledger) -> Iterator[None]:
    """Read everything from one snapshot, even while the ledger takes appends; give the
    pooled connection back as it was lent."""
    if ledger.settings.is_postgres:
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try:
            yield
        finally:
            conn.rollback()
        return
    raw: Any = conn.connection.dbapi_connection
    # Pages mapped, not copied, from the file: one pass reads the whole log.
    raw.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    try:
        if not raw.in_transaction:
            # A deferred BEGIN: the first read fixes the snapshot (the ledger runs in WAL
            # mode).
            conn.exec_driver_sql("BEGIN")
        yield
    finally:
        conn.rollback()
        raw.execute("PRAGMA mmap_size=0")
