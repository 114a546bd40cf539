"""Enhancement claims and their state.

``proj_enhancements``: one row per claim: agreement, claimant, ``priority`` (the log
position of the claim: earlier claims come first), title, summary, commitment, the
parameter versions and evidence it cites (JSON), the ownership claimed, the state
(``claimed``, ``acknowledged``, ``disputed``, ``resolved``), who responded and why, the
agreed owner, and when the dossier was disclosed.
``proj_enhancement_dossiers``: the disclosed dossier (base64) and salt, apart from the
claim so the query layer decides who reads it.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, MetaData, String, Text

from projections.temporal import POSITION, temporal_table
from projections.view import Fact, Page, View, dumps, handles

__all__ = ["DOSSIERS", "ENHANCEMENTS", "EnhancementsView"]

metadata = MetaData()

ENHANCEMENTS = temporal_table(
    "proj_enhancements",
    metadata,
    [Column("enhancement", String(36), nullable=False)],
    Column("agreement", String(36), nullable=False),
    Column("claimant", String(64), nullable=False),
    Column("claimed_at", String(30), nullable=False),
    Column("priority", POSITION, nullable=False),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("commitment", String(64), nullable=False),
    Column("parameter_versions", Text, nullable=False),
    Column("evidence", Text, nullable=False),
    Column("ownership_claimed", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("responded_by", String(64)),
    Column("responded_at", String(30)),
    Column("dispute_reason", Text),
    Column("owner", String(16)),
    Column("resolved_by", String(64)),
    Column("countersigned_by", String(64)),
    Column("resolved_at", String(30)),
    Column("disclosed_at", String(30)),
    Index("ix_proj_enhancements_agreement", "agreement", "valid_from"),
)

DOSSIERS = temporal_table(
    "proj_enhancement_dossiers",
    metadata,
    [Column("enhancement", String(36), nullable=False)],
    Column("dossier", Text, nullable=False),
    Column("salt", String(128), nullable=False),
    Column("disclosed_at", String(30), nullable=False),
)


class EnhancementsView(View):
    """Enhancement claims, responses, resolutions and disclosures."""

    name = "enhancements"
    tables = (ENHANCEMENTS, DOSSIERS)

    @handles("EnhancementClaimed")
    def _claimed(self, page: Page, fact: Fact) -> None:
        payload = fact.payload
        page.versions(ENHANCEMENTS).insert(
            (fact.subject,),
            fact.position,
            {
                "agreement": payload["agreement"],
                "claimant": fact.signer,
                "claimed_at": fact.recorded_at,
                "priority": fact.position,
                "title": payload["title"],
                "summary": payload["summary"],
                "commitment": payload["commitment"],
                "parameter_versions": dumps(payload["parameter_versions"]),
                "evidence": dumps(payload["evidence"]),
                "ownership_claimed": payload["ownership_claimed"],
                "status": "claimed",
                "responded_by": None,
                "responded_at": None,
                "dispute_reason": None,
                "owner": None,
                "resolved_by": None,
                "countersigned_by": None,
                "resolved_at": None,
                "disclosed_at": None,
            },
        )

    @handles("EnhancementAcknowledged", "EnhancementDisputed")
    def _responded(self, page: Page, fact: Fact) -> None:
        disputed = fact.type == "EnhancementDisputed"
        page.versions(ENHANCEMENTS).update(
            (fact.subject,),
            fact.position,
            status="disputed" if disputed else "acknowledged",
            responded_by=fact.signer,
            responded_at=fact.recorded_at,
            dispute_reason=fact.reason if disputed else None,
        )

    @handles("EnhancementResolved")
    def _resolved(self, page: Page, fact: Fact) -> None:
        countersignature = fact.payload.get("countersignature") or {}
        page.versions(ENHANCEMENTS).update(
            (fact.subject,),
            fact.position,
            status="resolved",
            owner=fact.payload["owner"],
            resolved_by=fact.signer,
            countersigned_by=countersignature.get("signer"),
            resolved_at=fact.recorded_at,
        )

    @handles("EnhancementDisclosed")
    def _disclosed(self, page: Page, fact: Fact) -> None:
        if page.versions(ENHANCEMENTS).update(
            (fact.subject,), fact.position, disclosed_at=fact.recorded_at
        ):
            page.versions(DOSSIERS).insert(
                (fact.subject,),
                fact.position,
                {
                    "dossier": fact.payload["dossier"],
                    "salt": fact.payload["salt"],
                    "disclosed_at": fact.recorded_at,
                },
            )
