# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""``asOf(position | time)``: the root data fields answered from the views as they stood
at a log position, and the position it resolved to.

Position is authoritative; a time resolves to the last position whose events were all
recorded at or before it. The data is the data as it stood then; what the caller may
see of it is decided now (a grant that has since ended opens nothing).

Every answer carries its ``proof``: the last event it reflects, as a leaf of the Merkle
tree, with its inclusion proof in the smallest signed checkpoint that covers it, so a
client checks the answer's place in the log without trusting the server
(:func:`clients.offline.verify_as_of`).
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from sqlalchemy import select
from sqlalchemy.engine import Connection

from api.log_fields import AuthenticatedParty, Checkpoint, InclusionProof, b64
from api.queries.common import At, Info, Scope, read, request_scope, time_text
from api.queries.fields import DataFields
from api.services import Services
from api.threads import in_thread
from ledger.errors import ValidationFailed
from projections.audit import AUDIT, resolve_time

__all__ = ["AsOf", "AsOfProof", "resolve_as_of"]

_BEFORE_ANY = "1970-01-01T00:00:00.000Z"


@strawberry.type(
    description="The last event an as-of answer reflects, proven to be in a signed checkpoint."
)
class AsOfProof:
    position: int = strawberry.field(description="The event's log position.")
    leaf_index: int = strawberry.field(description="The event's leaf index in the Merkle tree.")
    leaf_hash: str = strawberry.field(description="RFC 9162 leaf hash of the event, base64.")
    checkpoint: Checkpoint = strawberry.field(
        description="The smallest signed checkpoint whose tree includes the event."
    )
    inclusion: InclusionProof = strawberry.field(
        description="Inclusion proof of the leaf in the checkpoint's tree."
    )


@strawberry.type(description="The data fields as they stood at a past log position.")
class AsOf(DataFields):
    position: int = strawberry.field(description="The log position the answer stands at.")
    time: str = strawberry.field(
        description="The instant it stands for: the time asked, or the last event's record time."
    )
    scope: strawberry.Private[Scope]

    @strawberry.field(
        description="The last event this answer reflects, with its inclusion proof in a signed "
        "checkpoint; null when the answer reflects no event yet, or its checkpoint is not signed "
        "yet (retry after the next checkpoint)."
    )
    async def proof(self, info: Info) -> AsOfProof | None:
        last = await read(info, _last_position, self.position)
        if last is None:
            return None
        return await in_thread(_proof, info.context.services, last)

    @strawberry.field(description="The authenticated caller.")
    def me(self, info: Info) -> AuthenticatedParty:
        caller = info.context.require_party()
        return AuthenticatedParty(
            id=strawberry.ID(caller.party_id),
            legal_name=caller.legal_name,
            role=caller.role,
            key_id=caller.key_id,
        )


def _resolve(conn: Connection, head: int, now: str, position: int | None, time: str | None) -> At:
    if time is not None:
        if time > now:
            raise ValidationFailed("time is in the future: the log is not there yet", field="time")
        return At(min(resolve_time(conn, time), head), time)
    assert position is not None
    if position < 0 or position > head:
        raise ValidationFailed(
            f"position must be between 0 and {head} (the views' head)", field="position"
        )
    recorded = conn.execute(
        select(AUDIT.c.recorded_through)
        .where(AUDIT.c.position <= position)
        .order_by(AUDIT.c.position.desc())
        .limit(1)
    ).scalar()
    return At(position, str(recorded or _BEFORE_ANY))


def _last_position(conn: Connection, position: int) -> int | None:
    query = select(AUDIT.c.position).where(AUDIT.c.position <= position)
    found = conn.execute(query.order_by(AUDIT.c.position.desc()).limit(1)).scalar()
    return None if found is None else int(found)


def _proof(services: Services, position: int) -> AsOfProof | None:
    leaf_index = services.tree.leaf_index(position)
    signed = None if leaf_index is None else services.notary.covering(leaf_index)
    if leaf_index is None or signed is None:
        return None
    _, leaf_hash = services.tree.leaf(leaf_index)
    hashes = services.tree.inclusion_proof(leaf_index, signed.size)
    return AsOfProof(
        position=position,
        leaf_index=leaf_index,
        leaf_hash=b64(leaf_hash),
        checkpoint=Checkpoint.of(signed),
        inclusion=InclusionProof(
            leaf_index=leaf_index, tree_size=signed.size, hashes=[b64(h) for h in hashes]
        ),
    )


async def resolve_as_of(info: Info, position: int | None, time: datetime | None) -> AsOf:
    """The ``asOf`` root field."""
    if (position is None) == (time is None):
        raise ValidationFailed("give exactly one of position and time", field="position")
    scope = await request_scope(info)
    at = await read(info, _resolve, scope.at.position, scope.now, position, time_text(time, "time"))
    return AsOf(position=at.position, time=at.time, scope=Scope(scope.authority, scope.now, at))
