# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""The data fields shared by the root ``Query`` and ``asOf``.

At the root the parent is ``None`` and a field reads the views at their head; under
``asOf`` the parent carries the scope of the position asked for.
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.queries.agreements import Agreement, get_agreement, list_agreements
from api.queries.audit import AuditFilter, AuditTrail, audit_trail
from api.queries.batches import Batch, get_batch
from api.queries.capa import Capa, list_capas
from api.queries.changes import Change, list_changes
from api.queries.common import Info, time_text
from api.queries.deliveries import Delivery, list_deliveries
from api.queries.enhancements import Enhancement, list_enhancements
from api.queries.grants import Grant, grants_at, list_grants
from api.queries.parameters import Parameter, list_parameters
from api.queries.parties import Party, list_parties
from api.queries.reviews import ReviewStatus, list_reviews
from api.queries.visibility import PartyAccess, visible_to

__all__ = ["DEFAULT_PAGE", "DataFields"]

DEFAULT_PAGE = 50


@strawberry.type
class DataFields:
    """Root data fields (authorised per caller; see docs/access.md)."""

    @strawberry.field(description="Every admitted party: id, legal name, role.")
    async def parties(self, info: Info) -> list[Party]:
        return await list_parties(self, info)

    @strawberry.field(
        description="The agreements you are a party to or hold an active grant under."
    )
    async def agreements(self, info: Info, status: str | None = None) -> list[Agreement]:
        return await list_agreements(self, info, status)

    @strawberry.field(description="One agreement you may see (FORBIDDEN otherwise).")
    async def agreement(self, info: Info, id: strawberry.ID) -> Agreement | None:
        return await get_agreement(self, info, str(id))

    @strawberry.field(description="One batch you may see, by name (FORBIDDEN otherwise).")
    async def batch(self, info: Info, id: str) -> Batch | None:
        return await get_batch(self, info, id)

    @strawberry.field(description="The parameters of an agreement, with their revision history.")
    async def parameters(self, info: Info, agreement_id: strawberry.ID) -> list[Parameter] | None:
        return await list_parameters(self, info, str(agreement_id))

    @strawberry.field(description="Grants under agreements you may see, and your own.")
    async def grants(
        self, info: Info, agreement_id: strawberry.ID | None = None, active: bool | None = None
    ) -> list[Grant] | None:
        return await list_grants(self, info, _text(agreement_id), active)

    @strawberry.field(
        description="Access as it was: the grants `party` held in force at `validAt`, as the "
        "ledger knew them at position `knownAt` (default: now). Only grants you may see."
    )
    async def grants_at(
        self, info: Info, party: str, valid_at: datetime, known_at: int | None = None
    ) -> list[Grant] | None:
        return await grants_at(self, info, party, str(time_text(valid_at, "validAt")), known_at)

    @strawberry.field(
        description="What `party` could read of an agreement at valid time `at`, reproduced "
        "from the grants in force then as the ledger knew them at position `knownAt` "
        "(default: now). For the agreement's parties, and auditors and regulators holding "
        "a grant under it."
    )
    async def visible_to(
        self,
        info: Info,
        party: str,
        agreement_id: strawberry.ID,
        at: datetime,
        known_at: int | None = None,
    ) -> PartyAccess | None:
        return await visible_to(self, info, party, str(agreement_id), at, known_at)

    @strawberry.field(description="Enhancement claims under agreements you may see.")
    async def enhancements(
        self, info: Info, agreement_id: strawberry.ID | None = None
    ) -> list[Enhancement] | None:
        return await list_enhancements(self, info, _text(agreement_id))

    @strawberry.field(description="Review schedules (overdue: only those past due, or not).")
    async def reviews(
        self, info: Info, agreement_id: strawberry.ID | None = None, overdue: bool | None = None
    ) -> list[ReviewStatus] | None:
        return await list_reviews(self, info, _text(agreement_id), overdue)

    @strawberry.field(
        description="Change proposals (R22) under agreements you may see (open: neither "
        "rejected nor implemented, or not)."
    )
    async def changes(
        self, info: Info, agreement_id: strawberry.ID | None = None, open: bool | None = None
    ) -> list[Change] | None:
        return await list_changes(self, info, _text(agreement_id), open)

    @strawberry.field(
        description="CAPAs on batches you may see (batch: one batch; open: open ones, or not)."
    )
    async def capas(
        self,
        info: Info,
        agreement_id: strawberry.ID | None = None,
        batch: str | None = None,
        open: bool | None = None,
    ) -> list[Capa] | None:
        return await list_capas(self, info, _text(agreement_id), batch, open)

    @strawberry.field(description="Delivery obligations (late: late or missing, or not).")
    async def deliveries(
        self,
        info: Info,
        agreement_id: strawberry.ID | None = None,
        batch: str | None = None,
        late: bool | None = None,
    ) -> list[Delivery] | None:
        return await list_deliveries(self, info, _text(agreement_id), batch, late)

    @strawberry.field(description="The events you may see, a page at a time, in log order.")
    async def audit_trail(
        self,
        info: Info,
        filter: AuditFilter | None = None,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
    ) -> AuditTrail | None:
        return await audit_trail(self, info, filter, first, after)


def _text(value: strawberry.ID | None) -> str | None:
    return None if value is None else str(value)
