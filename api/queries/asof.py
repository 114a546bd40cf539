# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""``asOf(position | time)``: the root data fields answered from the views as they stood
at a log position, and the position it resolved to.

Position is authoritative; a time resolves to the last position whose events were all
recorded at or before it. The data is the data as it stood then; what the caller may
see of it is decided now (a grant that has since ended opens nothing).
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from sqlalchemy import select
from sqlalchemy.engine import Connection

from api.log_fields import AuthenticatedParty
from api.queries.common import At, Info, Scope, read, request_scope, time_text
from api.queries.fields import DataFields
from ledger.errors import ValidationFailed
from projections.audit import AUDIT, resolve_time

__all__ = ["AsOf", "resolve_as_of"]

_BEFORE_ANY = "1970-01-01T00:00:00.000Z"


@strawberry.type(description="The data fields as they stood at a past log position.")
class AsOf(DataFields):
    position: int = strawberry.field(description="The log position the answer stands at.")
    time: str = strawberry.field(
        description="The instant it stands for: the time asked, or the last event's record time."
    )
    scope: strawberry.Private[Scope]

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


async def resolve_as_of(info: Info, position: int | None, time: datetime | None) -> AsOf:
    """The ``asOf`` root field."""
    if (position is None) == (time is None):
        raise ValidationFailed("give exactly one of position and time", field="position")
    scope = await request_scope(info)
    at = await read(info, _resolve, scope.at.position, scope.now, position, time_text(time, "time"))
    return AsOf(position=at.position, time=at.time, scope=Scope(scope.authority, scope.now, at))
