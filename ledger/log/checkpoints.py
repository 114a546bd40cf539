"""Signed checkpoints of the log, and the witnesses' cosignatures of them.

The notary signs checkpoints in the C2SP ``tlog-checkpoint`` form: the note text
``<origin>\\n<tree size>\\n<base64 root hash>\\n`` signed as a C2SP signed note whose key
name is the ledger's origin. Its verifier key, in the C2SP vkey form, is
:meth:`Checkpoints.vkey`.

Tables:

* ``checkpoints(size PK, root, note, signed_at)``: every checkpoint ever signed;
* ``cosignatures(size, witness, line, timestamp, PK(size, witness))``: the
  ``cosignature/v1`` lines parties added to them.

The notary never signs two checkpoints that disagree: before signing size ``n`` it checks
the consistency proof from the latest stored checkpoint (size ``m``) against that
checkpoint's *signed* root, so every checkpoint extends every earlier one. Signing is
serialised across processes (a PostgreSQL advisory lock, or the SQLite write lock), and
within one with a thread lock.

:meth:`Notary.start` runs a background thread that builds the tree and signs a new
checkpoint when events arrive: at most ``interval`` seconds after an append by this
process (appends by other processes are noticed by polling every ``interval / 2``), and
at most one checkpoint per ``interval``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from nacl.signing import SigningKey, VerifyKey
from sqlalchemy import BigInteger, Column, LargeBinary, MetaData, String, Table, Text, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ledger.domain.key_history import KeyHistory, KeyRecord
from ledger.errors import (
    BadSignature,
    ConfigurationError,
    LedgerError,
    NotFound,
    UnknownSigner,
    ValidationFailed,
)
from ledger.keys import decode_public_key, encode_public_key
from ledger.log.follow import begin_page
from ledger.log.locks import lock_key, xact_lock
from ledger.log.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    consistency_proof_coords,
    root_coords,
    root_from_nodes,
    unique_coords,
    verify_consistency,
)
from ledger.log.notes import (
    Checkpoint,
    NoteError,
    add_signature_lines,
    cosigner_key_id,
    format_checkpoint,
    parse_checkpoint,
    parse_note,
    sign_note,
    verify_cosignature,
    vkey,
)
from ledger.log.tree import MerkleTree, read_nodes, tree_size
from ledger.timeutil import format_utc, parse_utc

if TYPE_CHECKING:
    from ledger.application import Ledger

__all__ = [
    "CHECKPOINTS",
    "COSIGNATURES",
    "Checkpoints",
    "Cosignature",
    "InconsistentTree",
    "Notary",
    "SignedCheckpoint",
    "create_checkpoint_tables",
]

log = logging.getLogger(__name__)

metadata = MetaData()
CHECKPOINTS = Table(
    "checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("signed_at", String(40), nullable=False),
)
COSIGNATURES = Table(
    "cosignatures",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("witness", String(64), primary_key=True),
    Column("line", Text, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
)

_PAGE = 1000


def create_checkpoint_tables(engine: Any) -> None:
    """Create ``checkpoints`` and ``cosignatures`` when missing."""
    metadata.create_all(engine, checkfirst=True)


class InconsistentTree(LedgerError):
    """The stored tree does not extend the latest signed checkpoint: nothing was signed."""

    code = "INCONSISTENT_TREE"


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A witness's ``cosignature/v1`` line over one checkpoint."""

    witness: str
    line: str
    timestamp: int


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint as stored: the notary's signed note and the cosignatures added since."""

    size: int
    root: bytes
    note: str
    signed_at: str
    cosignatures: tuple[Cosignature, ...] = ()

    @property
    def body(self) -> str:
        """The checkpoint's note text (what was signed)."""
        return parse_note(self.note)[0]

    @property
    def checkpoint(self) -> Checkpoint:
        """The parsed checkpoint text."""
        return parse_checkpoint(self.body)

    @property
    def text(self) -> str:
        """The signed note with every cosignature line: what ``/checkpoint`` serves."""
        if not self.cosignatures:
            return self.note
        return add_signature_lines(self.note, [c.line for c in self.cosignatures])


class Checkpoints:
    """The stored checkpoints and cosignatures of one ledger (no signing key needed)."""

    def __init__(self, ledger: Ledger, tree: MerkleTree | None = None) -> None:
        self.ledger = ledger
        self.tree = tree if tree is not None else MerkleTree(ledger)
        self.origin = ledger.identity.origin
        self.notary_key: VerifyKey = decode_public_key(ledger.identity.notary_public_key)
        create_checkpoint_tables(ledger.engine)

    def vkey(self) -> str:
        """The notary's C2SP verifier key: ``<origin>+<key ID>+base64(0x01 || key)``."""
        return vkey(self.origin, self.notary_key)

    def latest(self) -> SignedCheckpoint | None:
        """The checkpoint of the largest tree signed so far, with its cosignatures."""
        with self.ledger.engine.connect() as conn:
            found = _latest(conn)
            return None if found is None else _with_cosignatures(conn, [found])[0]

    def get(self, size: int) -> SignedCheckpoint | None:
        """The checkpoint of tree size ``size``, with its cosignatures."""
        with self.ledger.engine.connect() as conn:
            row = conn.execute(_SELECT.where(CHECKPOINTS.c.size == size)).first()
            return None if row is None else _with_cosignatures(conn, [_checkpoint(row)])[0]

    def covering(self, leaf_index: int) -> SignedCheckpoint | None:
        """The smallest checkpoint that includes leaf ``leaf_index``."""
        with self.ledger.engine.connect() as conn:
            query = _SELECT.where(CHECKPOINTS.c.size > leaf_index).order_by(CHECKPOINTS.c.size)
            row = conn.execute(query.limit(1)).first()
            return None if row is None else _with_cosignatures(conn, [_checkpoint(row)])[0]

    def all(self) -> Iterator[SignedCheckpoint]:
        """Every checkpoint, smallest first, read a page at a time."""
        after = -1
        while True:
            with self.ledger.engine.connect() as conn:
                query = _SELECT.where(CHECKPOINTS.c.size > after).order_by(CHECKPOINTS.c.size)
                page = [_checkpoint(row) for row in conn.execute(query.limit(_PAGE))]
                page = _with_cosignatures(conn, page)
            if not page:
                return
            yield from page
            after = page[-1].size

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """PROOF(old_size, D[new_size]) from the stored tree (empty from size 0)."""
        return self.tree.consistency_proof(old_size, new_size)

    def add_cosignature(self, size: int, party_id: str, line: str) -> Cosignature:
        """Verify a witness's ``cosignature/v1`` line for checkpoint ``size`` and store it.

        The key name must be the party id, and the key one of the party's keys, valid at
        the cosignature's timestamp. A second cosignature by the same party for the same
        checkpoint leaves the first in place and returns it.
        """
        checkpoint = self.get(size)
        if checkpoint is None:
            raise NotFound(f"no checkpoint of size {size}", field="size")
        party = self.ledger.party(party_id)
        if party is None:
            raise UnknownSigner(f"no admitted party {party_id!r}", field="witness")
        timestamp, kid = _verify_line(line, checkpoint.body, party_id, party.keys)
        self._check_time(timestamp, checkpoint, party.key_history, kid)
        cosignature = Cosignature(party_id, line.removesuffix("\n") + "\n", timestamp)
        return self._store_cosignature(size, cosignature)

    def _check_time(
        self, timestamp: int, checkpoint: SignedCheckpoint, keys: KeyHistory, kid: str
    ) -> None:
        at = datetime.fromtimestamp(timestamp, UTC)
        skew = timedelta(seconds=self.ledger.settings.max_clock_skew)
        if at > self.ledger.clock.now() + skew:
            raise ValidationFailed("cosignature timestamp is in the future", field="line")
        if at < parse_utc(checkpoint.signed_at, field="signed_at") - skew:
            raise ValidationFailed("cosignature timestamp precedes the checkpoint", field="line")
        keys.check_signed_at(kid, at, skew, field="line")

    def _store_cosignature(self, size: int, cosignature: Cosignature) -> Cosignature:
        row = {
            "size": size,
            "witness": cosignature.witness,
            "line": cosignature.line,
            "timestamp": cosignature.timestamp,
        }
        try:
            with self.ledger.engine.begin() as conn:
                conn.execute(COSIGNATURES.insert(), [row])
        except IntegrityError:
            pass  # this witness already cosigned this checkpoint: keep the first
        stored = self.get(size)
        assert stored is not None  # checkpoints are never deleted
        return next(c for c in stored.cosignatures if c.witness == cosignature.witness)


class Notary(Checkpoints):
    """Signs checkpoints with the notary's key; one signer at a time across processes."""

    def __init__(
        self, ledger: Ledger, signing_key: SigningKey, tree: MerkleTree | None = None
    ) -> None:
        super().__init__(ledger, tree)
        if encode_public_key(signing_key) != ledger.identity.notary_public_key:
            raise ConfigurationError(
                "this signing key is not the ledger's notary key", field="notary_key"
            )
        self._key = signing_key
        self._sign_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._listening = False
        self.interval = ledger.settings.checkpoint_interval
        self.last_error: BaseException | None = None

    # ------------------------------------------------------------------- signing

    def checkpoint_now(self) -> SignedCheckpoint:
        """Bring the tree up to the log's head and sign its size, unless already signed.

        Returns the latest checkpoint; raises :class:`InconsistentTree`, signing nothing,
        when the tree does not extend the latest stored checkpoint.
        """
        with self._sign_lock:
            self.tree.catch_up()
            signed = self._sign_tree()
        return self.get(signed.size) or signed

    def _sign_tree(self) -> SignedCheckpoint:
        with self.ledger.storage.transaction(commit=True) as session:
            begin_page(session, self.ledger)
            if self.ledger.settings.is_postgres:
                xact_lock(session, [lock_key(self.ledger.engine, "checkpoints")])
            conn = session.connection()
            latest = _latest(conn)
            size = tree_size(conn)
            if latest is not None and latest.size == size:
                return latest
            root = self._root_extending(conn, latest, size)
            body = format_checkpoint(self.origin, size, root)
            signed = SignedCheckpoint(
                size,
                root,
                sign_note(body, self.origin, self._key),
                format_utc(self.ledger.clock.now()),
            )
            conn.execute(
                CHECKPOINTS.insert(),
                [
                    {
                        "size": signed.size,
                        "root": signed.root,
                        "note": signed.note,
                        "signed_at": signed.signed_at,
                    }
                ],
            )
            return signed

    def _root_extending(
        self, conn: Connection, latest: SignedCheckpoint | None, size: int
    ) -> bytes:
        """The root at ``size``, once proven to extend the ``latest`` signed checkpoint."""
        old = 0 if latest is None else latest.size
        if size < old:
            raise InconsistentTree(
                f"the stored tree has {size} leaves, fewer than the signed checkpoint of size {old}"
            )
        if size == 0:
            return EMPTY_ROOT
        groups = [root_coords(size)]
        if old:
            groups.extend(consistency_proof_coords(old, size))
        nodes = read_nodes(conn, unique_coords(groups))
        root = root_from_nodes(size, nodes)
        if latest is not None and old:
            proof = consistency_proof(old, size, nodes)
            if not verify_consistency(old, size, proof, latest.root, root):
                raise InconsistentTree(
                    f"the stored tree of size {size} does not extend the signed checkpoint of "
                    f"size {old}: refusing to sign"
                )
        return root

    # -------------------------------------------------------------- background

    def pending(self) -> bool:
        """Whether the log holds events no checkpoint covers yet (or none was ever signed)."""
        latest = self.latest()
        if latest is None:
            return True
        return self.ledger.head() > self.tree.position() or self.tree.size() > latest.size

    def tick(self) -> SignedCheckpoint | None:
        """One round of the background thread: sign when :meth:`pending`."""
        return self.checkpoint_now() if self.pending() else None

    def start(self, interval: float | None = None) -> None:
        """Sign in a background thread, at most ``interval`` seconds after new events
        (default ``Settings.checkpoint_interval``)."""
        if self._thread is not None:
            return
        if interval is not None:
            if interval <= 0:
                raise ValidationFailed("the checkpoint interval must be positive", field="interval")
            self.interval = interval
        if not self._listening:
            self.ledger.add_listener(self._on_append)
            self._listening = True
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="cmo-ledger-notary", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop the background thread (a signature under way completes first)."""
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        self._wake.set()
        thread.join(timeout)
        self._thread = None

    def _on_append(self, position: int) -> None:
        self._wake.set()

    def _run(self) -> None:
        next_allowed = 0.0
        while not self._stopping.is_set():
            # Woken by an append here, or polling for appends by other processes.
            self._wake.wait(self.interval / 2)
            self._wake.clear()
            delay = next_allowed - time.monotonic()
            if self._stopping.is_set() or (delay > 0 and self._stopping.wait(delay)):
                return
            try:
                if self.tick() is not None:
                    next_allowed = time.monotonic() + self.interval
                self.last_error = None
            except Exception as exc:  # keep serving: the next round retries
                self.last_error = exc
                log.exception("checkpoint signing failed")
                next_allowed = time.monotonic() + self.interval


# ------------------------------------------------------------------------ helpers

_SELECT = select(
    CHECKPOINTS.c.size, CHECKPOINTS.c.root, CHECKPOINTS.c.note, CHECKPOINTS.c.signed_at
)


def _checkpoint(row: Sequence[Any]) -> SignedCheckpoint:
    return SignedCheckpoint(int(row[0]), bytes(row[1]), str(row[2]), str(row[3]))


def _latest(conn: Connection) -> SignedCheckpoint | None:
    row = conn.execute(_SELECT.order_by(CHECKPOINTS.c.size.desc()).limit(1)).first()
    return None if row is None else _checkpoint(row)


def _with_cosignatures(
    conn: Connection, checkpoints: list[SignedCheckpoint]
) -> list[SignedCheckpoint]:
    if not checkpoints:
        return checkpoints
    sizes = [c.size for c in checkpoints]
    query = (
        select(
            COSIGNATURES.c.size,
            COSIGNATURES.c.witness,
            COSIGNATURES.c.line,
            COSIGNATURES.c.timestamp,
        )
        .where(COSIGNATURES.c.size.in_(sizes))
        .order_by(COSIGNATURES.c.size, COSIGNATURES.c.timestamp, COSIGNATURES.c.witness)
    )
    found: dict[int, list[Cosignature]] = {}
    for size, witness, line, timestamp in conn.execute(query):
        found.setdefault(int(size), []).append(Cosignature(witness, line, int(timestamp)))
    return [
        SignedCheckpoint(c.size, c.root, c.note, c.signed_at, tuple(found.get(c.size, ())))
        for c in checkpoints
    ]


def _verify_line(
    line: str, body: str, party_id: str, keys: dict[str, KeyRecord]
) -> tuple[int, str]:
    """The timestamp of a cosignature line and the id of the party key that made it."""
    try:
        _, signatures = parse_note(body + "\n" + line.removesuffix("\n") + "\n")
    except NoteError as exc:
        raise ValidationFailed(f"not a cosignature line: {exc}", field="line") from exc
    if len(signatures) != 1:
        raise ValidationFailed("expected exactly one cosignature line", field="line")
    signature = signatures[0]
    if signature.name != party_id:
        raise ValidationFailed(
            f"the cosignature's key name is {signature.name!r}, not the party id {party_id!r}",
            field="line",
        )
    for kid, record in keys.items():
        verify_key = decode_public_key(record["public_key"])
        if cosigner_key_id(party_id, verify_key) != signature.key_id:
            continue
        try:
            return verify_cosignature(line, body, party_id, verify_key), kid
        except NoteError as exc:
            raise BadSignature(f"cosignature does not verify: {exc}", field="line") from exc
    raise UnknownSigner(f"the cosignature's key is not a key of {party_id}", field="line")
