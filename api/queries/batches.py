# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""``batch(id)``: a batch and its data: ``discrete``, ``events`` and ``continuous``.

A batch is visible to the agreement's sponsor and CMO and to an active grantee whose
grant opens it; asking for one the caller may not see (or that does not exist) is
FORBIDDEN. Its data follows the data rules of :mod:`api.permissions` class by class.
Continuous data comes back column-wise (``timestamps``, ``values``, ``quality``), raw or
downsampled into buckets (``every``) with ``min``, ``max``, ``count`` per bucket.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import strawberry
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from api.permissions import forbidden
from api.queries.common import (
    At,
    Info,
    Scope,
    at_position,
    by_agreement,
    loader,
    read,
    scope_of,
    time_text,
)
from api.queries.records import (
    DiscreteRecord,
    EventRecord,
    RecordFilter,
    kinds_set,
    read_discrete,
    read_events,
    require_class,
)
from api.queries.series import Columns, downsample, parse_every
from api.read_log import note_field
from api.threads import in_thread
from ledger.domain.scope import DataItem
from ledger.errors import NotFound
from projections.data import BATCHES, CHUNKS, SUBMISSIONS
from projections.series import EventLog, Place, places, read_points

if TYPE_CHECKING:
    from api.queries.agreements import Agreement
    from api.queries.capa import Capa
    from api.queries.excursions import Excursion, SeriesExcursion

__all__ = [
    "Batch",
    "Series",
    "Submission",
    "TagSummary",
    "agreement_batches",
    "batch_agreement",
    "find_batch",
    "get_batch",
]


_T = TypeVar("_T")
_CLASS_ARGUMENT = strawberry.argument(
    description="The data class to read, one of the agreement's classes of this form "
    "(retired ones included); defaults to the class named like the form."
)


@strawberry.type(description="A delivery or correction of data (its signature is its event).")
class Submission:
    id: str
    data_class: str
    correction: bool
    source_system: str | None
    schema_version: str | None
    format: str | None
    original_sha256: str | None
    supersedes: list[str] = strawberry.field(description="Record ids or chunk SHA-256s replaced.")
    reason: str | None
    signer: str
    key: str
    recorded_at: str


@strawberry.type(description="A continuous tag of the batch: the time it spans and its points.")
class TagSummary:
    tag: str
    data_class: str = strawberry.field(description="The data class its chunks were sent as.")
    first: str
    last: str
    points: int


@strawberry.type(description="Points of one tag, column-wise; bucketed when `every` is given.")
class Series:
    batch: str
    tag: str
    from_: str | None = strawberry.field(name="from", description="Start asked for (inclusive).")
    to: str | None = strawberry.field(description="End asked for (inclusive).")
    every: str | None = strawberry.field(description="Bucket width, when downsampled.")
    points: int = strawberry.field(description="Raw points in the range.")
    timestamps: list[str] = strawberry.field(description="Point times, or bucket starts.")
    values: list[float] = strawberry.field(description="Values, or bucket means.")
    quality: list[int] = strawberry.field(description="Quality codes, or each bucket's worst.")
    min: list[float] | None = strawberry.field(description="Bucket minima (downsampled only).")
    max: list[float] | None = strawberry.field(description="Bucket maxima (downsampled only).")
    count: list[int] | None = strawberry.field(description="Points per bucket (downsampled).")


@strawberry.type(description="A manufacturing batch under an agreement.")
class Batch:
    id: str = strawberry.field(description="The batch name, e.g. NWB101-24-001.")
    subject: strawberry.ID
    agreement_id: strawberry.ID
    product: str
    site: str
    started_at: str
    ended_at: str | None
    registered_at: str
    registered_by: str
    scope: strawberry.Private[Scope]

    @strawberry.field(description="The agreement the batch is made under.")
    async def agreement(
        self, info: Info
    ) -> Annotated[Agreement, strawberry.lazy("api.queries.agreements")]:
        from api.queries.agreements import load_agreement

        found = await load_agreement(self.scope, info, str(self.agreement_id))
        assert found is not None  # a batch is only registered under an agreement
        return found

    @strawberry.field(description="Deliveries and corrections of the batch's data.")
    async def submissions(self, info: Info) -> list[Submission]:
        return self._noted(info, await read(info, _submissions, self.scope.at, self.id))

    @strawberry.field(description="Continuous tags the caller may read, with their span.")
    async def tags(self, info: Info) -> list[TagSummary]:
        found = await read(info, _tags, self.scope.at, self.id)
        return self._noted(info, [t for t in found if self._tag_open(t.data_class, t.tag)])

    @strawberry.field(description="Discrete results (FORBIDDEN if any asked for is not yours).")
    async def discrete(
        self,
        info: Info,
        parameters: list[str] | None = None,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
        include_superseded: bool = False,
        data_class: Annotated[str, _CLASS_ARGUMENT] = "discrete",
    ) -> list[DiscreteRecord] | None:
        require_class(self.scope, str(self.agreement_id), self.id, data_class, "discrete")
        wanted = RecordFilter(
            parameters=kinds_set(parameters),
            start=time_text(from_, "from"),
            end=time_text(to, "to"),
            include_superseded=include_superseded,
        )
        agreement = str(self.agreement_id)
        found = await read(info, read_discrete, self.scope, agreement, self.id, wanted, data_class)
        return self._noted(info, found)

    @strawberry.field(description="Event records: deviations, alarms, OOS, OOT, ...")
    async def events(
        self,
        info: Info,
        kinds: list[str] | None = None,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
        include_superseded: bool = False,
        data_class: Annotated[str, _CLASS_ARGUMENT] = "event",
    ) -> list[EventRecord] | None:
        require_class(self.scope, str(self.agreement_id), self.id, data_class, "event")
        wanted = RecordFilter(
            kinds=kinds_set(kinds),
            start=time_text(from_, "from"),
            end=time_text(to, "to"),
            include_superseded=include_superseded,
        )
        agreement = str(self.agreement_id)
        found = await read(info, read_events, self.scope, agreement, self.id, wanted, data_class)
        return self._noted(info, found)

    @strawberry.field(
        description="Results outside their limits, and whether each action excursion was "
        "reported by a deviation, OOS or OOT record within the agreement's deadline."
    )
    async def excursions(
        self, info: Info
    ) -> list[Annotated[Excursion, strawberry.lazy("api.queries.excursions")]]:
        from api.queries.excursions import batch_excursions

        found = await batch_excursions(info, self.scope, str(self.agreement_id), self.id)
        return self._noted(info, found)

    @strawberry.field(
        description="Continuous tags outside the limits of the parameter each measures, and "
        "whether each action excursion was reported within the agreement's deadline."
    )
    async def series_excursions(
        self, info: Info
    ) -> list[Annotated[SeriesExcursion, strawberry.lazy("api.queries.excursions")]]:
        from api.queries.excursions import series_excursions

        found = await series_excursions(info, self.scope, str(self.agreement_id), self.id)
        return self._noted(info, found)

    @strawberry.field(description="The batch's open CAPAs.")
    async def capas(self, info: Info) -> list[Annotated[Capa, strawberry.lazy("api.queries.capa")]]:
        from api.queries.capa import batch_capas

        return await batch_capas(self.scope, info, str(self.agreement_id), self.id)

    @strawberry.field(description="One tag's points from `from` to `to` (inclusive).")
    async def continuous(
        self,
        info: Info,
        tag: str,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
        every: str | None = None,
        data_class: Annotated[str, _CLASS_ARGUMENT] = "continuous",
    ) -> Series | None:
        start, end = time_text(from_, "from"), time_text(to, "to")
        width = None if every is None else parse_every(every)
        self._require_series(data_class, tag, start, end)
        where = (self.id, data_class, tag)
        found = await read(info, _places, self.scope.at, where, start, end)
        # The log is read once the view connection is back in the pool, so a worker
        # never waits for a second connection while it holds one.
        columns = await in_thread(_points, info.context.ledger, found, start, end)
        return self._noted(info, _series(self.id, tag, start, end, every, width, columns))

    def _noted(self, info: Info, found: _T) -> _T:
        """``found``, once noted as GxP data of this batch read (:mod:`api.read_log`)."""
        note_field(info, str(self.agreement_id), self.id)
        return found

    def _tag_open(self, data_class: str, tag: str) -> bool:
        item = DataItem(str(self.agreement_id), data_class, self.id, tag)
        authority, now = self.scope.authority, self.scope.now
        return authority.owns(item) or any(
            not g.parameters or tag in g.parameters for g in authority.data_grants(item, now)
        )

    def _require_series(
        self, data_class: str, tag: str, start: str | None, end: str | None
    ) -> None:
        agreement = str(self.agreement_id)
        require_class(self.scope, agreement, self.id, data_class, "continuous")
        item = DataItem(agreement, data_class, self.id, tag)
        refusal = self.scope.authority.series_refusal(item, start, end, self.scope.now)
        if refusal is not None:
            raise forbidden(refusal, "continuous")


def _series(
    batch: str,
    tag: str,
    start: str | None,
    end: str | None,
    every: str | None,
    width: int | None,
    columns: Columns,
) -> Series:
    points = len(columns.timestamps)
    if width is None:
        return Series(
            batch=batch, tag=tag, from_=start, to=end, every=None, points=points,
            timestamps=columns.timestamps, values=columns.values, quality=columns.quality,
            min=None, max=None, count=None,
        )  # fmt: skip
    buckets = downsample(columns, width)
    return Series(
        batch=batch, tag=tag, from_=start, to=end, every=every, points=points,
        timestamps=buckets.timestamps, values=buckets.mean, quality=buckets.quality,
        min=buckets.min, max=buckets.max, count=buckets.count,
    )  # fmt: skip


def _places(
    conn: Connection, at: At, where: tuple[str, str, str], start: str | None, end: str | None
) -> list[Place]:
    batch, data_class, tag = where
    return places(conn, batch, tag, start, end, at.position, data_class=data_class)


def _points(log: EventLog, found: list[Place], start: str | None, end: str | None) -> Columns:
    points = read_points(log, found, start, end)
    return Columns(points.timestamps, [float(v) for v in points.values], points.quality)


def _submissions(conn: Connection, at: At, batch: str) -> list[Submission]:
    query = (
        select(SUBMISSIONS)
        .where(SUBMISSIONS.c.batch == batch, at_position(SUBMISSIONS, at))
        .order_by(SUBMISSIONS.c.valid_from)
    )
    return [
        Submission(
            id=row.submission,
            data_class=row.data_class,
            correction=bool(row.correction),
            source_system=row.source_system,
            schema_version=row.schema_version,
            format=row.format,
            original_sha256=row.original_sha256,
            supersedes=list(json.loads(row.supersedes)),
            reason=row.reason,
            signer=row.signer,
            key=row.key,
            recorded_at=row.recorded_at,
        )
        for row in conn.execute(query)
    ]


def _tags(conn: Connection, at: At, batch: str) -> list[TagSummary]:
    query = (
        select(CHUNKS.c.tag, CHUNKS.c.data_class, func.min(CHUNKS.c.t_start))
        .add_columns(func.max(CHUNKS.c.t_end), func.sum(CHUNKS.c.count))
        .where(CHUNKS.c.batch == batch, CHUNKS.c.status == "current", at_position(CHUNKS, at))
        .group_by(CHUNKS.c.tag, CHUNKS.c.data_class)
        .order_by(CHUNKS.c.tag, CHUNKS.c.data_class)
    )
    return [
        TagSummary(tag=tag, data_class=data_class, first=first, last=last, points=int(points))
        for tag, data_class, first, last, points in conn.execute(query)
    ]


def batch_of(row: Any, scope: Scope) -> Batch:
    """The GraphQL view of a ``proj_batches`` row."""
    return Batch(
        id=row.batch,
        subject=strawberry.ID(row.subject),
        agreement_id=strawberry.ID(row.agreement),
        product=row.product,
        site=row.site,
        started_at=row.started_at,
        ended_at=row.ended_at,
        registered_at=row.registered_at,
        registered_by=row.registered_by,
        scope=scope,
    )


def _batch_row(conn: Connection, at: At | None, name: str) -> Any:
    query = select(BATCHES).where(BATCHES.c.batch == name)
    query = query.where(BATCHES.c.valid_to.is_(None) if at is None else at_position(BATCHES, at))
    return conn.execute(query).first()


def batch_agreement(conn: Connection, name: str) -> str | None:
    """The agreement a batch is registered under (now), or None."""
    row = _batch_row(conn, None, name)
    return None if row is None else str(row.agreement)


_BY_AGREEMENT = by_agreement(BATCHES, (BATCHES.c.started_at, BATCHES.c.batch), lambda row, at: row)


_NEWEST_PAGE = 200
"""Rows fetched at a time while looking for an agreement's latest visible batches."""


def _latest_visible(conn: Connection, scope: Scope, agreement: str, latest: int) -> list[Any]:
    """The ``latest`` newest batches of ``agreement`` the caller may see, newest first: read
    a page at a time from the newest, so an agreement's long history is not read whole."""
    query = (
        select(BATCHES)
        .where(BATCHES.c.agreement == agreement, at_position(BATCHES, scope.at))
        .order_by(BATCHES.c.started_at.desc(), BATCHES.c.batch.desc())
        .execution_options(stream_results=True, yield_per=_NEWEST_PAGE)
    )
    seen: list[Any] = []
    result = conn.execute(query)
    try:
        for row in result:
            if scope.authority.sees_batch(agreement, row.batch, scope.now):
                seen.append(row)
                if len(seen) == latest:
                    break
    finally:
        result.close()
    return seen


async def agreement_batches(
    scope: Scope, info: Info, agreement: str, latest: int | None = None
) -> list[Batch]:
    """The batches of a visible agreement that the caller may see, by start time (only
    the ``latest`` that many, when given)."""
    if latest is not None:
        newest = await read(info, _latest_visible, scope, agreement, latest)
        return [batch_of(row, scope) for row in reversed(newest)]
    rows = await loader(info, "batches_by_agreement", _BY_AGREEMENT).load((scope.at, agreement))
    sees = scope.authority.sees_batch
    return [batch_of(row, scope) for row in rows if sees(agreement, row.batch, scope.now)]


def _refuse(scope: Scope, name: str) -> Exception:
    return forbidden(
        f"{scope.party} may not read batch {name} (or it does not exist): only the "
        "agreement's sponsor and CMO and active grantees opening it may",
        "id",
    )


async def find_batch(scope: Scope, info: Info, name: str) -> Batch:
    """A batch the caller may see, as of the scope's position."""
    row = await read(info, _batch_row, scope.at, name)
    if row is None:
        later = await read(info, _batch_row, None, name)
        if later is None or not scope.authority.sees_batch(later.agreement, name, scope.now):
            raise _refuse(scope, name)
        raise NotFound(
            f"batch {name} was not registered yet at position {scope.at.position}", field="id"
        )
    if not scope.authority.sees_batch(row.agreement, name, scope.now):
        raise _refuse(scope, name)
    return batch_of(row, scope)


async def get_batch(source: Any, info: Info, name: str) -> Batch:
    """The root ``batch(id)``."""
    return await find_batch(await scope_of(source, info), info, name)
