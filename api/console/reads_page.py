"""The console's "who read my data" page (R11): ``GET /console/reads?batch=``.

Runs the API's ``dataReads`` query (:mod:`api.queries.reads`) as the session's party and
lists the logged reads of its batches' GxP data by other parties, newest page last: who,
with which key, which batch and fields, when, the query's SHA-256, and the notary's
``ReadsRecorded`` commitment once signed. Who may ask is the API's decision: its
``FORBIDDEN`` (anyone but the data's owner and the notary) is this page's 403, with no data.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from api.console.pages import _error_page, _services, _session, render
from api.console.queries import execute
from api.console.records import _too_long
from api.console.security import csrf_token

__all__ = ["READS_PAGE", "reads_page"]

_PAGE_SIZE = 200

READS_PAGE = """
query ConsoleReads($b: String, $n: Int!, $after: String) {
  dataReads(batch: $b, first: $n, after: $after) {
    reads {
      id reader key agreementId batch fields operation queryHash at
      commitment { position count root signedAt }
    }
    endCursor hasNextPage
  }
}
"""


async def reads_page(request: Request) -> Response:
    """``GET /console/reads?batch=&after=``: one page of the reads of the caller's data."""
    _services(request)
    session = await _session(request)
    if isinstance(session, Response):
        return session
    caller, token = session
    csrf = csrf_token(token)
    batch = request.query_params.get("batch", "").strip()
    after = request.query_params.get("after", "").strip()
    for value, field in ((batch, "batch"), (after, "after")):
        if (refused := _too_long(value, field, caller, csrf)) is not None:
            return refused
    variables = {"b": batch or None, "n": _PAGE_SIZE, "after": after or None}
    answer = await execute(request, caller, READS_PAGE, variables)
    if answer.errors or answer.data is None:
        return _error_page(answer, caller, csrf)
    page = answer.data["dataReads"]
    return render(
        "reads.html",
        title="Who read your data",
        me=caller,
        csrf=csrf,
        batch=batch,
        reads=page["reads"],
        next_after=page["endCursor"] if page["hasNextPage"] else None,
    )
