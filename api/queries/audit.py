# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""``auditTrail``: a Relay-style connection over the audit view, keyed on log position.

Cursors are opaque (base64 of the position), so a page never shifts when events are
appended. Events the caller may not see are left out of a page, but a filter naming a
subject, agreement or batch the caller may not see is FORBIDDEN: a caller never gets a
silently thinned answer to a question about something specific. Each entry's ``event``
is the signed envelope, served only when the caller may read the data it carries.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

import strawberry
from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlalchemy.engine import Connection

from api.log_fields import LogEvent
from api.permissions import PARTY_EVENTS, EventScope, forbidden
from api.queries.batches import batch_agreement
from api.queries.common import Info, Scope, scoped_read, time_text
from api.queries.events import load_event
from api.read_log import AUDIT_ENTRIES, note_read
from ledger.errors import ValidationFailed
from projections.audit import AUDIT

__all__ = [
    "ENTRY_COLUMNS",
    "AuditEdge",
    "AuditEntry",
    "AuditFilter",
    "AuditTrail",
    "PageInfo",
    "audit_entry",
    "audit_trail",
    "decode_cursor",
    "encode_cursor",
]

_PREFIX = "audit:"
ENTRY_COLUMNS = (
    AUDIT.c.position,
    AUDIT.c.leaf_index,
    AUDIT.c.subject,
    AUDIT.c.version,
    AUDIT.c.type,
    AUDIT.c.signer,
    AUDIT.c.key,
    AUDIT.c.meaning,
    AUDIT.c.reason,
    AUDIT.c.signed_at,
    AUDIT.c.recorded_at,
    AUDIT.c.agreement,
    AUDIT.c.batch,
    AUDIT.c.person,
    AUDIT.c.printed_name,
)


@strawberry.type(description="One event of the log, as the audit trail lists it.")
class AuditEntry:
    position: int
    leaf_index: int = strawberry.field(description="Its leaf in the Merkle tree.")
    subject: strawberry.ID
    version: int
    type: str
    signer: str
    key: str
    meaning: str
    reason: str | None
    signed_at: str
    recorded_at: str
    agreement_id: strawberry.ID | None
    batch: str | None
    person: str | None = strawberry.field(
        description="The person of the signer who signed (null for a party key)."
    )
    printed_name: str | None = strawberry.field(
        description="The printed name the signer admitted the person with: with signedAt "
        "and meaning, the signature's manifestation (R5)."
    )

    @strawberry.field(description="The signed envelope (FORBIDDEN when its data is not yours).")
    async def event(self, info: Info) -> LogEvent | None:
        return await load_event(info, self.position)


@strawberry.type(description="An entry and its cursor.")
class AuditEdge:
    cursor: str
    node: AuditEntry


@strawberry.type(description="Where a page stands in the connection.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="A page of the audit trail.")
class AuditTrail:
    edges: list[AuditEdge]
    page_info: PageInfo
    position: int = strawberry.field(description="The log position the page was read at.")


@strawberry.input(description="Which events to list; every member narrows the trail.")
class AuditFilter:
    subject: strawberry.ID | None = None
    agreement: strawberry.ID | None = None
    batch: str | None = None
    signer: str | None = None
    type: str | None = None
    from_: datetime | None = strawberry.field(
        default=None, name="from", description="Recorded at or after (inclusive)."
    )
    to: datetime | None = strawberry.field(default=None, description="Recorded before.")


def encode_cursor(position: int) -> str:
    """The opaque cursor of a position."""
    return base64.urlsafe_b64encode(f"{_PREFIX}{position}".encode()).decode("ascii")


def decode_cursor(cursor: str | None) -> int:
    """The position a cursor names (0 for none); VALIDATION_FAILED for a foreign one."""
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        text = ""
    number = text.removeprefix(_PREFIX)
    if not text.startswith(_PREFIX) or not number.isdigit():
        raise ValidationFailed("not a cursor of this connection", field="after")
    return int(number)


def scope_clause(scope: EventScope) -> ColumnElement[bool]:
    """SQL for :meth:`EventScope.admits`."""
    if scope.everything:
        return true()
    clauses = [and_(AUDIT.c.agreement.is_(None), AUDIT.c.type.in_(sorted(PARTY_EVENTS)))]
    if scope.agreements:
        clauses.append(AUDIT.c.agreement.in_(sorted(scope.agreements)))
    for agreement, batches in sorted(scope.batches.items()):
        opened = or_(AUDIT.c.batch.is_(None), AUDIT.c.batch.in_(sorted(batches)))
        clauses.append(and_(AUDIT.c.agreement == agreement, opened))
    if scope.grants:
        clauses.append(AUDIT.c.subject.in_(sorted(scope.grants)))
    return or_(*clauses)


def _check_named(conn: Connection, scope: Scope, wanted: AuditFilter, events: EventScope) -> None:
    authority, now = scope.authority, scope.now
    if wanted.agreement is not None and not authority.sees_agreement(str(wanted.agreement), now):
        raise forbidden(
            f"{scope.party} may not read agreement {wanted.agreement} (or it does not exist)",
            "filter.agreement",
        )
    if wanted.batch is not None:
        agreement = batch_agreement(conn, wanted.batch)
        if agreement is None or not authority.sees_batch(agreement, wanted.batch, now):
            raise forbidden(
                f"{scope.party} may not read batch {wanted.batch} (or it does not exist)",
                "filter.batch",
            )
    if wanted.subject is not None:
        first = conn.execute(
            select(AUDIT.c.type, AUDIT.c.agreement, AUDIT.c.batch)
            .where(AUDIT.c.subject == str(wanted.subject))
            .order_by(AUDIT.c.position)
            .limit(1)
        ).first()
        subject = str(wanted.subject)
        if first is None or not events.admits(first[0], subject, first[1], first[2]):
            raise forbidden(
                f"{scope.party} may not read subject {subject} (or it does not exist)",
                "filter.subject",
            )


def _filters(wanted: AuditFilter) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    for column, value in (
        (AUDIT.c.subject, wanted.subject),
        (AUDIT.c.agreement, wanted.agreement),
        (AUDIT.c.batch, wanted.batch),
        (AUDIT.c.signer, wanted.signer),
        (AUDIT.c.type, wanted.type),
    ):
        if value is not None:
            found.append(column == str(value))
    start, end = time_text(wanted.from_, "filter.from"), time_text(wanted.to, "filter.to")
    if start is not None:
        found.append(AUDIT.c.recorded_at >= start)
    if end is not None:
        found.append(AUDIT.c.recorded_at < end)
    return found


def audit_entry(row: Any) -> AuditEntry:
    """The entry of an audit row selected with :data:`ENTRY_COLUMNS`."""
    (position, leaf, subject, version, type_, signer, key, meaning, reason, signed, recorded,
     agreement, batch, person, printed_name) = row  # fmt: skip
    return AuditEntry(
        position=position,
        leaf_index=leaf,
        subject=subject,
        version=version,
        type=type_,
        signer=signer,
        key=key,
        meaning=meaning,
        reason=reason,
        signed_at=signed,
        recorded_at=recorded,
        agreement_id=agreement,
        batch=batch,
        person=person,
        printed_name=printed_name,
    )


def _page(
    conn: Connection, scope: Scope, wanted: AuditFilter, first: int, after: int
) -> AuditTrail:
    events = scope.authority.event_scope(scope.now)
    _check_named(conn, scope, wanted, events)
    query = (
        select(*ENTRY_COLUMNS)
        .where(AUDIT.c.position > after, AUDIT.c.position <= scope.at.position)
        .where(scope_clause(events), *_filters(wanted))
        .order_by(AUDIT.c.position)
        .limit(first + 1)
    )
    rows = conn.execute(query).all()
    edges = [AuditEdge(cursor=encode_cursor(r[0]), node=audit_entry(r)) for r in rows[:first]]
    info = PageInfo(
        has_next_page=len(rows) > first,
        has_previous_page=after > 0,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )
    return AuditTrail(edges=edges, page_info=info, position=scope.at.position)


async def audit_trail(
    source: Any, info: Info, wanted: AuditFilter | None, first: int, after: str | None
) -> AuditTrail:
    """A page of the events the caller may see, after the cursor ``after``."""
    info.context.limits.page_size(first)
    position = decode_cursor(after)
    page = await scoped_read(source, info, _page, wanted or AuditFilter(), first, position)
    for edge in page.edges:
        entry = edge.node
        agreement = None if entry.agreement_id is None else str(entry.agreement_id)
        note_read(AUDIT_ENTRIES, agreement, entry.batch)
    return page
