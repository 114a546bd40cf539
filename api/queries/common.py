"""What every data query shares: the request's scope, database reads in a worker thread,
per-request DataLoaders, and input conversions.

A :class:`Scope` pairs the caller's :class:`~api.permissions.Authority` (decided at
request time, ``now``) with :class:`At`, the log position (and instant) the data is read
at: the views' head for the root fields, the resolved position under ``asOf``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import strawberry
from sqlalchemy import ColumnElement, Table, select
from sqlalchemy.engine import Connection, Engine
from strawberry.dataloader import DataLoader
from strawberry.scalars import JSON

from api.access import authority_for, now_text
from api.context import Context
from api.permissions import Authority
from api.threads import in_thread
from ledger.timeutil import format_utc, require_aware
from projections.temporal import as_of

__all__ = [
    "At",
    "Info",
    "Scope",
    "SharedLoader",
    "as_json",
    "as_optional_json",
    "at_position",
    "by_agreement",
    "loader",
    "read",
    "request_scope",
    "scope_of",
    "scoped_read",
    "time_text",
]

_K = TypeVar("_K")
_V = TypeVar("_V")
_T = TypeVar("_T")
Info = strawberry.Info[Context, None]


@dataclass(frozen=True, slots=True)
class At:
    """The log position data is read at, and the instant it stands for."""

    position: int
    time: str


@dataclass(frozen=True, slots=True)
class Scope:
    """Who asks (authority judged at ``now``) and what state of the views answers."""

    authority: Authority
    now: str
    at: At

    @property
    def party(self) -> str:
        """The caller's party id."""
        return self.authority.party


async def request_scope(info: Info) -> Scope:
    """The scope of a root field: the caller's authority, data at the views' head."""
    authority = await in_thread(authority_for, info.context)
    now = now_text(info.context.ledger.clock)
    return Scope(authority, now, At(authority.position, now))


async def scope_of(source: Any, info: Info) -> Scope:
    """The scope a field's parent carries (``asOf``), else the request's."""
    carried = getattr(source, "scope", None)
    if isinstance(carried, Scope):
        return carried
    return await request_scope(info)


def at_position(table: Table, at: At) -> ColumnElement[bool]:
    """Rows of a temporal table current at ``at``."""
    return as_of(table, at.position)


def _scoped(context: Context, carried: Scope | None, fn: Callable[..., _T], args: Any) -> _T:
    with context.ledger.engine.connect() as conn:
        scope = carried
        if scope is None:
            authority = authority_for(context, conn=conn)
            now = now_text(context.ledger.clock)
            scope = Scope(authority, now, At(authority.position, now))
        return fn(conn, scope, *args)


async def scoped_read(source: Any, info: Info, fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(conn, scope, *args)`` in one worker thread, the scope (the parent's, else the
    request's) resolved on the same connection: one hop for a root field."""
    carried = getattr(source, "scope", None)
    scope = carried if isinstance(carried, Scope) else None
    return await in_thread(_scoped, info.context, scope, fn, args)


def _run(engine: Engine, fn: Callable[..., _T], args: Sequence[Any]) -> _T:
    with engine.connect() as conn:
        return fn(conn, *args)


async def read(info: Info, fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(conn, *args)`` on a read connection, in a worker thread."""
    return await in_thread(_run, info.context.ledger.engine, fn, args)


class SharedLoader(DataLoader[_K, _V]):
    """A DataLoader whose answer for a key survives the cancellation of one of the fields
    awaiting it. Fields of one operation share the future of a key; when graphql-core
    cancels the siblings of a failing field, a bare shared future would be cancelled with
    them, and a field elsewhere in the operation still awaiting it would receive the
    cancellation."""

    def load(self, key: _K) -> Awaitable[_V]:
        return asyncio.shield(super().load(key))


def loader(
    info: Info, name: str, batch: Callable[[Connection, list[_K]], Sequence[_V]]
) -> SharedLoader[_K, _V]:
    """The request's :class:`SharedLoader` ``name``; ``batch(conn, keys)`` answers in key
    order."""
    loaders = info.context.dataloaders
    found = loaders.get(name)
    if found is None:
        engine = info.context.ledger.engine

        async def load(keys: list[_K]) -> Sequence[_V]:
            return await in_thread(_run, engine, batch, (list(keys),))

        found = loaders[name] = SharedLoader(load_fn=load)
    return found  # type: ignore[return-value]


def by_agreement(
    table: Table,
    order: Sequence[ColumnElement[Any]],
    build: Callable[[Any, At], _V],
    key: str = "agreement",
) -> Callable[[Connection, list[tuple[At, str]]], list[list[_V]]]:
    """A :func:`loader` batch function: for each ``(at, id)`` key, ``build(row, at)`` of
    each row of ``table`` whose column ``key`` (the agreement, unless named) is ``id``,
    current at ``at``, in ``order`` (one query per position asked)."""
    column = table.c[key]

    def rows(conn: Connection, keys: list[tuple[At, str]]) -> list[list[_V]]:
        found: dict[tuple[At, str], list[_V]] = {k: [] for k in keys}
        for at in {at for at, _ in keys}:
            ids = sorted({value for key_at, value in keys if key_at == at})
            query = select(table).where(column.in_(ids), at_position(table, at)).order_by(*order)
            for row in conn.execute(query):
                found[(at, row._mapping[key])].append(build(row, at))
        return [found[k] for k in keys]

    return rows


def time_text(value: datetime | None, field: str) -> str | None:
    """An input time as the views store times (VALIDATION_FAILED when it has no zone)."""
    if value is None:
        return None
    return format_utc(require_aware(value, field=field))


def as_json(text: str) -> JSON:
    """A JSON column's value."""
    return json.loads(text)  # type: ignore[no-any-return]


def as_optional_json(text: str | None) -> JSON | None:
    """A nullable JSON column's value."""
    return None if text is None else as_json(text)
