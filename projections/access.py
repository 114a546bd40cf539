"""Access grants: who may see what of which agreement, when, and whether confidential
elements are included.

``proj_grants``: one row per grant: agreement, grantor, grantee, scope (data classes,
parameters and batches as JSON lists, empty = no restriction; an optional data-time
window), ``starts_at``/``ends_at`` (the grant's validity), ``granted_at``, purpose,
``include_confidential``, and once revoked ``revoked_at``/``revoked_by``/reason.

Whether a row's grant covers an item and is open at a time is
:class:`ledger.domain.scope.GrantScope`'s to say (``GrantScope.from_row``).
:func:`grants_as_of` is the indexed query behind "which grants did this party hold at
position P".
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Column, Index, MetaData, String, Text, select
from sqlalchemy.engine import Connection

from projections.temporal import Row, as_of, temporal_table
from projections.times import utc
from projections.view import Fact, Page, View, dumps, handles

__all__ = ["GRANTS", "AccessView", "grants_as_of"]

metadata = MetaData()

GRANTS = temporal_table(
    "proj_grants",
    metadata,
    [Column("grant_id", String(36), nullable=False)],
    Column("agreement", String(36), nullable=False),
    Column("grantor", String(64), nullable=False),
    Column("grantee", String(64), nullable=False),
    Column("data_classes", Text, nullable=False),
    Column("parameters", Text, nullable=False),
    Column("batches", Text, nullable=False),
    Column("window_from", String(30)),
    Column("window_until", String(30)),
    Column("starts_at", String(30), nullable=False),
    Column("ends_at", String(30)),
    Column("granted_at", String(30), nullable=False),
    Column("purpose", Text, nullable=False),
    Column("include_confidential", Boolean, nullable=False),
    Column("enhancements", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("revoked_at", String(30)),
    Column("revoked_by", String(64)),
    Column("revoke_reason", Text),
    Index("ix_proj_grants_grantee", "grantee", "agreement", "valid_from"),
    Index("ix_proj_grants_agreement", "agreement", "valid_from"),
)


def _utc(text: Any) -> str | None:
    # One spelling per instant, as the Grant aggregate keeps it, so times compare as text.
    return None if text is None else utc(text)


def grants_as_of(
    conn: Connection, position: int, grantee: str | None = None, agreement: str | None = None
) -> list[Row]:
    """Grants as they stood at ``position`` (revoked ones included, with their status)."""
    query = select(GRANTS).where(as_of(GRANTS, position))
    if grantee is not None:
        query = query.where(GRANTS.c.grantee == grantee)
    if agreement is not None:
        query = query.where(GRANTS.c.agreement == agreement)
    return [dict(row._mapping) for row in conn.execute(query.order_by(GRANTS.c.grant_id))]


class AccessView(View):
    """Grants, their scope and validity, and their revocations."""

    name = "access"
    tables = (GRANTS,)

    @handles("AccessGranted")
    def _granted(self, page: Page, fact: Fact) -> None:
        payload = fact.payload
        window = payload.get("window") or {}
        page.versions(GRANTS).insert(
            (fact.subject,),
            fact.position,
            {
                "agreement": payload["agreement"],
                "grantor": fact.signer,
                "grantee": payload["grantee"],
                "data_classes": dumps(list(payload["data_classes"])),
                "parameters": dumps(list(payload.get("parameters") or [])),
                "batches": dumps(list(payload.get("batches") or [])),
                "window_from": _utc(window.get("from")),
                "window_until": _utc(window.get("until")),
                "starts_at": _utc(payload.get("valid_from")) or fact.recorded_at,
                "ends_at": _utc(payload.get("valid_until")),
                "granted_at": fact.recorded_at,
                "purpose": payload["purpose"],
                "include_confidential": bool(payload.get("include_confidential", False)),
                "enhancements": bool(payload.get("enhancements", False)),
                "status": "active",
                "revoked_at": None,
                "revoked_by": None,
                "revoke_reason": None,
            },
        )

    @handles("AccessRevoked")
    def _revoked(self, page: Page, fact: Fact) -> None:
        page.versions(GRANTS).update(
            (fact.subject,),
            fact.position,
            status="revoked",
            revoked_at=fact.recorded_at,
            revoked_by=fact.signer,
            revoke_reason=fact.reason,
        )
