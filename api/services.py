"""What one server process runs beside its requests, opened and closed by the app's lifespan.

* the ledger (``Ledger.open``) and its writer (``ledger.group_commit.GroupCommit``): the
  submissions of concurrent requests stored in shared transactions;
* the Merkle tree (``ledger.log.tree.MerkleTree``) and the notary
  (``ledger.log.checkpoints.Notary``),
  whose background thread builds the tree and signs checkpoints;
* the projector (``projections.runner.Projector``): read-your-writes for the data queries;
  the tree rides along as its companion, so one transaction per append brings both up to
  date;
* authentication and its replay table, the subscription feed and the metrics;
* the read-access log (``api.read_log.ReadLog``), whose commitments the app's lifespan runs.

Resolvers reach these through :class:`Services` only, so the API does not depend on how the
tree, the notary or the projector are built.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nacl.signing import SigningKey
from sqlalchemy import text

from api.auth import Authenticator, ReplayGuard
from api.limits import Limits
from api.log_fields import leaf_indexes
from api.metrics import Metrics
from api.read_log import ReadLog
from api.subscriptions import EventFeed
from ledger.application import Ledger, Recorded
from ledger.clock import SYSTEM, Clock
from ledger.config import Settings
from ledger.errors import NotFound
from ledger.group_commit import GroupCommit
from ledger.keys import decode_public_key
from ledger.log.checkpoints import Notary, SignedCheckpoint
from ledger.log.locks import lock_key
from ledger.log.notes import vkey
from ledger.log.tree import MerkleTree
from projections.runner import Projector

if TYPE_CHECKING:
    from ledger.log.checkpoints import Cosignature

__all__ = ["Services"]

log = logging.getLogger(__name__)


@contextmanager
def one_at_a_time(ledger: Ledger) -> Iterator[None]:
    """Hold a PostgreSQL advisory lock while this process creates its tables.

    Workers starting together on a new database would otherwise race: a table created
    after another process checked for it stops the worker with ``DuplicateTable``.
    """
    if not ledger.settings.is_postgres:
        yield
        return
    with ledger.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        key = lock_key(ledger.engine, "startup")
        conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})


@dataclass
class Services:
    """The process's ledger and everything running beside it."""

    ledger: Ledger
    writer: GroupCommit
    settings: Settings
    limits: Limits
    tree: MerkleTree
    notary: Notary
    projector: Projector | None
    replay: ReplayGuard
    auth: Authenticator
    feed: EventFeed
    metrics: Metrics
    read_log: ReadLog
    indexed: int = 0
    """The position this process last saw the tree reach."""

    @classmethod
    def open(
        cls,
        settings: Settings,
        limits: Limits,
        notary_key: SigningKey,
        *,
        projections: bool = True,
        metrics: Metrics | None = None,
        clock: Clock = SYSTEM,
    ) -> Services:
        """Open the ledger and build (not start) everything else."""
        ledger = Ledger.open(settings, clock)
        try:
            with one_at_a_time(ledger):
                tree = MerkleTree(ledger)
                notary = Notary(ledger, notary_key, tree)
                replay = ReplayGuard(ledger)
                replay.create_table()
                projector = Projector(ledger, companions=(tree,)) if projections else None
                if projector is not None:
                    projector.create_tables()
                read_log = ReadLog(ledger, notary_key)
                read_log.create_tables()
        except BaseException:
            ledger.close()
            raise
        services = cls(
            ledger=ledger,
            writer=GroupCommit(ledger),
            settings=settings,
            limits=limits,
            tree=tree,
            notary=notary,
            projector=projector,
            replay=replay,
            auth=Authenticator(ledger, replay, limits.request_max_age),
            feed=EventFeed(ledger, tree),
            metrics=metrics or Metrics(),
            read_log=read_log,
        )
        # Every append, this process's, adds its events to the tree before it returns, so
        # an acknowledgement carries its leaf index: a group commit indexes once.
        ledger.add_listener(services.index)
        return services

    def start(self) -> None:
        """Catch the views and the tree up, then follow the log (blocking; run in a thread)."""
        if self.projector is not None:
            self.projector.start()
        self.notary.checkpoint_now()
        self.notary.start()

    def close(self) -> None:
        """Stop the background threads and close the ledger."""
        try:
            self.notary.stop()
            if self.projector is not None:
                self.projector.close()
        finally:
            self.ledger.close()

    # ------------------------------------------------------------------ the log

    def notary_vkey(self) -> str:
        """The notary's C2SP verifier key."""
        identity = self.ledger.identity
        return vkey(identity.origin, decode_public_key(identity.notary_public_key))

    def event_at(self, position: int) -> Recorded:
        """The stored event at ``position``."""
        found = self.ledger.read(after=position - 1, limit=1)
        if not found or found[0].position != position:
            raise NotFound(f"no event at position {position}", field="position")
        return found[0]

    def event_by_leaf(self, leaf_index: int) -> Recorded:
        """The stored event that is leaf ``leaf_index`` of the tree."""
        if leaf_index < 0:
            raise NotFound("leaf indexes start at 0", field="leafIndex")
        try:
            position = self.tree.leaf_position(leaf_index)
        except NotFound:
            raise NotFound(
                f"no leaf {leaf_index} in the tree yet (it has {self.tree.size()} leaves)",
                field="leafIndex",
            ) from None
        return self.event_at(position)

    def index(self, until: int) -> None:
        """Add the log, ``until`` at least, to the tree now, so new events have leaf
        indexes (up to the head: appends committed meanwhile are indexed in the same page,
        and their own calls return at once)."""
        if until <= self.indexed:
            return
        projector = self.projector
        if projector is not None and projector.started:
            # The views' page adds the leaves too (the projector's own listener then
            # finds it done); should it fail, the tree catches up alone below.
            projector.catch_up_safely(needed=until)
            if projector.reached >= until:
                self.indexed = max(self.indexed, projector.reached)
                return
        try:
            self.indexed = max(self.indexed, self.tree.catch_up())
        except Exception:  # the notary's thread retries; leaf indexes stay null meanwhile
            log.exception("adding events to the Merkle tree failed")

    def leaf_indexes(self, positions: Sequence[int]) -> dict[int, int]:
        """Leaf index by position, for the positions already in the tree."""
        return leaf_indexes(self.ledger.engine, positions)

    # ------------------------------------------------------------ checkpoints

    def checkpoint(self, size: int | None = None) -> SignedCheckpoint:
        """The latest signed checkpoint, or the one of tree size ``size``."""
        found = self.notary.latest() if size is None else self.notary.get(size)
        if found is None:
            what = "no checkpoint is signed yet" if size is None else f"no checkpoint of {size}"
            raise NotFound(f"{what}: retry after the next checkpoint", field="treeSize")
        return found

    def proof_size(self, size: int | None) -> int:
        """``size``, or the latest checkpoint's size when ``None``."""
        return self.checkpoint().size if size is None else size

    def cosign(self, size: int, party_id: str, line: str) -> Cosignature:
        """Verify and store a witness's cosignature of checkpoint ``size``."""
        return self.notary.add_cosignature(size, party_id, line)
