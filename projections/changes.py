"""Change proposals and their state (R22).

``proj_changes``: one row per change: agreement, change id, title, description, EC impact,
reporting category, affected parameters (JSON list of names), who proposed it and when,
the decision (``approved`` or ``rejected``, or null), who decided, when and why (a rejection's
reason), and who implemented it and when. ``status`` is ``proposed``, ``approved``,
``rejected`` or ``implemented`` (:attr:`ledger.domain.changes.Change.status`); a change is
open until it is rejected or implemented.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, MetaData, String, Text

from projections.temporal import temporal_table
from projections.view import Fact, Page, View, dumps, handles

__all__ = ["CHANGES", "CLOSED_CHANGE_STATUSES", "ChangesView"]

CLOSED_CHANGE_STATUSES = ("rejected", "implemented")
"""A change in one of these states is no longer open."""

metadata = MetaData()

CHANGES = temporal_table(
    "proj_changes",
    metadata,
    [Column("change", String(36), nullable=False)],
    Column("agreement", String(36), nullable=False),
    Column("change_id", String(64), nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("ec_impact", Boolean, nullable=False),
    Column("reporting_category", String(16), nullable=False),
    Column("affected_parameters", Text, nullable=False),
    Column("proposed_by", String(64), nullable=False),
    Column("proposed_at", String(30), nullable=False),
    Column("status", String(16), nullable=False),
    Column("decision", String(16)),
    Column("decided_by", String(64)),
    Column("decided_at", String(30)),
    Column("rejection_reason", Text),
    Column("implemented_by", String(64)),
    Column("implemented_at", String(30)),
    Index("ix_proj_changes_agreement", "agreement", "valid_from"),
)


class ChangesView(View):
    """Change proposals, decisions and implementations."""

    name = "changes"
    tables = (CHANGES,)

    @handles("ChangeProposed")
    def _proposed(self, page: Page, fact: Fact) -> None:
        payload = fact.payload
        page.versions(CHANGES).insert(
            (fact.subject,),
            fact.position,
            {
                "agreement": payload["agreement"],
                "change_id": payload["change"],
                "title": payload["title"],
                "description": payload["description"],
                "ec_impact": payload["ec_impact"],
                "reporting_category": payload["reporting_category"],
                "affected_parameters": dumps(list(payload["affected_parameters"])),
                "proposed_by": fact.signer,
                "proposed_at": fact.recorded_at,
                "status": "proposed",
                "decision": None,
                "decided_by": None,
                "decided_at": None,
                "rejection_reason": None,
                "implemented_by": None,
                "implemented_at": None,
            },
        )

    @handles("ChangeApproved", "ChangeRejected")
    def _decided(self, page: Page, fact: Fact) -> None:
        rejected = fact.type == "ChangeRejected"
        versions = page.versions(CHANGES)
        row = versions.get((fact.subject,))
        if row is None:  # pragma: no cover - a decision follows its proposal
            return
        decision = "rejected" if rejected else "approved"
        # A change without EC impact may be implemented before the counterparty decides.
        status = row["status"] if row["status"] == "implemented" else decision
        versions.update(
            (fact.subject,),
            fact.position,
            status=status,
            decision=decision,
            decided_by=fact.signer,
            decided_at=fact.recorded_at,
            rejection_reason=fact.reason if rejected else None,
        )

    @handles("ChangeImplemented")
    def _implemented(self, page: Page, fact: Fact) -> None:
        page.versions(CHANGES).update(
            (fact.subject,),
            fact.position,
            status="implemented",
            implemented_by=fact.signer,
            implemented_at=fact.recorded_at,
        )
