"""Agreement terms as a view needs them: the terms in force, kept in the view's own state.

Views that judge events against an agreement (ownership, data, deliveries, reviews)
inherit :class:`FollowsTerms`: it handles the agreement events, keeps
``{"sponsor", "cmo", "status", "terms", "proposal", "pending"}`` per agreement in the
view's state (``terms`` is what is in force, ``None`` before both signed; only their
:func:`essentials`, to keep the state small) and calls
:meth:`FollowsTerms.terms_changed` after each of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ledger.domain.data_classes import spec_form
from ledger.domain.terms_schema import DEFAULT_REVIEW_CADENCE_MONTHS
from projections.view import Fact, Page, View, handles

__all__ = [
    "AGREEMENT_EVENTS",
    "FollowsTerms",
    "agreement_key",
    "agreement_of",
    "essentials",
    "normalised_terms",
]

AGREEMENT_EVENTS = (
    "AgreementProposed",
    "AgreementSigned",
    "AgreementAmended",
    "AgreementAmendmentSigned",
    "AgreementAmendmentRejected",
    "AgreementTerminated",
)

Agreement = dict[str, Any]


def agreement_key(agreement: str) -> str:
    """The state key of an agreement."""
    return f"agreement:{agreement}"


_KEPT = (
    "sponsor",
    "cmo",
    "confidential_elements",
    "ip_rule",
    "review_cadence_months",
    "deviation_deadline_hours",
)


def essentials(terms: dict[str, Any]) -> dict[str, Any]:
    """What views judge events by: the parties, each class's owner, form and delivery rule,
    confidential elements, IP rule, cadence and deviation deadline (not titles or formats)."""
    normal = normalised_terms(terms)
    kept = {name: normal.get(name) for name in _KEPT}
    kept["data_classes"] = {
        name: {
            "owner": spec.get("owner"),
            "form": spec_form(name, spec),
            "delivery": spec.get("delivery"),
        }
        for name, spec in (normal.get("data_classes") or {}).items()
    }
    return kept


def normalised_terms(terms: dict[str, Any]) -> dict[str, Any]:
    """Terms with the defaults the ledger fills in when it records them."""
    result = dict(terms)  # only top-level members are filled in: a shallow copy will do
    if result.get("review_cadence_months") is None:
        result["review_cadence_months"] = DEFAULT_REVIEW_CADENCE_MONTHS
    if result.get("confidential_elements") is None:
        result["confidential_elements"] = []
    return result


class FollowsTerms(View):
    """A view that keeps each agreement's terms in force in its state."""

    def prepare(self, page: Page, facts: Sequence[Fact]) -> None:
        """Read in bulk the subjects' agreements and those agreements' terms."""
        if page.state.whole:
            return  # every key is in memory already: nothing to read, so nothing to list
        subjects = [
            f"subject:{f.subject}"
            for f in facts
            if f.type not in AGREEMENT_EVENTS and f"subject:{f.subject}" not in page.state.memo
        ]
        page.state.prefetch(subjects)
        keys = set()
        for fact in facts:
            agreement = agreement_of(page, fact)
            if agreement is not None:
                keys.add(agreement_key(agreement))
        keys.update(self.state_keys(page, facts))
        page.state.prefetch(keys)

    def state_keys(self, page: Page, facts: Sequence[Fact]) -> Iterable[str]:
        """More keys of the state the handlers will read, prefetched with the agreements'
        in one query (the subjects' agreements are known by then; default: none)."""
        return ()

    def agreement(self, page: Page, agreement: str) -> Agreement | None:
        """The tracked agreement, or ``None``."""
        found: Agreement | None = page.state.get(agreement_key(agreement))
        return found

    def terms_changed(self, page: Page, fact: Fact, agreement: Agreement) -> None:
        """Called after each agreement event; ``agreement`` is the tracked record."""

    @handles(*AGREEMENT_EVENTS)
    def _agreement_event(self, page: Page, fact: Fact) -> None:
        key = agreement_key(fact.subject)
        record: Agreement | None = page.state.get(key)
        if fact.type == "AgreementProposed":
            proposal = essentials(fact.payload["terms"])
            record = {
                "sponsor": proposal["sponsor"],
                "cmo": proposal["cmo"],
                "status": "proposed",
                "terms": None,
                "proposal": proposal,
                "pending": None,
            }
        elif record is None:
            return  # an event of an agreement this view never saw proposed: nothing to keep
        else:
            _advance(record, fact)
        page.state.set(key, record)
        self.terms_changed(page, fact, record)


def agreement_of(page: Page, fact: Fact) -> str | None:
    """The agreement an event concerns: its subject, its payload, or its subject's memo."""
    if fact.type in AGREEMENT_EVENTS:
        return fact.subject
    named = fact.payload.get("agreement")
    if isinstance(named, str):
        return named
    known = page.state.fact(f"subject:{fact.subject}")
    return None if known is None else str(known[1])


def _advance(record: Agreement, fact: Fact) -> None:
    if fact.type == "AgreementSigned":
        record["status"] = "effective"
        record["terms"] = record["proposal"]
    elif fact.type == "AgreementAmended":
        record["pending"] = essentials(fact.payload["terms"])
    elif fact.type == "AgreementAmendmentSigned":
        record["terms"] = record["pending"]
        record["pending"] = None
    elif fact.type == "AgreementAmendmentRejected":
        record["pending"] = None
    elif fact.type == "AgreementTerminated":
        record["status"] = "terminated"
        record["pending"] = None
