"""Loading a caller's :class:`~api.permissions.Authority` from the views, and the rule
the log fields ask (:func:`can_read_event`).

An authority is read at the views' head (the audit view's last position: every view
advances in the same transaction) and cached process-wide by caller and head, so
requests of one caller between two appends share it; a new event makes a new head and
a fresh read. Within one request (or one websocket connection) the context keeps the
authority it first loaded, reloading only for an event past it.

Everything here blocks: call it in a worker thread.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Connection, Engine

from api.permissions import (
    PARTY_EVENTS,
    AgreementRoles,
    Authority,
    SubjectFacts,
    event_readable,
)
from api.read_log import ENVELOPES, note_read
from ledger.clock import Clock
from ledger.domain.parties import NOTARY
from ledger.domain.scope import DataItem, GrantScope
from ledger.errors import Forbidden
from ledger.timeutil import format_utc
from projections.access import GRANTS
from projections.agreements import AGREEMENTS
from projections.audit import AUDIT
from projections.data import CHUNKS, RECORDS
from projections.ownership import DATA_OWNERSHIP
from projections.temporal import as_of, current

if TYPE_CHECKING:
    from api.auth import Caller
    from ledger.application import Recorded

__all__ = [
    "SUBJECT_CREATORS",
    "ViewFacts",
    "authority_for",
    "can_read_event",
    "can_read_subject",
    "forget_authority",
    "load_authority",
    "may_create_subjects",
    "may_know_version",
    "not_readable",
    "now_text",
    "read_authority",
    "views_head",
]

_ATTRIBUTE = "_cmo_authority"
_CACHE_SIZE = 512
_WAIT_SECONDS = 2.0


class _Lru:
    """A small thread-safe LRU map."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_authorities = _Lru(_CACHE_SIZE)
_subjects = _Lru(100_000)


def now_text(clock: Clock) -> str:
    """The current time on ``clock``, as the views write times."""
    return format_utc(clock.now())


def views_head(conn: Connection) -> int:
    """The last log position the views hold (0: none)."""
    return int(conn.execute(select(func.max(AUDIT.c.position))).scalar() or 0)


def load_authority(engine: Engine, caller: Caller, conn: Connection | None = None) -> Authority:
    """The caller's authority at the views' head (read on ``conn`` when given)."""
    if conn is None:
        with engine.connect() as own:
            return load_authority(engine, caller, own)
    head = views_head(conn)
    key = (str(engine.url), caller.party_id, caller.role, head)
    found: Authority | None = _authorities.get(key)
    if found is None:
        found = _read_authority(conn, caller, head)
        _authorities.put(key, found)
    return found


def _read_authority(conn: Connection, caller: Caller, head: int) -> Authority:
    if caller.is_notary:
        return Authority(caller.party_id, caller.role, head, {}, (), notary=True)
    return read_authority(conn, caller.party_id, caller.role, head)


def read_authority(conn: Connection, party: str, role: str, head: int) -> Authority:
    """What ``party`` may read per the views as they stood at position ``head``: the
    caller's own authority, or another party's as it was (``visibleTo``)."""
    grant_rows = conn.execute(
        select(GRANTS).where(as_of(GRANTS, head), GRANTS.c.grantee == party)
    ).all()
    grants = tuple(GrantScope.from_row(row._mapping) for row in grant_rows)
    granted = sorted({g.agreement for g in grants})
    rows = conn.execute(
        select(AGREEMENTS.c.agreement, AGREEMENTS.c.sponsor, AGREEMENTS.c.cmo).where(
            as_of(AGREEMENTS, head),
            or_(
                AGREEMENTS.c.sponsor == party,
                AGREEMENTS.c.cmo == party,
                AGREEMENTS.c.agreement.in_(granted),
            ),
        )
    ).all()
    owners: dict[str, dict[str, str]] = {}
    forms: dict[str, dict[str, str]] = {}
    owner_rows = conn.execute(
        select(
            DATA_OWNERSHIP.c.agreement,
            DATA_OWNERSHIP.c.data_class,
            DATA_OWNERSHIP.c.owner,
            DATA_OWNERSHIP.c.form,
        )
        .where(as_of(DATA_OWNERSHIP, head))
        .where(
            or_(
                DATA_OWNERSHIP.c.sponsor == party,
                DATA_OWNERSHIP.c.cmo == party,
                DATA_OWNERSHIP.c.agreement.in_(granted),
            )
        )
    ).all()
    for agreement, data_class, owner, form in owner_rows:
        owners.setdefault(agreement, {})[data_class] = owner
        forms.setdefault(agreement, {})[data_class] = form
    agreements = {
        a: AgreementRoles(a, sponsor, cmo, owners.get(a, {}), forms.get(a, {}))
        for a, sponsor, cmo in rows
    }
    return Authority(party, role, head, agreements, grants)


def authority_for(
    context: Any, min_position: int | None = None, conn: Connection | None = None
) -> Authority:
    """The authority the context's caller has (loaded once per context); reloaded when
    ``min_position`` is past it, waiting briefly for the views to reach that position."""
    caller: Caller = context.require_party() if hasattr(context, "require_party") else context.party
    found: Authority | None = getattr(context, _ATTRIBUTE, None)
    if found is not None and (min_position is None or found.position >= min_position):
        return found
    engine = context.ledger.engine
    found = load_authority(engine, caller, conn)
    deadline = time.monotonic() + _WAIT_SECONDS
    while min_position is not None and found.position < min_position:
        if time.monotonic() > deadline:
            break  # the views lag: events they do not know are judged unreadable
        time.sleep(0.05)
        found = load_authority(engine, caller)
    setattr(context, _ATTRIBUTE, found)
    return found


SUBJECT_CREATORS = ("sponsor", "cmo", NOTARY)
"""Roles whose events open new subjects (agreements, batches, parameters, grants, claims)."""


def may_create_subjects(caller: Caller) -> bool:
    """Whether ``caller`` may learn that a subject does not exist yet (``nextVersion``)."""
    return caller.role in SUBJECT_CREATORS


def may_know_version(context: Any, subject: str, version: int) -> bool:
    """Whether the caller may learn that ``subject``'s next version is ``version`` (the
    ledger's ``next_version``): for a subject it may read, and for one the log does not
    hold yet when it may create subjects. Nothing else tells a subject's existence or
    activity to whoever guesses its name (``nextVersion``, a refused submission)."""
    if version == 1:
        return may_create_subjects(context.require_party())
    return can_read_subject(context, subject)


def not_readable(subject: object, field: str) -> Forbidden:
    """The refusal of a subject the caller may not read, whether or not it exists."""
    return Forbidden(f"you may not read subject {subject} (or it does not exist)", field=field)


def can_read_subject(context: Any, subject: str) -> bool:
    """Whether the context's caller may read the events of ``subject`` (judged by its first
    event); ``False`` for a subject the log does not hold, so that names cannot be probed."""
    first = _first_position(context.ledger.engine, subject)
    if first is None and context.ledger.next_version(UUID(subject))[0] > 1:
        authority_for(context, context.ledger.head())  # the views lag the log: let them reach it
        first = _first_position(context.ledger.engine, subject)
    if first is None:
        return False
    recorded = context.ledger.read(first - 1, 1)
    return bool(recorded) and can_read_event(context, recorded[0])


def _first_position(engine: Engine, subject: str) -> int | None:
    with engine.connect() as conn:
        first = conn.execute(
            select(AUDIT.c.position)
            .where(AUDIT.c.subject == subject)
            .order_by(AUDIT.c.position)
            .limit(1)
        ).scalar()
    return None if first is None else int(first)


def forget_authority(context: Any) -> None:
    """Drop the authority the context holds, so the next check reads the views again."""
    if hasattr(context, _ATTRIBUTE):
        delattr(context, _ATTRIBUTE)


class ViewFacts(SubjectFacts):
    """Subject contexts and records, read from the audit and data views."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._url = str(engine.url)

    def context(self, subject: str) -> tuple[str | None, str | None]:
        key = (self._url, subject)
        found: tuple[str | None, str | None] | None = _subjects.get(key)
        if found is not None:
            return found
        with self._engine.connect() as conn:
            row = conn.execute(
                select(AUDIT.c.agreement, AUDIT.c.batch)
                .where(AUDIT.c.subject == subject)
                .order_by(AUDIT.c.position)
                .limit(1)
            ).first()
        if row is None:
            return None, None  # not projected yet: not remembered
        found = (row[0], row[1])
        _subjects.put(key, found)
        return found

    def record(self, batch: str, record_id: str) -> DataItem | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(RECORDS)
                .where(RECORDS.c.batch == batch, RECORDS.c.record_id == record_id)
                .where(current(RECORDS))
                .order_by(RECORDS.c.record_version.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        data = row._mapping
        discrete = data["form"] == "discrete"
        return DataItem(
            data["agreement"],
            data["data_class"],
            batch,
            data["parameter"] if discrete else None,
            data["sampled_at"] if discrete else data["started_at"],
        )

    def chunk_class(self, batch: str, digest: str) -> str | None:
        with self._engine.connect() as conn:
            found = conn.execute(
                select(CHUNKS.c.data_class)
                .where(CHUNKS.c.batch == batch, CHUNKS.c.sha256 == digest)
                .limit(1)
            ).scalar()
        return None if found is None else str(found)


def can_read_event(context: Any, recorded: Recorded) -> bool:
    """Whether the context's caller may read ``recorded`` in full (its signed envelope);
    a readable envelope of a batch's event is noted as a read of its GxP data."""
    caller: Caller | None = context.party
    if caller is None:
        return False
    envelope = recorded.event.envelope
    facts = ViewFacts(context.ledger.engine)
    if not caller.is_notary:
        authority = authority_for(context, recorded.position)
        if not event_readable(authority, envelope, facts, now_text(context.ledger.clock)):
            return False
    if envelope["type"] not in PARTY_EVENTS:
        note_read(ENVELOPES, *facts.context(str(envelope["subject"])))
    return True
