"""Grant scope: whether a grant covers a piece of data, and whether it is open at a time.

One definition for every layer: the API decides reads with it (:mod:`api.permissions`),
the views answer with it, and the Grant aggregate exposes its own (:attr:`Grant.scope`).
Pure: it works on text times (RFC 3339 UTC with milliseconds, which order as text) and
imports nothing but the standard library.

A grant covers an item when the item is under the grant's agreement, of one of its data
classes, and meets each restriction the grant makes: its parameters, its batches, its
window of data times (``[from, until)``). A restriction is never met by an item that
does not say (a ``None`` parameter, batch or time). A grant is open from the later of
its ``valid_from`` and the time it was recorded (what a party could see on a past date
never changes afterwards, R27) until ``valid_until`` or its revocation, both exclusive.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DataItem", "GrantScope"]


@dataclass(frozen=True, slots=True)
class DataItem:
    """One piece of data as the rules see it; ``data_time`` is canonical UTC text."""

    agreement: str
    data_class: str
    batch: str | None
    parameter: str | None = None
    data_time: str | None = None


@dataclass(frozen=True, slots=True)
class GrantScope:
    """What one grant opens, to whom, and when."""

    id: str
    agreement: str
    grantor: str
    grantee: str
    data_classes: frozenset[str]
    parameters: frozenset[str]
    batches: frozenset[str]
    window_from: str | None
    window_until: str | None
    starts_at: str
    ends_at: str | None
    granted_at: str
    revoked_at: str | None
    include_confidential: bool
    enhancements: bool = False
    """Opens the agreement's enhancement claims, commitments and disclosed dossiers."""

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> GrantScope:
        """The scope of a ``proj_grants`` row (lists stored as JSON text)."""
        return cls(
            id=str(row["grant_id"]),
            agreement=str(row["agreement"]),
            grantor=str(row["grantor"]),
            grantee=str(row["grantee"]),
            data_classes=frozenset(json.loads(row["data_classes"])),
            parameters=frozenset(json.loads(row["parameters"])),
            batches=frozenset(json.loads(row["batches"])),
            window_from=row["window_from"],
            window_until=row["window_until"],
            starts_at=str(row["starts_at"]),
            ends_at=row["ends_at"],
            granted_at=str(row["granted_at"]),
            revoked_at=row["revoked_at"],
            include_confidential=bool(row["include_confidential"]),
            enhancements=bool(row.get("enhancements") or False),
        )

    def is_active_at(self, now: str) -> bool:
        """Open at ``now``: started (never before it was recorded), not ended, not revoked."""
        if now < max(self.starts_at, self.granted_at):
            return False
        if self.ends_at is not None and now >= self.ends_at:
            return False
        return self.revoked_at is None or now < self.revoked_at

    def opens_batch(self, batch: str | None) -> bool:
        """True when the grant's batch restriction (if any) names ``batch``."""
        return not self.batches or batch in self.batches

    def covers(self, item: DataItem) -> bool:
        """The item is in scope (whether the grant is open is :meth:`is_active_at`)."""
        if item.agreement != self.agreement or item.data_class not in self.data_classes:
            return False
        if self.parameters and item.parameter not in self.parameters:
            return False
        if not self.opens_batch(item.batch):
            return False
        if self.window_from is None and self.window_until is None:
            return True
        if item.data_time is None:
            return False
        if self.window_from is not None and item.data_time < self.window_from:
            return False
        return self.window_until is None or item.data_time < self.window_until

    def describe(self) -> str:
        """The scope in words, for refusals."""
        parts = [f"grant {self.id}: {', '.join(sorted(self.data_classes))}"]
        if self.parameters:
            parts.append(f"parameters {', '.join(sorted(self.parameters))}")
        if self.batches:
            parts.append(f"batches {', '.join(sorted(self.batches))}")
        if self.window_from is not None or self.window_until is not None:
            parts.append(f"data from {self.window_from or '-'} until {self.window_until or '-'}")
        return "; ".join(parts)
