"""Stored events by log position, for the signed envelopes the audit trail and the batch
trace link to; each is served only when the caller may read it in full."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from strawberry.dataloader import DataLoader

from api.access import can_read_event
from api.log_fields import LogEvent, in_thread, leaf_indexes
from api.permissions import forbidden
from api.queries.common import Info
from ledger.application import Ledger, Recorded
from ledger.envelope import StoredEvent

__all__ = ["load_event", "stored_events"]


def stored_events(ledger: Ledger, positions: Sequence[int]) -> dict[int, Recorded]:
    """The stored events at ``positions`` (one query), by position."""
    if not positions:
        return {}
    recorder: Any = ledger.recorder
    record_class = recorder.events_record_cls
    with recorder.transaction(commit=False) as session:
        rows = session.query(record_class).filter(record_class.id.in_(list(positions))).all()
        notifications = [
            Notification(
                id=r.id,
                originator_id=r.originator_id,
                originator_version=r.originator_version,
                topic=r.topic,
                state=bytes(r.state) if isinstance(r.state, memoryview) else r.state,
            )
            for r in rows
        ]
    found: dict[int, Recorded] = {}
    for notification in notifications:
        event: Any = ledger.mapper.to_domain_event(notification)
        found[notification.id] = Recorded(
            position=notification.id,
            subject=UUID(str(notification.originator_id)),
            version=notification.originator_version,
            topic=notification.topic,
            event=StoredEvent(event.envelope, event.signature, event.recorded_at),
        )
    return found


def _readable(context: Any, positions: list[int]) -> list[LogEvent | Exception]:
    ledger: Ledger = context.ledger
    events = stored_events(ledger, positions)
    leaves = leaf_indexes(ledger.engine, positions)
    result: list[LogEvent | Exception] = []
    for position in positions:
        recorded = events.get(position)
        if recorded is None or not can_read_event(context, recorded):
            result.append(
                forbidden(
                    f"{context.party.party_id} may not read the signed envelope at position "
                    f"{position}: it carries data or confidential elements not open to you",
                    "event",
                )
            )
            continue
        result.append(LogEvent.of(recorded, leaves.get(position)))
    return result


async def load_event(info: Info, position: int) -> LogEvent:
    """The event at ``position``, FORBIDDEN unless the caller may read it in full."""
    context = info.context
    found = context.dataloaders.get("log_events")
    if found is None:

        async def load(keys: list[int]) -> list[LogEvent | Exception]:
            return await in_thread(_readable, context, list(keys))

        found = context.dataloaders["log_events"] = DataLoader(load_fn=load)
    event: LogEvent = await found.load(position)
    return event
