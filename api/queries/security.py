# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""Security alerts as a query (R9): ``securityAlerts``.

The notary's ``SecurityAlert`` events, newest first: the notary sees every one, a party
those naming it (the rule of :func:`api.permissions.event_readable`, applied through
:func:`api.access.can_read_event` as for any event).
"""

from __future__ import annotations

from typing import Any

import strawberry
from eventsourcing.utils import get_topic
from sqlalchemy import select
from strawberry.scalars import JSON

from api.access import can_read_event
from api.context import Context
from api.log_fields import LogEvent, leaf_indexes
from api.queries.common import Info
from api.threads import in_thread
from ledger.domain.security import SecurityAlert as AlertAggregate

__all__ = ["SecurityAlert", "SecurityQuery"]


@strawberry.type(description="An identity locked after repeated failed sign-ins (R9).")
class SecurityAlert:
    position: int = strawberry.field(description="The alert event's log position.")
    identity: str = strawberry.field(description="The party id the failed attempts claimed.")
    failures: int = strawberry.field(description="Failed attempts counted in the window.")
    window_seconds: int
    locked_until: str = strawberry.field(description="When the lock ends, RFC 3339 UTC.")
    kinds: list[str] = strawberry.field(
        description="What failed: request-signature, console-sign-in."
    )
    recorded_at: str
    reason: str | None
    payload: JSON = strawberry.field(description="The alert's payload, as the notary signed it.")
    event: LogEvent = strawberry.field(description="The signed SecurityAlert event.")


@strawberry.type
class SecurityQuery:
    @strawberry.field(
        description="The notary's security alerts, newest first: all of them for the notary, "
        "those naming the caller for a party. identity narrows them to one identity."
    )
    async def security_alerts(
        self, info: Info, identity: str | None = None, first: int = 100
    ) -> list[SecurityAlert]:
        info.context.require_party()
        info.context.limits.page_size(first)
        return await in_thread(_alerts, info.context, identity, first)


def _alerts(context: Context, identity: str | None, first: int) -> list[SecurityAlert]:
    ledger = context.ledger
    table = ledger.storage.events_table
    topic = _topic()
    with ledger.engine.connect() as conn:
        positions = [
            int(p)
            for (p,) in conn.execute(
                select(table.c.id).where(table.c.topic == topic).order_by(table.c.id.desc())
            )
        ]
    found: list[SecurityAlert] = []
    recorded = ledger.read_at(positions)
    leaves = leaf_indexes(ledger.engine, positions)
    for position in positions:
        event = recorded.get(position)
        if event is None:
            continue
        payload: dict[str, Any] = dict(event.event.envelope["payload"])
        if identity is not None and payload.get("identity") != identity:
            continue
        if not can_read_event(context, event):
            continue
        found.append(_alert(event, payload, leaves.get(position)))
        if len(found) >= first:
            break
    return found


def _alert(event: Any, payload: dict[str, Any], leaf_index: int | None) -> SecurityAlert:
    envelope = event.event.envelope
    return SecurityAlert(
        position=event.position,
        identity=str(payload.get("identity")),
        failures=int(payload.get("failures", 0)),
        window_seconds=int(payload.get("window_seconds", 0)),
        locked_until=str(payload.get("locked_until")),
        kinds=[str(kind) for kind in payload.get("kinds", [])],
        recorded_at=event.event.recorded_at,
        reason=envelope.get("reason"),
        payload=payload,  # type: ignore[arg-type]
        event=LogEvent.of(event, leaf_index),
    )


def _topic() -> str:
    """The stored topic of ``SecurityAlert`` events."""
    created: type = AlertAggregate.SecurityAlert  # type: ignore[attr-defined]
    return get_topic(created)
