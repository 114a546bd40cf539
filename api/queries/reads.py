# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""Who read my data, when (R11): ``dataReads``.

The rows of the read-access log (:mod:`api.read_log`) of the caller's data, oldest first,
a page at a time: who read which batch, when, with which fields and query (its SHA-256),
and the notary's ``ReadsRecorded`` commitment once the row is committed. Only the data's
owner (the CMO of the batch's agreement, :func:`api.read_log.data_owners`) and the notary
may ask; anyone else is refused, and so is an owner naming a batch or agreement of another
CMO's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import strawberry
from sqlalchemy import ColumnElement, select
from sqlalchemy.engine import Connection

from api.auth import Caller
from api.context import Context
from api.permissions import forbidden
from api.queries.audit import decode_cursor, encode_cursor
from api.queries.batches import batch_agreement
from api.queries.common import Info, time_text
from api.read_log import Commitment, data_owners, read_access
from api.threads import in_thread

__all__ = ["DataRead", "DataReadPage", "ReadCommitment", "ReadsQuery"]

_OWNER_ONLY = (
    "only the owner of the data (the CMO of the batch's agreement) and the notary may ask "
    "who read it"
)


@strawberry.type(description="The notary's signed commitment to a read (ReadsRecorded).")
class ReadCommitment:
    position: int = strawberry.field(description="The ReadsRecorded event's log position.")
    first: int = strawberry.field(description="The first row id it commits to.")
    last: int = strawberry.field(description="The last row id it commits to.")
    count: int = strawberry.field(description="How many rows it commits to.")
    root: str = strawberry.field(description="Merkle root of the rows' canonical bytes, hex.")
    signed_at: str


@strawberry.type(description="One read of a batch's GxP data by a party other than its owner.")
class DataRead:
    id: int = strawberry.field(description="The row's id in the read-access log.")
    reader: str = strawberry.field(description="The party that read.")
    key: str = strawberry.field(description="The key the request was signed with.")
    agreement_id: strawberry.ID
    batch: str
    fields: list[str] = strawberry.field(description="The GxP fields read (Type.field).")
    operation: str | None = strawberry.field(description="The operation's name, if any.")
    query_hash: str = strawberry.field(
        description="SHA-256 (hex) of the canonical JSON {query, variables}."
    )
    at: str = strawberry.field(description="When it was read, on the server's clock.")
    commitment: ReadCommitment | None = strawberry.field(
        description="The ReadsRecorded that commits to the row; null until committed."
    )


@strawberry.type(description="A page of the read-access log.")
class DataReadPage:
    reads: list[DataRead]
    end_cursor: str | None
    has_next_page: bool


@strawberry.type
class ReadsQuery:
    @strawberry.field(
        description="Who read your data, when (R11): the logged reads of your batches' GxP "
        "data by other parties, oldest first. For the data's owner and the notary."
    )
    async def data_reads(
        self,
        info: Info,
        batch: str | None = None,
        agreement: strawberry.ID | None = None,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
        first: int = 100,
        after: str | None = None,
    ) -> DataReadPage:
        context = info.context
        caller = context.require_party()
        context.limits.page_size(first)
        wanted = _Wanted(
            batch,
            None if agreement is None else str(agreement),
            time_text(from_, "from"),
            time_text(to, "to"),
        )
        return await in_thread(_page, context, caller, wanted, first, decode_cursor(after))


@dataclass(frozen=True, slots=True)
class _Wanted:
    batch: str | None
    agreement: str | None
    start: str | None
    end: str | None


def _require_owner(conn: Connection, caller: Caller, wanted: _Wanted) -> None:
    if caller.is_notary:
        return
    if caller.role != "cmo":
        named = "batch" if wanted.batch is not None else None
        if named is None and wanted.agreement is not None:
            named = "agreement"
        raise forbidden(f"{caller.party_id} may not ask: {_OWNER_ONLY}", named)
    if wanted.batch is not None:
        agreement = batch_agreement(conn, wanted.batch)
        owner = None if agreement is None else data_owners(conn, [agreement]).get(agreement)
        if owner != caller.party_id:
            raise forbidden(
                f"batch {wanted.batch} is not yours (or does not exist): {_OWNER_ONLY}", "batch"
            )
    if wanted.agreement is not None:
        owner = data_owners(conn, [wanted.agreement]).get(wanted.agreement)
        if owner != caller.party_id:
            raise forbidden(
                f"agreement {wanted.agreement} is not yours (or does not exist): {_OWNER_ONLY}",
                "agreement",
            )


def _filters(caller: Caller, wanted: _Wanted, after: int) -> list[ColumnElement[bool]]:
    table = read_access
    found = [table.c.id > after]
    if not caller.is_notary:
        found.append(table.c.owner == caller.party_id)
    if wanted.batch is not None:
        found.append(table.c.batch == wanted.batch)
    if wanted.agreement is not None:
        found.append(table.c.agreement == wanted.agreement)
    if wanted.start is not None:
        found.append(table.c.at >= wanted.start)
    if wanted.end is not None:
        found.append(table.c.at < wanted.end)
    return found


def _page(
    context: Context, caller: Caller, wanted: _Wanted, first: int, after: int
) -> DataReadPage:
    with context.ledger.engine.connect() as conn:
        _require_owner(conn, caller, wanted)
        rows = conn.execute(
            select(read_access)
            .where(*_filters(caller, wanted, after))
            .order_by(read_access.c.id)
            .limit(first + 1)
        ).all()
    shown = rows[:first]
    signed = context.services.read_log.commitments(
        int(row.committed_at) for row in shown if row.committed_at is not None
    )
    reads = [
        DataRead(
            id=int(row.id),
            reader=row.reader,
            key=row.key,
            agreement_id=strawberry.ID(row.agreement),
            batch=row.batch,
            fields=str(row.fields).split(","),
            operation=row.operation,
            query_hash=row.query_sha256,
            at=row.at,
            commitment=_commitment(signed.get(int(row.committed_at or 0))),
        )
        for row in shown
    ]
    return DataReadPage(
        reads=reads,
        end_cursor=encode_cursor(reads[-1].id) if reads else None,
        has_next_page=len(rows) > first,
    )


def _commitment(found: Commitment | None) -> ReadCommitment | None:
    if found is None:
        return None
    return ReadCommitment(
        position=found.position,
        first=found.first,
        last=found.last,
        count=found.count,
        root=found.root,
        signed_at=found.signed_at,
    )
