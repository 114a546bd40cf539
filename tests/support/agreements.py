"""Agreements, grants and reviews for tests: the shortest honest path to each.

``propose_and_sign`` gives an agreement in force, ``grant`` an access grant,
``complete_review`` a review signed by both parties; ``refused`` checks a refusal's
code and field and that nothing was stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest

from ledger.application import Appended
from ledger.domain.agreements import DATA_CLASSES, Agreement
from ledger.domain.grants import TIME_BOXED_ROLES
from ledger.domain.reviews import add_months
from ledger.errors import LedgerError
from ledger.log.countersign import countersign
from ledger.timeutil import format_utc, now_utc, parse_utc
from tests.support.world import ORIGIN, World, agreement_terms

__all__ = [
    "complete_review",
    "grant",
    "propose_and_sign",
    "refused",
    "review_payload",
]


@contextmanager
def refused(world: World, error: type[LedgerError], field: str | None) -> Iterator[None]:
    """Expect ``error`` naming ``field``, with the log unchanged."""
    head = world.ledger.head()
    with pytest.raises(error) as info:
        yield
    assert info.value.code == error.code, info.value
    assert info.value.field == field, info.value
    assert world.ledger.head() == head, "a refused command stored something"


def propose_and_sign(
    world: World,
    sponsor: str = "northwind-bio",
    cmo: str = "contoso-cmo",
    terms: dict[str, Any] | None = None,
) -> uuid.UUID:
    """An agreement in force: proposed by the sponsor, signed by the CMO."""
    agreement_id = uuid.uuid4()
    payload = {"terms": terms if terms is not None else agreement_terms(sponsor, cmo)}
    world[sponsor].submit(
        world.ledger, "AgreementProposed", agreement_id, payload, meaning="authored"
    )
    world[cmo].submit(world.ledger, "AgreementSigned", agreement_id, {}, meaning="signed")
    return agreement_id


MIGRATED = "quality agreement QA-2023-07, in force on paper before it was recorded here"


def sign_retroactively(
    world: World,
    since: str,
    reason: str | None = MIGRATED,
    sponsor: str = "northwind-bio",
    cmo: str = "contoso-cmo",
) -> uuid.UUID:
    """An agreement whose terms the CMO signs as in force since ``since`` (a migration)."""
    agreement_id = uuid.uuid4()
    payload = {"terms": agreement_terms(sponsor, cmo)}
    world[sponsor].submit(
        world.ledger, "AgreementProposed", agreement_id, payload, meaning="authored"
    )
    world[cmo].submit(
        world.ledger,
        "AgreementSigned",
        agreement_id,
        {"effective_from": since},
        meaning="signed",
        reason=reason,
    )
    return agreement_id


def grant(
    world: World, agreement_id: uuid.UUID, grantor: str, grantee: str, **scope: Any
) -> uuid.UUID:
    """A grant from ``grantor`` to ``grantee``; ``scope`` overrides payload members (None drops).

    By default it covers every data class the grantor owns (every class for
    ``include_confidential``) and, for a regulator or auditor, lasts 14 days.
    """
    agreement = world.ledger.get_aggregate(agreement_id, Agreement)
    # A confidential grant opens the CMO's elements of any class; data grants, owned classes.
    confidential = bool(scope.get("include_confidential"))
    owned = [
        c
        for c in DATA_CLASSES
        if confidential or agreement is None or agreement.owner_of(c) == grantor
    ]
    payload: dict[str, Any] = {
        "agreement": str(agreement_id),
        "grantee": grantee,
        "data_classes": owned,
        "purpose": f"{grantee} reviews the process history",
    }
    grantee_party = world.ledger.party(grantee)
    if grantee_party is not None and grantee_party.role in TIME_BOXED_ROLES:
        payload["valid_until"] = format_utc(now_utc() + timedelta(days=14))
    payload.update(scope)
    payload = {key: value for key, value in payload.items() if value is not None}
    grant_id = uuid.uuid4()
    world[grantor].submit(world.ledger, "AccessGranted", grant_id, payload, meaning="granted")
    return grant_id


def review_payload(
    world: World,
    agreement_id: uuid.UUID,
    review_id: uuid.UUID,
    countersigned_by: str | None,
    **payload: Any,
) -> dict[str, Any]:
    """A ``ReviewCompleted`` payload countersigned by ``countersigned_by`` (None: not at all).

    ``payload`` overrides members; ``next_due`` defaults to six months after ``period_end``.
    """
    period_end = payload.pop("period_end", format_utc(now_utc() - timedelta(minutes=1)))
    body: dict[str, Any] = {
        "agreement": str(agreement_id),
        "period_end": period_end,
        "outcome": "DO alert limits tightened to 35-50 %; other CPPs confirmed.",
        "parameters_confirmed": [],
        "parameters_revised": [],
        "next_due": format_utc(add_months(parse_utc(period_end, field="period_end"), 6)),
    }
    body.update(payload)
    body = {key: value for key, value in body.items() if value is not None}
    if countersigned_by is not None:
        body["countersignature"] = countersign(
            ORIGIN,
            "ReviewCompleted",
            str(review_id),
            body,
            countersigned_by,
            world[countersigned_by].key,
        )
    return body


def complete_review(
    world: World, agreement_id: uuid.UUID, by: str, countersigned_by: str, **payload: Any
) -> Appended:
    """A review submitted by ``by`` and countersigned by ``countersigned_by``."""
    review_id = uuid.uuid4()
    body = review_payload(world, agreement_id, review_id, countersigned_by, **payload)
    return world[by].submit(world.ledger, "ReviewCompleted", review_id, body, meaning="completed")
