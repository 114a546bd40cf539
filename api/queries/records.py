# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""Discrete results and event records of a batch, with confidential elements masked.

A list is answered whole or refused: every record left after the caller's own filters
(``parameters``, ``kinds``, ``from``, ``to``) must be one the caller may read, else the
answer is FORBIDDEN naming the first record refused and the scope of the caller's grants.
Confidential elements come back as ``{element, commitment, value, salt, purged}``: the
commitment the envelope signed for everyone who reads the record; the opening (value and
salt, checkable against the commitment) only for the CMO and an active
``include_confidential`` grantee covering the record, and the element named in ``masked``
for everyone else. Openings are read from :mod:`ledger.log.openings`; a purged one
answers ``purged`` and no value. Records signed in clear before elements were committed
answer their value with no commitment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import strawberry
from sqlalchemy import select
from sqlalchemy.engine import Connection
from strawberry.scalars import JSON

from api.permissions import forbidden
from api.queries.common import At, Scope, as_optional_json, at_position
from ledger.domain.commitments import Opening
from ledger.domain.scope import DataItem
from ledger.errors import ValidationFailed
from ledger.log.openings import read_openings
from projections.data import CONFIDENTIAL, RECORDS

_R = TypeVar("_R")

__all__ = [
    "ConfidentialValue",
    "DiscreteRecord",
    "EventRecord",
    "RecordFilter",
    "read_discrete",
    "read_events",
    "require_class",
]


@strawberry.type(description="A confidential element of a record: null value when masked.")
class ConfidentialValue:
    element: str
    value: str | None
    commitment: str | None = strawberry.field(
        default=None,
        description="SHA-256(salt || RFC 8785 value) as the envelope signed it; null for "
        "records signed in clear.",
    )
    salt: str | None = strawberry.field(
        default=None, description="The opening's salt (hex), given with the value."
    )
    purged: bool = strawberry.field(
        default=False, description="The owner purged the opening: the value is gone."
    )


@strawberry.type(description="One version of a discrete result.")
class DiscreteRecord:
    id: str
    version: int
    parameter: str | None
    parameter_id: strawberry.ID | None = strawberry.field(
        description="The registered parameter the record names; null when unregistered."
    )
    limits_version: int | None = strawberry.field(
        description="The parameter's limits version in force at sampledAt, as the ledger knew "
        "it when the record arrived; null when none was in force."
    )
    evaluation: str | None = strawberry.field(
        description="within, alert or action (excursion) against those limits; no_limits, or "
        "unregistered when the name is no parameter of the agreement. Never re-evaluated."
    )
    value: str | None = strawberry.field(description="The value as submitted (a decimal).")
    unit: str | None
    sampled_at: str | None
    method: str | None
    other: JSON | None = strawberry.field(description="Members beyond the format's columns.")
    status: str = strawberry.field(description="current, or superseded by a correction.")
    submission: str
    superseded_by: str | None
    recorded_at: str
    confidential: list[ConfidentialValue]
    masked: list[str] = strawberry.field(description="Confidential elements withheld from you.")
    manual: bool = strawberry.field(
        description="Entered by hand (source system manual, or a correction of such a value).",
    )
    verified: bool = strawberry.field(
        description="False while a manual value of a critical parameter waits for a second "
        "person's DataVerified (R17): it is then left out of excursions and CPV inputs.",
    )
    verified_at: str | None = strawberry.field(description="When this version was verified.")
    verified_by: str | None = strawberry.field(
        description="The person of the CMO who verified this version."
    )


@strawberry.type(description="One version of an event record: deviation, alarm, OOS, OOT, ...")
class EventRecord:
    id: str
    version: int
    kind: str | None
    started_at: str | None
    ended_at: str | None
    severity: str | None
    description: str | None
    other: JSON | None
    status: str
    submission: str
    superseded_by: str | None
    acknowledged_at: str | None
    acknowledged_by: str | None
    recorded_at: str
    confidential: list[ConfidentialValue]
    masked: list[str]


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """The caller's own narrowing of a record list."""

    parameters: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    start: str | None = None
    end: str | None = None
    include_superseded: bool = False

    def keeps(self, row: Any, data_time: str | None) -> bool:
        if not self.include_superseded and row.status != "current":
            return False
        if self.parameters is not None and row.parameter not in self.parameters:
            return False
        if self.kinds is not None and row.event_kind not in self.kinds:
            return False
        if self.start is not None and (data_time is None or data_time < self.start):
            return False
        return self.end is None or (data_time is not None and data_time < self.end)


def require_class(
    scope: Scope, agreement: str, batch: str, data_class: str, form: str | None = None
) -> None:
    """FORBIDDEN unless the caller owns the class, is the CMO, or holds a grant opening it;
    with ``form``, VALIDATION_FAILED when the class the caller named holds another form.

    The class need not be in the terms in force: data of a retired class stays readable
    to whoever could read it."""
    item = DataItem(agreement, data_class, batch)
    authority = scope.authority
    if not (authority.owns(item) or authority.data_grants(item, scope.now)):
        raise _class_refused(scope, batch, data_class)
    if form is not None and authority.form_of(agreement, data_class) != form:
        raise ValidationFailed(
            f"the agreement has no class {data_class[:70]!r} of the {form} form",
            field="dataClass",
        )


def _class_refused(scope: Scope, batch: str, data_class: str) -> Exception:
    return forbidden(
        f"{scope.party} may not read {data_class} data of batch {batch}: it belongs to its "
        "owner and the CMO, and opens to others only through an active grant",
        data_class,
    )


#: A confidential element as the view holds it: (value signed in clear, commitment).
Secret = tuple[str | None, str | None]


def _rows(
    conn: Connection, at: At, batch: str, kind: tuple[str, str]
) -> tuple[list[Any], dict[tuple[str, int], dict[str, Secret]]]:
    data_class, form = kind
    rows = list(
        conn.execute(
            select(RECORDS)
            .where(RECORDS.c.batch == batch, RECORDS.c.data_class == data_class)
            .where(RECORDS.c.form == form)
            .where(at_position(RECORDS, at))
            .order_by(RECORDS.c.record_id, RECORDS.c.record_version)
        )
    )
    secrets: dict[tuple[str, int], dict[str, Secret]] = {}
    query = select(
        CONFIDENTIAL.c.record_id,
        CONFIDENTIAL.c.record_version,
        CONFIDENTIAL.c.element,
        CONFIDENTIAL.c.value,
        CONFIDENTIAL.c.commitment,
    ).where(CONFIDENTIAL.c.batch == batch, at_position(CONFIDENTIAL, at))
    for record_id, version, element, value, commitment in conn.execute(query):
        secrets.setdefault((record_id, version), {})[element] = (value, commitment)
    return rows, secrets


def read_discrete(
    conn: Connection,
    scope: Scope,
    agreement: str,
    batch: str,
    wanted: RecordFilter,
    data_class: str = "discrete",
) -> list[DiscreteRecord]:
    """The records of ``data_class`` (of the discrete form) the caller asked for, checked
    and masked."""
    return _read(conn, scope, agreement, batch, (data_class, "discrete"), wanted, _discrete)


def read_events(
    conn: Connection,
    scope: Scope,
    agreement: str,
    batch: str,
    wanted: RecordFilter,
    data_class: str = "event",
) -> list[EventRecord]:
    """The records of ``data_class`` (of the event form) the caller asked for, checked and
    masked."""
    return _read(conn, scope, agreement, batch, (data_class, "event"), wanted, _event)


Masking = tuple[list[ConfidentialValue], list[str]]


def _read(
    conn: Connection,
    scope: Scope,
    agreement: str,
    batch: str,
    kind: tuple[str, str],
    wanted: RecordFilter,
    build: Callable[[Any, Masking], _R],
) -> list[_R]:
    rows, secrets = _rows(conn, scope.at, batch, kind)
    data_class, form = kind
    kept: list[tuple[Any, dict[str, Secret], bool]] = []
    for row in rows:
        data_time = row.sampled_at if form == "discrete" else row.started_at
        if not wanted.keeps(row, data_time):
            continue
        item = DataItem(agreement, data_class, batch, row.parameter, data_time)
        _check(scope, item, row.record_id)
        shown = scope.authority.sees_confidential(item, scope.now)
        kept.append((row, secrets.get((row.record_id, row.record_version), {}), shown))
    wanted_openings = [c for _, values, shown in kept if shown for _, c in values.values() if c]
    openings = read_openings(conn, wanted_openings)
    return [build(row, _confidential(values, shown, openings)) for row, values, shown in kept]


def _check(scope: Scope, item: DataItem, record_id: str) -> None:
    if scope.authority.sees_data(item, scope.now):
        return
    grants = "; ".join(g.describe() for g in scope.authority.data_grants(item, scope.now))
    raise forbidden(
        f"record {record_id} of batch {item.batch} ({item.parameter or item.data_class}, "
        f"{item.data_time}) is outside your grants ({grants}): narrow the request with "
        "parameters, kinds, from and to",
        item.data_class,
    )


def _confidential(
    values: dict[str, Secret], shown: bool, openings: Mapping[str, Opening]
) -> tuple[list[ConfidentialValue], list[str]]:
    result = []
    for element in sorted(values):
        value, commitment = values[element]
        answer = ConfidentialValue(element=element, value=None, commitment=commitment)
        if shown and commitment is None:
            answer.value = value
        elif shown and commitment is not None:
            opening = openings.get(commitment)
            answer.purged = opening is None
            if opening is not None:
                answer.value, answer.salt = opening.value, opening.salt
        result.append(answer)
    return result, [] if shown else sorted(values)


def _discrete(row: Any, secret: tuple[list[ConfidentialValue], list[str]]) -> DiscreteRecord:
    return DiscreteRecord(
        id=row.record_id,
        version=row.record_version,
        parameter=row.parameter,
        parameter_id=None if row.parameter_id is None else strawberry.ID(row.parameter_id),
        limits_version=row.limits_version,
        evaluation=row.evaluation,
        value=row.value,
        unit=row.unit,
        sampled_at=row.sampled_at,
        method=row.method,
        other=as_optional_json(row.other),
        status=row.status,
        submission=row.submission,
        superseded_by=row.superseded_by,
        recorded_at=row.recorded_at,
        confidential=secret[0],
        masked=secret[1],
        manual=row.manual,
        verified=row.verified,
        verified_at=row.verified_at,
        verified_by=row.verified_by,
    )


def _event(row: Any, secret: tuple[list[ConfidentialValue], list[str]]) -> EventRecord:
    return EventRecord(
        id=row.record_id,
        version=row.record_version,
        kind=row.event_kind,
        started_at=row.started_at,
        ended_at=row.ended_at,
        severity=row.severity,
        description=row.description,
        other=as_optional_json(row.other),
        status=row.status,
        submission=row.submission,
        superseded_by=row.superseded_by,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        recorded_at=row.recorded_at,
        confidential=secret[0],
        masked=secret[1],
    )


def kinds_set(values: Sequence[str] | None) -> frozenset[str] | None:
    """An optional list argument as a set."""
    return None if values is None else frozenset(values)
