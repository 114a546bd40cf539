"""Who may read a stored event through ``event(leafIndex)`` and the ``events`` subscription.

:func:`can_read_event` is the one place the log fields ask. It is called in a worker
thread (it may query the database). It applies the access model of the data queries
(:func:`api.access.can_read_event`, ``docs/access.md``): party events are everyone's;
an agreement's events are its sponsor's, its CMO's and its active grantees'; a batch's
events need the batch, and a data event's envelope needs every record and chunk it
carries (confidential elements included). The notary reads every event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from api import access

if TYPE_CHECKING:
    from api.context import Context
    from ledger.application import Recorded

__all__ = ["can_read_event"]


def can_read_event(context: Context, recorded: Recorded) -> bool:
    """Whether the context's caller may read ``recorded``."""
    return access.can_read_event(context, recorded)
