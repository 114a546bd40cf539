"""Stored events by log position, for the signed envelopes the audit trail and the batch
trace link to; each is served only when the caller may read it in full."""

from __future__ import annotations

from typing import Any

from api.access import can_read_event
from api.log_fields import LogEvent, leaf_indexes
from api.permissions import forbidden
from api.queries.common import Info, SharedLoader
from api.threads import in_thread
from ledger.application import Ledger

__all__ = ["load_event"]


def _readable(context: Any, positions: list[int]) -> list[LogEvent | Exception]:
    ledger: Ledger = context.ledger
    events = ledger.read_at(positions)
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

        found = context.dataloaders["log_events"] = SharedLoader(load_fn=load)
    event: LogEvent = await found.load(position)
    return event
