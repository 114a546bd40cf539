"""Ownership: who owns each data class under each agreement, and each resolved enhancement.

``proj_data_ownership``: per agreement and data class, the owner under the terms in
force (a new version only when the owner changes) and the class's form, with the
agreement's sponsor and CMO. Ownership stays after termination and after an amendment
retires the class: the data recorded under it is still owned, and read in its form.
``proj_enhancement_ownership``: per resolved enhancement, the agreed owner (``sponsor``,
``cmo`` or ``joint``) and the parties that hold it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Column, Index, MetaData, String, Text

from ledger.domain.data_classes import spec_form
from projections.temporal import temporal_table
from projections.terms import Agreement, FollowsTerms
from projections.view import Fact, Page, dumps, handles, state_table

__all__ = ["DATA_OWNERSHIP", "ENHANCEMENT_OWNERSHIP", "OwnershipView"]

metadata = MetaData()

DATA_OWNERSHIP = temporal_table(
    "proj_data_ownership",
    metadata,
    [
        Column("agreement", String(36), nullable=False),
        Column("data_class", String(63), nullable=False),
    ],
    Column("owner", String(64), nullable=False),
    Column("form", String(16), nullable=False),
    Column("sponsor", String(64), nullable=False),
    Column("cmo", String(64), nullable=False),
    Index("ix_proj_data_ownership_owner", "owner", "valid_from"),
)

ENHANCEMENT_OWNERSHIP = temporal_table(
    "proj_enhancement_ownership",
    metadata,
    [Column("enhancement", String(36), nullable=False)],
    Column("agreement", String(36), nullable=False),
    Column("owner", String(16), nullable=False),
    Column("owner_parties", Text, nullable=False),
    Column("resolved_at", String(30), nullable=False),
)

STATE = state_table("proj_ownership_state", metadata)


class OwnershipView(FollowsTerms):
    """Owners of data classes and of resolved enhancements."""

    name = "ownership"
    tables = (DATA_OWNERSHIP, ENHANCEMENT_OWNERSHIP)
    state = STATE

    def prepare(self, page: Page, facts: Sequence[Fact]) -> None:
        """Also read in bulk the owners under the page's agreements."""
        super().prepare(page, facts)
        signed = ("AgreementSigned", "AgreementAmendmentSigned")
        page.versions(DATA_OWNERSHIP).prefetch(f.subject for f in facts if f.type in signed)

    def terms_changed(self, page: Page, fact: Fact, agreement: Agreement) -> None:
        """Record the owners of the terms that just took effect."""
        if fact.type not in ("AgreementSigned", "AgreementAmendmentSigned"):
            return
        terms = agreement["terms"]
        for data_class, spec in sorted(terms["data_classes"].items()):
            page.versions(DATA_OWNERSHIP).put(
                (fact.subject, data_class),
                fact.position,
                {
                    "owner": spec["owner"],
                    "form": spec_form(data_class, spec),
                    "sponsor": agreement["sponsor"],
                    "cmo": agreement["cmo"],
                },
            )

    @handles("EnhancementClaimed")
    def _claimed(self, page: Page, fact: Fact) -> None:
        page.state.remember(f"subject:{fact.subject}", [None, fact.payload["agreement"]])

    @handles("EnhancementResolved")
    def _resolved(self, page: Page, fact: Fact) -> None:
        known = page.state.fact(f"subject:{fact.subject}")
        agreement = None if known is None else self.agreement(page, known[1])
        if known is None or agreement is None:
            return
        agreement_id = known[1]
        owner = fact.payload["owner"]
        parties = (
            [agreement["sponsor"], agreement["cmo"]] if owner == "joint" else [agreement[owner]]
        )
        page.versions(ENHANCEMENT_OWNERSHIP).insert(
            (fact.subject,),
            fact.position,
            {
                "agreement": agreement_id,
                "owner": owner,
                "owner_parties": dumps(parties),
                "resolved_at": fact.recorded_at,
            },
        )
