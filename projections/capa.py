"""Corrective and preventive actions.

``proj_capas``: one row per CAPA: agreement, CAPA id, batch, the records it addresses
(JSON list of ids), description, owner, who opened it and when, and once closed: when,
the effectiveness check and the reason. ``status`` is ``open`` or ``closed``.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, MetaData, String, Text

from projections.temporal import temporal_table
from projections.view import Fact, Page, View, dumps, handles

__all__ = ["CAPAS", "CapasView"]

metadata = MetaData()

CAPAS = temporal_table(
    "proj_capas",
    metadata,
    [Column("capa", String(36), nullable=False)],
    Column("agreement", String(36), nullable=False),
    Column("capa_id", String(64), nullable=False),
    Column("batch", String(64), nullable=False),
    Column("records", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("owner", String(64), nullable=False),
    Column("opened_by", String(64), nullable=False),
    Column("opened_at", String(30), nullable=False),
    Column("status", String(16), nullable=False),
    Column("closed_at", String(30)),
    Column("effectiveness_check", Text),
    Column("close_reason", Text),
    Index("ix_proj_capas_agreement", "agreement", "valid_from"),
    Index("ix_proj_capas_batch", "batch", "valid_from"),
)


class CapasView(View):
    """CAPAs opened against batch records, and their closure."""

    name = "capas"
    tables = (CAPAS,)

    @handles("CapaOpened")
    def _opened(self, page: Page, fact: Fact) -> None:
        payload = fact.payload
        page.versions(CAPAS).insert(
            (fact.subject,),
            fact.position,
            {
                "agreement": payload["agreement"],
                "capa_id": payload["capa"],
                "batch": payload["batch"],
                "records": dumps(list(payload["records"])),
                "description": payload["description"],
                "owner": payload["owner"],
                "opened_by": fact.signer,
                "opened_at": fact.recorded_at,
                "status": "open",
                "closed_at": None,
                "effectiveness_check": None,
                "close_reason": None,
            },
        )

    @handles("CapaClosed")
    def _closed(self, page: Page, fact: Fact) -> None:
        page.versions(CAPAS).update(
            (fact.subject,),
            fact.position,
            status="closed",
            closed_at=fact.recorded_at,
            effectiveness_check=fact.payload["effectiveness_check"],
            close_reason=fact.reason,
        )
