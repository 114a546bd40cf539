# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""The log's own fields: the ledger, the caller, events, checkpoints and proofs.

Hashes, leaf bytes and root hashes are standard base64. Every resolver hands its
database work to a worker thread.
"""

from __future__ import annotations

import base64
import contextlib
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, cast

import strawberry
from sqlalchemy import select
from sqlalchemy.engine import Engine
from strawberry.scalars import JSON

from api.access import may_know_version, not_readable
from api.context import Context
from api.permissions_hook import can_read_event
from api.threads import in_thread
from ledger.application import Ledger, Recorded
from ledger.domain.key_history import ROTATION_WARNING
from ledger.domain.parties import NOTARY
from ledger.domain.subjects import person_subject
from ledger.errors import Forbidden, LedgerError, NotFound, ValidationFailed
from ledger.log.checkpoints import SignedCheckpoint
from ledger.log.envelope import StoredEvent
from ledger.log.tree import LEAVES
from ledger.timeutil import format_utc

if TYPE_CHECKING:
    from api.queries.parties import PartyKey
    from api.services import Services

__all__ = [
    "AuthenticatedParty",
    "Checkpoint",
    "ConsistencyProof",
    "Cosignature",
    "InclusionProof",
    "LedgerInfo",
    "LogEvent",
    "LogPage",
    "LogQuery",
    "NextVersion",
    "b64",
    "leaf_indexes",
]

Info = strawberry.Info[Context, None]
_PartyKey = Annotated["PartyKey", strawberry.lazy("api.queries.parties")]


def b64(data: bytes) -> str:
    """Standard base64 text."""
    return base64.b64encode(data).decode("ascii")


@strawberry.type(description="This ledger: its origin, the notary's key and the tree's size.")
class LedgerInfo:
    origin: str = strawberry.field(description="Origin string: checkpoint origin, envelope ledger.")
    notary_key: str = strawberry.field(description="The notary's C2SP verifier key (vkey).")
    tree_size: int = strawberry.field(description="Leaves in the stored Merkle tree.")


@strawberry.type(description="The authenticated caller.")
class AuthenticatedParty:
    id: strawberry.ID = strawberry.field(description="Party id ('notary' for the operator).")
    legal_name: str
    role: str = strawberry.field(description="sponsor, cmo, regulator, auditor or notary.")
    key_id: str = strawberry.field(description="Id of the key that signed this request.")

    @strawberry.field(
        description="The caller's keys in force now (neither revoked nor expired), the "
        "soonest to expire first."
    )
    async def keys(self, info: Info) -> list[_PartyKey]:
        return await in_thread(_own_keys, info.context, str(self.id), False)

    @strawberry.field(
        description=f"The caller's keys in force that expire within {ROTATION_WARNING.days} "
        "days: rotate each (add the next key, signed with a current one) before it expires."
    )
    async def keys_expiring_soon(self, info: Info) -> list[_PartyKey]:
        return await in_thread(_own_keys, info.context, str(self.id), True)


def _own_keys(context: Context, party_id: str, expiring: bool) -> list[PartyKey]:
    # api.queries imports this module: the key type is read when the schema is built.
    from api.queries.parties import keys_in_force

    ledger = context.services.ledger
    party = None if party_id == NOTARY else ledger.party(party_id)
    if party is None:
        return []  # the notary's key is the ledger's identity: it has no key history
    history, now = party.key_history, ledger.clock.now()
    return keys_in_force(history, history.expiring(now) if expiring else history.in_force(now))


@strawberry.type(description="RFC 9162 inclusion proof of one leaf in a tree of treeSize leaves.")
class InclusionProof:
    leaf_index: int
    tree_size: int
    hashes: list[str] = strawberry.field(description="Proof hashes, base64, in RFC 9162 order.")


@strawberry.type(description="RFC 9162 consistency proof from tree size fromSize to toSize.")
class ConsistencyProof:
    from_size: int
    to_size: int
    hashes: list[str] = strawberry.field(description="Proof hashes, base64; empty from size 0.")


@strawberry.type(description="A witness's C2SP cosignature/v1 of a checkpoint.")
class Cosignature:
    witness: str = strawberry.field(description="Party id of the witness (the key name).")
    time: str = strawberry.field(description="The cosignature's timestamp, RFC 3339 UTC.")
    line: str = strawberry.field(description="The signature line as it appears in the note.")


@strawberry.type(description="A checkpoint signed by the notary (C2SP tlog-checkpoint).")
class Checkpoint:
    note: str = strawberry.field(description="The signed note with every cosignature line.")
    tree_size: int
    root_hash: str = strawberry.field(description="Root hash, base64.")
    signed_at: str = strawberry.field(description="When the notary signed it, RFC 3339 UTC.")
    cosignatures: list[Cosignature]

    @classmethod
    def of(cls, signed: SignedCheckpoint) -> Checkpoint:
        """The GraphQL view of a stored checkpoint."""
        cosignatures = [
            Cosignature(witness=c.witness, time=_unix_time(c.timestamp), line=c.line)
            for c in signed.cosignatures
        ]
        return cls(
            note=signed.text,
            tree_size=signed.size,
            root_hash=b64(signed.root),
            signed_at=signed.signed_at,
            cosignatures=cosignatures,
        )


@strawberry.type(description="A page of the log: the events in it the caller may read.")
class LogPage:
    events: list[LogEvent]
    reached: int = strawberry.field(description="Last position read: the next page's after.")
    has_more: bool


@strawberry.type(description="What the next envelope of a subject must carry.")
class NextVersion:
    version: int
    prev: str | None = strawberry.field(description="Event hash (hex) of the last event, or null.")


@strawberry.type(description="A stored event: a signed envelope and the server's receipt time.")
class LogEvent:
    position: int = strawberry.field(description="Position in the log (may have gaps).")
    leaf_index: int | None = strawberry.field(
        description="Dense index of its Merkle leaf; null until the event is in the tree."
    )
    type: str
    subject: strawberry.ID
    version: int
    signer: str
    key: str
    meaning: str
    reason: str | None
    signed_at: str
    recorded_at: str
    envelope: JSON = strawberry.field(description="The signed envelope, as signed.")
    signature: str = strawberry.field(description="Ed25519 signature of the envelope, base64.")
    stored: strawberry.Private[StoredEvent]

    # Both hash the canonical form of the whole event: in a worker thread, and only
    # when asked for (an envelope may be megabytes).
    @strawberry.field(description="Hex hash the subject's next 'prev' carries.")
    async def event_hash(self) -> str:
        return await in_thread(self.stored.event_hash)

    @strawberry.field(description="The Merkle leaf bytes (RFC 8785), base64.")
    async def leaf_bytes(self) -> str:
        return b64(await in_thread(self.stored.leaf_bytes))

    @strawberry.field(
        description="Version of the ledger software that recorded the event (in its leaf, "
        "not signed); null for events recorded before releases kept it."
    )
    def software_version(self) -> str | None:
        return self.stored.software_version

    @strawberry.field(
        description="Schema version of the event catalogue the event was admitted under "
        "(in its leaf, not signed); null for events recorded before releases kept it."
    )
    def schema_version(self) -> int | None:
        return self.stored.schema_version

    @strawberry.field(
        description="True when the event is signed under a compromised key: its signedAt or "
        "recordedAt is at or after the key's compromisedSince. The signature may not be the "
        "signer's; verify and verify-bundle report it alike (exit 2)."
    )
    async def compromised(self, info: Info) -> bool:
        return await in_thread(_signed_while_compromised, info.context.ledger, self.stored)

    @strawberry.field(
        description="Inclusion proof in the tree of treeSize leaves (default: the latest "
        "checkpoint); null while no signed checkpoint covers this event."
    )
    async def inclusion_proof(
        self, info: Info, tree_size: int | None = None
    ) -> InclusionProof | None:
        if self.leaf_index is None:
            return None
        services = info.context.services
        try:
            return await in_thread(_inclusion, services, self.leaf_index, tree_size)
        except NotFound:
            if tree_size is not None:
                raise
            return None

    @classmethod
    def of(cls, recorded: Recorded, leaf_index: int | None) -> LogEvent:
        """The GraphQL view of a stored event."""
        stored = recorded.event
        envelope = stored.envelope
        return cls(
            position=recorded.position,
            leaf_index=leaf_index,
            type=str(envelope["type"]),
            subject=strawberry.ID(str(envelope["subject"])),
            version=int(envelope["version"]),
            signer=str(envelope["signer"]),
            key=str(envelope["key"]),
            meaning=str(envelope["meaning"]),
            reason=envelope.get("reason"),
            signed_at=str(envelope["signed_at"]),
            recorded_at=stored.recorded_at,
            envelope=cast(JSON, dict(envelope)),
            signature=stored.signature,
            stored=stored,
        )


def _signed_while_compromised(ledger: Ledger, stored: StoredEvent) -> bool:
    envelope = stored.envelope
    signer = str(envelope["signer"])
    party = None if signer == NOTARY else ledger.party(signer)
    if party is None:
        return False
    return party.key_history.compromised(
        str(envelope["key"]), str(envelope["signed_at"]), stored.recorded_at
    )


def _unix_time(timestamp: int) -> str:
    return format_utc(datetime.fromtimestamp(timestamp, UTC))


def _inclusion(services: Services, leaf_index: int, tree_size: int | None) -> InclusionProof:
    size = services.proof_size(tree_size)
    if leaf_index >= size:
        raise NotFound(
            f"leaf {leaf_index} is not in the tree of size {size}: "
            "retry after the next checkpoint, or pass a larger treeSize",
            field="leafIndex",
        )
    with _fields_named({"leaf": "leafIndex", "size": "treeSize"}):
        hashes = services.tree.inclusion_proof(leaf_index, size)
    return InclusionProof(leaf_index=leaf_index, tree_size=size, hashes=_b64s(hashes))


def _consistency(services: Services, from_size: int, to_size: int | None) -> ConsistencyProof:
    size = services.proof_size(to_size)
    if from_size < 0 or from_size > size:
        raise ValidationFailed(f"fromSize must be between 0 and toSize ({size})", field="fromSize")
    with _fields_named({"size": "toSize"}):
        hashes = services.tree.consistency_proof(from_size, size)
    return ConsistencyProof(from_size=from_size, to_size=size, hashes=_b64s(hashes))


@contextlib.contextmanager
def _fields_named(names: Mapping[str, str]) -> Iterator[None]:
    """Rename the tree's error fields to the GraphQL arguments they concern."""
    try:
        yield
    except LedgerError as error:
        error.field = names.get(error.field or "", error.field)
        raise


def _b64s(hashes: Sequence[bytes]) -> list[str]:
    return [b64(h) for h in hashes]


def _readable_event(context: Context, leaf_index: int) -> LogEvent:
    recorded = context.services.event_by_leaf(leaf_index)
    if not can_read_event(context, recorded):
        raise Forbidden(
            f"{context.require_party().party_id} may not read the event at leaf {leaf_index}",
            field="leafIndex",
        )
    return LogEvent.of(recorded, leaf_index)


def _log_page(context: Context, after: int, first: int) -> LogPage:
    events = context.ledger.read(after=after, limit=first + 1)
    more = len(events) > first
    events = events[:first]
    leaves = leaf_indexes(context.ledger.engine, [e.position for e in events])
    readable = [
        LogEvent.of(e, leaves.get(e.position)) for e in events if can_read_event(context, e)
    ]
    reached = events[-1].position if events else after
    return LogPage(events=readable, reached=reached, has_more=more)


def _next_version(
    context: Context, subject: uuid.UUID, person: str | None
) -> tuple[int, str | None]:
    """Answered for a subject the caller may read, for one the log does not hold yet to a
    party that may create it, and for the caller's own person subject named by ``person``;
    FORBIDDEN otherwise, so that a subject's activity (and, to a regulator or auditor, its
    existence) is not told to whoever guesses its name."""
    party = context.require_party().party_id
    if person is not None and person_subject(party, person) != subject:
        raise ValidationFailed(
            f"subject {subject} is not the subject of {party}'s person {person!r}: name "
            "one of your own persons, or leave person out",
            field="person",
        )
    version, prev = context.ledger.next_version(subject)
    if person is None and not may_know_version(context, str(subject), version):
        raise not_readable(subject, "subject")
    return version, prev


def _subject(text: str) -> uuid.UUID:
    try:
        subject = uuid.UUID(text)
    except ValueError:
        raise ValidationFailed("expected a lowercase hyphenated UUID", field="subject") from None
    if str(subject) != text:
        raise ValidationFailed("expected a lowercase hyphenated UUID", field="subject")
    return subject


@strawberry.type
class LogQuery:
    """Root fields over the log itself."""

    @strawberry.field(description="This ledger; the one field unsigned callers may read.")
    async def ledger(self, info: Info) -> LedgerInfo:
        services = info.context.services
        size = await in_thread(services.tree.size)
        identity = services.ledger.identity
        return LedgerInfo(origin=identity.origin, notary_key=services.notary_vkey(), tree_size=size)

    @strawberry.field(description="The authenticated caller.")
    async def me(self, info: Info) -> AuthenticatedParty:
        caller = info.context.require_party()
        return AuthenticatedParty(
            id=strawberry.ID(caller.party_id),
            legal_name=caller.legal_name,
            role=caller.role,
            key_id=caller.key_id,
        )

    @strawberry.field(description="The event that is leaf leafIndex of the Merkle tree.")
    async def event(self, info: Info, leaf_index: int) -> LogEvent:
        info.context.require_party()
        return await in_thread(_readable_event, info.context, leaf_index)

    @strawberry.field(
        description="Up to first events after log position after, leaving out those the "
        "caller may not read."
    )
    async def log(self, info: Info, after: int = 0, first: int = 100) -> LogPage:
        info.context.require_party()
        info.context.limits.page_size(first)
        return await in_thread(_log_page, info.context, max(after, 0), first)

    @strawberry.field(description="The latest signed checkpoint, or the one of treeSize.")
    async def checkpoint(self, info: Info, tree_size: int | None = None) -> Checkpoint:
        info.context.require_party()
        signed = await in_thread(info.context.services.checkpoint, tree_size)
        return Checkpoint.of(signed)

    @strawberry.field(description="Inclusion proof of a leaf (treeSize: latest checkpoint).")
    async def inclusion_proof(
        self, info: Info, leaf_index: int, tree_size: int | None = None
    ) -> InclusionProof:
        info.context.require_party()
        return await in_thread(_inclusion, info.context.services, leaf_index, tree_size)

    @strawberry.field(
        description="Consistency proof between tree sizes (toSize: latest checkpoint)."
    )
    async def consistency_proof(
        self, info: Info, from_size: int, to_size: int | None = None
    ) -> ConsistencyProof:
        info.context.require_party()
        return await in_thread(_consistency, info.context.services, from_size, to_size)

    @strawberry.field(
        description="The version and prev the next envelope of subject must carry. person "
        "names one of the caller's own persons when subject is that person's subject "
        "(admitting a person, for a party that creates no other subject)."
    )
    async def next_version(
        self, info: Info, subject: strawberry.ID, person: str | None = None
    ) -> NextVersion:
        info.context.require_party()
        version, prev = await in_thread(_next_version, info.context, _subject(str(subject)), person)
        return NextVersion(version=version, prev=prev)


def leaf_indexes(engine: Engine, positions: Sequence[int]) -> dict[int, int]:
    """Leaf index by position, for those of ``positions`` already in the tree."""
    if not positions:
        return {}
    query = select(LEAVES.c.position, LEAVES.c.leaf_index).where(
        LEAVES.c.position >= min(positions), LEAVES.c.position <= max(positions)
    )
    with engine.connect() as conn:
        return {int(p): int(i) for p, i in conn.execute(query)}
