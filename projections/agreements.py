"""Agreements: status, the terms in force, and every amendment.

``proj_agreements``: one row per agreement: sponsor, CMO, title, status (``proposed``,
``effective``, ``terminated``), who proposed it and when, the terms in force (the
proposal while only proposed) with their version number and ``effective_from``, the
pending amendment if any, and the termination.
``proj_agreement_terms``: each version of the terms that took effect; a version's row
is current while those terms are in force, so ``as_of`` gives the terms then in force.
``proj_agreement_amendments``: each amendment (keyed by the position that proposed it),
``pending``, then ``signed``, ``rejected``, ``withdrawn`` or ``lapsed`` (terminated).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Boolean, Column, Integer, MetaData, String, Text

from ledger.domain.validity import effective_from
from projections.temporal import POSITION, Row, temporal_table
from projections.terms import normalised_terms
from projections.view import Fact, Page, View, dumps, handles

__all__ = ["AGREEMENTS", "AMENDMENTS", "TERMS", "AgreementsView"]

metadata = MetaData()

AGREEMENTS = temporal_table(
    "proj_agreements",
    metadata,
    [Column("agreement", String(36), nullable=False)],
    Column("sponsor", String(64), nullable=False),
    Column("cmo", String(64), nullable=False),
    Column("title", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("proposed_by", String(64), nullable=False),
    Column("proposed_at", String(30), nullable=False),
    Column("terms_version", Integer, nullable=False),
    Column("effective_from", String(30)),
    Column("terms", Text, nullable=False),
    Column("pending", Boolean, nullable=False),
    Column("pending_amendment", POSITION),
    Column("terminated_at", String(30)),
    Column("terminated_by", String(64)),
    Column("termination_reason", Text),
)

TERMS = temporal_table(
    "proj_agreement_terms",
    metadata,
    [
        Column("agreement", String(36), nullable=False),
        Column("terms_version", Integer, nullable=False),
    ],
    Column("effective_from", String(30), nullable=False),
    Column("retroactive", Boolean, nullable=False),
    Column("terms", Text, nullable=False),
)

AMENDMENTS = temporal_table(
    "proj_agreement_amendments",
    metadata,
    [
        Column("agreement", String(36), nullable=False),
        Column("amendment", POSITION, nullable=False),
    ],
    Column("proposed_by", String(64), nullable=False),
    Column("proposed_at", String(30), nullable=False),
    Column("reason", Text),
    Column("terms", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("decided_by", String(64)),
    Column("decided_at", String(30)),
    Column("decision_reason", Text),
)


class AgreementsView(View):
    """Each agreement's status, terms in force and amendments."""

    name = "agreements"
    tables = (AGREEMENTS, TERMS, AMENDMENTS)

    def prepare(self, page: Page, facts: Sequence[Fact]) -> None:
        """Read in bulk the page's agreements, their terms and amendments."""
        subjects = {f.subject for f in facts if f.type != "AgreementProposed"}
        for table in (AGREEMENTS, TERMS, AMENDMENTS):
            page.versions(table).prefetch(subjects)

    @handles("AgreementProposed")
    def _proposed(self, page: Page, fact: Fact) -> None:
        terms = normalised_terms(fact.payload["terms"])
        page.versions(AGREEMENTS).insert(
            (fact.subject,),
            fact.position,
            {
                "sponsor": terms["sponsor"],
                "cmo": terms["cmo"],
                "title": terms["title"],
                "status": "proposed",
                "proposed_by": fact.signer,
                "proposed_at": fact.recorded_at,
                "terms_version": 0,
                "effective_from": None,
                "terms": dumps(terms),
                "pending": False,
                "pending_amendment": None,
                "terminated_at": None,
                "terminated_by": None,
                "termination_reason": None,
            },
        )

    @handles("AgreementSigned")
    def _signed(self, page: Page, fact: Fact) -> None:
        row = page.versions(AGREEMENTS).get((fact.subject,))
        if row is not None:
            self._take_effect(page, fact, row, row["terms"], status="effective")

    @handles("AgreementAmended")
    def _amended(self, page: Page, fact: Fact) -> None:
        key = (fact.subject,)
        if page.versions(AGREEMENTS).update(
            key, fact.position, pending=True, pending_amendment=fact.position
        ):
            page.versions(AMENDMENTS).insert(
                (fact.subject, fact.position),
                fact.position,
                {
                    "proposed_by": fact.signer,
                    "proposed_at": fact.recorded_at,
                    "reason": fact.reason,
                    "terms": dumps(normalised_terms(fact.payload["terms"])),
                    "status": "pending",
                    "decided_by": None,
                    "decided_at": None,
                    "decision_reason": None,
                },
            )

    @handles("AgreementAmendmentSigned")
    def _amendment_signed(self, page: Page, fact: Fact) -> None:
        row = page.versions(AGREEMENTS).get((fact.subject,))
        if row is None or row["pending_amendment"] is None:
            return
        amendment = self._decide(page, fact, row, "signed")
        if amendment is not None:
            self._take_effect(page, fact, row, amendment["terms"], status=row["status"])

    @handles("AgreementAmendmentRejected")
    def _amendment_rejected(self, page: Page, fact: Fact) -> None:
        row = page.versions(AGREEMENTS).get((fact.subject,))
        if row is None or row["pending_amendment"] is None:
            return
        amendment = page.versions(AMENDMENTS).get((fact.subject, row["pending_amendment"]))
        withdrawn = amendment is not None and amendment["proposed_by"] == fact.signer
        self._decide(page, fact, row, "withdrawn" if withdrawn else "rejected")
        page.versions(AGREEMENTS).update(
            (fact.subject,), fact.position, pending=False, pending_amendment=None
        )

    @handles("AgreementTerminated")
    def _terminated(self, page: Page, fact: Fact) -> None:
        row = page.versions(AGREEMENTS).get((fact.subject,))
        if row is None:
            return
        if row["pending_amendment"] is not None:
            self._decide(page, fact, row, "lapsed")
        if row["terms_version"]:
            page.versions(TERMS).end((fact.subject, row["terms_version"]), fact.position)
        page.versions(AGREEMENTS).update(
            (fact.subject,),
            fact.position,
            status="terminated",
            pending=False,
            pending_amendment=None,
            terminated_at=fact.recorded_at,
            terminated_by=fact.signer,
            termination_reason=fact.reason,
        )

    def _decide(self, page: Page, fact: Fact, row: Row, status: str) -> Row | None:
        return page.versions(AMENDMENTS).update(
            (fact.subject, row["pending_amendment"]),
            fact.position,
            status=status,
            decided_by=fact.signer,
            decided_at=fact.recorded_at,
            decision_reason=fact.reason,
        )

    def _take_effect(self, page: Page, fact: Fact, row: Row, terms: str, status: str) -> None:
        version = int(row["terms_version"]) + 1
        if row["terms_version"]:
            page.versions(TERMS).end((fact.subject, row["terms_version"]), fact.position)
        effective = effective_from(fact.payload, fact.recorded_at)
        page.versions(TERMS).put(
            (fact.subject, version),
            fact.position,
            {
                "effective_from": effective,
                "retroactive": effective < fact.recorded_at,
                "terms": terms,
            },
        )
        parsed = json.loads(terms)
        page.versions(AGREEMENTS).update(
            (fact.subject,),
            fact.position,
            status=status,
            title=parsed["title"],
            terms_version=version,
            effective_from=effective,
            terms=terms,
            pending=False,
            pending_amendment=None,
        )
