# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""The authorised data queries of the GraphQL API.

``QUERY_TYPES`` are merged into the root ``Query`` by :mod:`api.schema`: the data fields
(:mod:`api.queries.fields`), ``asOf`` and ``traceBatch``. Every field is authorised per
caller (see :mod:`api.permissions` and ``docs/access.md``).
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.queries.asof import AsOf, resolve_as_of
from api.queries.common import Info
from api.queries.cpv import CpvQuery
from api.queries.fields import DataFields
from api.queries.reads import ReadsQuery
from api.queries.security import SecurityQuery
from api.queries.trace import BatchTrace, trace_batch

__all__ = ["QUERY_TYPES", "DataQuery"]


@strawberry.type
class DataQuery(DataFields):
    """Root data queries: the shared fields plus ``asOf`` and ``traceBatch``."""

    @strawberry.field(
        description="The data fields as they stood at a log position (or the last position "
        "recorded by a time); give exactly one. Access is still decided now."
    )
    async def as_of(
        self, info: Info, position: int | None = None, time: datetime | None = None
    ) -> AsOf | None:
        return await resolve_as_of(info, position, time)

    @strawberry.field(description="One batch traced end to end (FORBIDDEN unless you may see it).")
    async def trace_batch(self, info: Info, id: str) -> BatchTrace | None:
        return await trace_batch(info, id)


QUERY_TYPES: tuple[type, ...] = (DataQuery, CpvQuery, SecurityQuery, ReadsQuery)
