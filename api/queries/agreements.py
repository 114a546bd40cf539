# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""``agreements`` and ``agreement(id)``: the agreements the caller may see, with their
terms (every version), amendments and everything recorded under them.

An agreement is visible to its sponsor and CMO and to a party holding an active grant
under it. Asking for one the caller may not see (or that does not exist) is FORBIDDEN.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
from sqlalchemy import select
from sqlalchemy.engine import Connection
from strawberry.scalars import JSON

from api.permissions import forbidden
from api.queries.common import (
    At,
    Info,
    Scope,
    as_json,
    at_position,
    by_agreement,
    loader,
    read,
    scope_of,
)
from ledger.errors import NotFound
from projections.agreements import AGREEMENTS, AMENDMENTS, TERMS

if TYPE_CHECKING:
    from api.queries.batches import Batch
    from api.queries.deliveries import Delivery
    from api.queries.enhancements import Enhancement
    from api.queries.grants import Grant
    from api.queries.parameters import Parameter
    from api.queries.reviews import ReviewStatus

__all__ = [
    "Agreement",
    "Amendment",
    "DataOwner",
    "TermsVersion",
    "get_agreement",
    "list_agreements",
    "load_agreement",
    "require_agreement",
]


@strawberry.type(description="One version of the terms and when it took effect.")
class TermsVersion:
    version: int
    effective_from: str
    retroactive: bool = strawberry.field(
        description="Made effective from a time before its approval was recorded (with a reason)."
    )
    terms: JSON
    in_force: bool = strawberry.field(description="In force at the position asked about.")


@strawberry.type(description="A proposed change of terms and its outcome.")
class Amendment:
    position: int = strawberry.field(description="Log position of the proposal (its id).")
    proposed_by: str
    proposed_at: str
    reason: str | None
    terms: JSON
    status: str = strawberry.field(
        description="pending, signed, rejected, withdrawn or lapsed (terminated)."
    )
    decided_by: str | None
    decided_at: str | None
    decision_reason: str | None


@strawberry.type(description="Who owns a data class under the terms in force.")
class DataOwner:
    data_class: str
    owner: str


@strawberry.type(description="A quality agreement between a sponsor and a CMO.")
class Agreement:
    id: strawberry.ID
    title: str
    sponsor: str
    cmo: str
    status: str = strawberry.field(description="proposed, effective or terminated.")
    proposed_by: str
    proposed_at: str
    terms_version: int = strawberry.field(description="Version in force (0: only proposed).")
    effective_from: str | None
    terms: JSON = strawberry.field(description="The terms in force (the proposal until signed).")
    amendment_pending: bool
    terminated_at: str | None
    terminated_by: str | None
    termination_reason: str | None
    terms_data: strawberry.Private[dict[str, Any]]
    scope: strawberry.Private[Scope]

    @strawberry.field(description="Owner of each data class under the terms in force.")
    def data_owners(self) -> list[DataOwner]:
        classes: dict[str, Any] = self.terms_data.get("data_classes", {})
        return [DataOwner(data_class=c, owner=str(v["owner"])) for c, v in sorted(classes.items())]

    @strawberry.field(description="Every version of the terms that took effect, oldest first.")
    async def terms_history(self, info: Info) -> list[TermsVersion]:
        return await loader(info, "terms_history", _terms_history).load(
            (self.scope.at, str(self.id))
        )

    @strawberry.field(description="Every amendment proposed, oldest first.")
    async def amendments(self, info: Info) -> list[Amendment]:
        return await loader(info, "amendments", _AMENDMENTS).load((self.scope.at, str(self.id)))

    # The modules below import this one (for its permission check): imported when used.

    @strawberry.field(
        description="Batches made under the agreement that the caller may see, by start "
        "time; latest: only the latest that many (1 to the page size limit)."
    )
    async def batches(
        self, info: Info, latest: int | None = None
    ) -> list[Annotated[Batch, strawberry.lazy("api.queries.batches")]]:
        from api.queries.batches import agreement_batches

        if latest is not None:
            info.context.limits.page_size(latest, field="latest")
        return await agreement_batches(self.scope, info, str(self.id), latest)

    @strawberry.field(description="The agreement's parameters with their limits history.")
    async def parameters(
        self, info: Info
    ) -> list[Annotated[Parameter, strawberry.lazy("api.queries.parameters")]]:
        from api.queries.parameters import agreement_parameters

        return await agreement_parameters(self.scope, info, str(self.id))

    @strawberry.field(description="Grants under the agreement.")
    async def grants(
        self, info: Info
    ) -> list[Annotated[Grant, strawberry.lazy("api.queries.grants")]]:
        from api.queries.grants import agreement_grants

        return await agreement_grants(self.scope, info, str(self.id))

    @strawberry.field(description="Enhancement claims under the agreement.")
    async def enhancements(
        self, info: Info
    ) -> list[Annotated[Enhancement, strawberry.lazy("api.queries.enhancements")]]:
        from api.queries.enhancements import agreement_enhancements

        return await agreement_enhancements(self.scope, info, str(self.id))

    @strawberry.field(description="The review schedule and completed reviews.")
    async def review(
        self, info: Info
    ) -> Annotated[ReviewStatus, strawberry.lazy("api.queries.reviews")] | None:
        from api.queries.reviews import agreement_review

        return await agreement_review(self.scope, info, str(self.id))

    @strawberry.field(description="Delivery obligations of the batches the caller may see.")
    async def deliveries(
        self, info: Info, late: bool | None = None
    ) -> list[Annotated[Delivery, strawberry.lazy("api.queries.deliveries")]]:
        from api.queries.deliveries import agreement_deliveries

        return await agreement_deliveries(self.scope, info, str(self.id), late)


def agreement_of(row: Any, scope: Scope) -> Agreement:
    """The GraphQL view of a ``proj_agreements`` row."""
    terms: dict[str, Any] = json.loads(row.terms)
    return Agreement(
        id=strawberry.ID(row.agreement),
        title=row.title,
        sponsor=row.sponsor,
        cmo=row.cmo,
        status=row.status,
        proposed_by=row.proposed_by,
        proposed_at=row.proposed_at,
        terms_version=row.terms_version,
        effective_from=row.effective_from,
        terms=cast(JSON, terms),
        terms_data=terms,
        amendment_pending=bool(row.pending),
        terminated_at=row.terminated_at,
        terminated_by=row.terminated_by,
        termination_reason=row.termination_reason,
        scope=scope,
    )


def _terms_history(conn: Connection, keys: list[tuple[At, str]]) -> list[list[TermsVersion]]:
    found: dict[tuple[At, str], list[TermsVersion]] = {key: [] for key in keys}
    for at in {at for at, _ in keys}:
        ids = sorted({a for k_at, a in keys if k_at == at})
        query = (
            select(TERMS)
            .where(TERMS.c.agreement.in_(ids), TERMS.c.valid_from <= at.position)
            .order_by(TERMS.c.agreement, TERMS.c.terms_version, TERMS.c.valid_from)
        )
        latest: dict[tuple[str, int], Any] = {}
        for row in conn.execute(query):
            latest[(row.agreement, row.terms_version)] = row  # the version as it stood at `at`
        for (agreement, _), row in latest.items():
            in_force = row.valid_to is None or row.valid_to > at.position
            found[(at, agreement)].append(
                TermsVersion(
                    version=row.terms_version,
                    effective_from=row.effective_from,
                    retroactive=bool(row.retroactive),
                    terms=as_json(row.terms),
                    in_force=in_force,
                )
            )
    return [found[key] for key in keys]


def _amendment(row: Any, at: At) -> Amendment:
    return Amendment(
        position=row.amendment,
        proposed_by=row.proposed_by,
        proposed_at=row.proposed_at,
        reason=row.reason,
        terms=as_json(row.terms),
        status=row.status,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision_reason=row.decision_reason,
    )


_AMENDMENTS = by_agreement(AMENDMENTS, (AMENDMENTS.c.amendment,), _amendment)


def _rows(conn: Connection, at: At, ids: list[str], status: str | None) -> list[Any]:
    query = select(AGREEMENTS).where(AGREEMENTS.c.agreement.in_(ids), at_position(AGREEMENTS, at))
    if status is not None:
        query = query.where(AGREEMENTS.c.status == status)
    return list(conn.execute(query.order_by(AGREEMENTS.c.proposed_at, AGREEMENTS.c.agreement)))


def require_agreement(scope: Scope, agreement: str, field: str = "id") -> None:
    """FORBIDDEN unless the caller may see the agreement now."""
    if not scope.authority.sees_agreement(agreement, scope.now):
        raise forbidden(
            f"{scope.party} may not read agreement {agreement} (or it does not exist): "
            "only its sponsor, its CMO and active grantees may",
            field,
        )


async def named_agreements(
    scope: Scope, info: Info, agreement: str | None, batch: str | None
) -> list[str]:
    """The agreements a root list's ``agreementId`` and ``batch`` filters name: FORBIDDEN for
    a named agreement or batch the caller may not see; every visible one when neither is
    given."""
    from api.queries.batches import batch_agreement

    if agreement is not None:
        require_agreement(scope, agreement, "agreementId")
    if batch is not None:
        owner = await read(info, batch_agreement, batch)
        if owner is None or not scope.authority.sees_batch(owner, batch, scope.now):
            raise forbidden(
                f"{scope.party} may not read batch {batch} (or it does not exist)", "batch"
            )
        return [owner] if agreement in (None, owner) else []
    if agreement is not None:
        return [agreement]
    return scope.authority.visible_agreements(scope.now)


async def load_agreement(scope: Scope, info: Info, agreement: str) -> Agreement | None:
    """The agreement as of the scope's position (no permission check)."""
    rows = await read(info, _rows, scope.at, [agreement], None)
    return agreement_of(rows[0], scope) if rows else None


async def list_agreements(source: Any, info: Info, status: str | None = None) -> list[Agreement]:
    """Every agreement the caller may see, as of the scope's position."""
    scope = await scope_of(source, info)
    visible = scope.authority.visible_agreements(scope.now)
    rows = await read(info, _rows, scope.at, visible, status) if visible else []
    return [agreement_of(row, scope) for row in rows]


async def get_agreement(source: Any, info: Info, agreement: str) -> Agreement:
    """One agreement the caller may see; NOT_FOUND when it did not exist yet at the position."""
    scope = await scope_of(source, info)
    require_agreement(scope, agreement)
    found = await load_agreement(scope, info, agreement)
    if found is None:
        raise NotFound(
            f"agreement {agreement} did not exist at position {scope.at.position}", field="id"
        )
    return found
