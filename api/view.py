"""The GraphQL endpoint: strawberry's ASGI view with the ledger's authentication.

* HTTP: the request signature is verified before the operation runs. An unsigned
  request runs anonymously; a request whose signature is refused gets HTTP 401 and one
  ``UNAUTHENTICATED`` error, and runs nothing. A body that is not a GraphQL request gets
  HTTP 400 and one ``VALIDATION_FAILED`` error. JSON is read strictly (I-JSON, RFC 7493):
  UTF-8 only, no duplicate member names (another parser could read a signed envelope
  differently), no ``NaN``/``Infinity``, an object or array at the top; nesting deeper
  than the parser's stack or numbers over 4300 digits answer ``LIMIT_EXCEEDED``. No text
  may hold a NUL character or a lone surrogate (no database stores either; no field of the
  ledger needs one).
  A database that cannot be reached while the signature is checked answers HTTP 503 and
  ``UNAVAILABLE``.
* A browser signed in to the console (:mod:`api.console`) sends ``POST /graphql``
  unsigned, with its session cookie and the session's ``x-csrf-token`` header: it runs as
  the session's party, judged by the same access rules. A session that no longer holds
  (unknown, idle, expired, its key revoked) or a missing CSRF header answers HTTP 401.
  ``GET /graphql`` serves GraphiQL from the app's own files (:mod:`api.console.graphiql`).
  An unsigned websocket from this ledger's own pages (its ``Origin`` the host) with the
  session cookie runs as the session's party.
* Websockets (``graphql-transport-ws`` only): ``connection_init`` carries the signature
  (see :mod:`clients.http_signing`); a refused one closes the socket with code 4401 and
  the reason. More operations than ``Limits.max_subscriptions`` on one connection are
  refused with a ``LIMIT_EXCEEDED`` error message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from datetime import timedelta
from typing import Any

import anyio
import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError, OperationDefinitionNode, OperationType
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)
from strawberry.types import ExecutionResult

from api.access import forget_authority
from api.auth import SignedRequest
from api.console.graphiql import graphiql_page
from api.console.store import ConsoleStore, browser_caller, websocket_caller
from api.context import Context
from api.errors import (
    DATABASE_DOWN,
    INTERNAL_ERROR,
    INTERNAL_MESSAGE,
    LIMIT_EXCEEDED,
    UNAUTHENTICATED,
    UNAVAILABLE,
    UNAVAILABLE_MESSAGE,
    VALIDATION_FAILED,
    Unauthenticated,
    error_document,
)
from api.parsing import parsed
from api.services import Services
from api.threads import in_thread, request_threads

__all__ = ["LedgerGraphQL"]

_log = logging.getLogger(__name__)
_CLOSE_UNAUTHENTICATED = 4401
_MAX_REASON_BYTES = 120  # a websocket close reason holds at most 123 bytes


def _reason(error: Unauthenticated) -> str:
    text = f"{UNAUTHENTICATED}: {error.message}"
    return text.encode("utf-8")[:_MAX_REASON_BYTES].decode("utf-8", "ignore")


class _TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """strawberry's handler, closing refused connections with a reason, coding the
    operation limit's refusal, and closing the connection once its key is revoked: checked
    before every operation and whenever the log records a revocation."""

    _watcher: asyncio.Task[None] | None = None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except Unauthenticated as error:
            await self._close_unauthenticated(error)
            return
        if self.connection_acknowledged and self.context.party is not None:
            self._watcher = asyncio.create_task(self._close_when_revoked())

    async def shutdown(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await super().shutdown()

    async def _close_unauthenticated(self, error: Unauthenticated) -> None:
        self.context.services.metrics.error(UNAUTHENTICATED)
        await self.websocket.close(code=_CLOSE_UNAUTHENTICATED, reason=_reason(error))

    async def _still_authenticated(self) -> bool:
        """Whether the connection's key is still valid; if not, the connection is closed."""
        caller = self.context.party
        if caller is None:
            return True
        try:
            await in_thread(self.context.services.auth.recheck, caller)
        except Unauthenticated as error:
            await self._close_unauthenticated(error)
            return False
        return True

    async def _close_when_revoked(self) -> None:
        with self.context.services.feed.revocations() as revoked:
            while True:
                await revoked.wait()
                revoked.clear()
                if not await self._still_authenticated():
                    return

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged:
            if not await self._still_authenticated():
                return
            # Each operation judges grants afresh: none inherits an earlier one's reading.
            forget_authority(self.context)
            self.context.dataloaders.clear()
        limit = self.max_subscriptions_per_connection
        if (
            self.connection_acknowledged
            and limit is not None
            and len(self.operations) >= limit
            and message["id"] not in self.operations
        ):
            error = GraphQLError(
                f"at most {limit} operations may run on one connection: complete one first",
                extensions={"code": LIMIT_EXCEEDED},
            )
            self.context.services.metrics.error(LIMIT_EXCEEDED)
            await self.send_message(
                {"id": message["id"], "type": "error", "payload": [error.formatted]}
            )
            return
        await super().handle_subscribe(message)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        """A query or mutation runs within ``Limits.query_time_budget``, as over HTTP; a
        subscription runs until completed or its connection closes."""
        limits = self.context.services.limits
        if _is_subscription(operation.query, operation.operation_name, limits.max_tokens):
            await super().run_operation(operation)
            return
        with anyio.move_on_after(limits.query_time_budget) as timer:
            await super().run_operation(operation)
        if timer.cancelled_caught:
            self.context.services.metrics.error(LIMIT_EXCEEDED)
            error = GraphQLError(
                _over_budget(limits.query_time_budget), extensions={"code": LIMIT_EXCEEDED}
            )
            await operation.send_initial_errors([error])


def _cancelled_from_outside() -> bool:
    """Whether the running task itself is being cancelled (a time budget, a hang-up, the
    server stopping), rather than a future it awaited having been cancelled by another."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class RefusedJSON(json.JSONDecodeError):
    """JSON the API does not read; a ``JSONDecodeError`` so that websockets close as usual."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason, "", 0)
        self.code = code
        self.reason = reason


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for name, value in pairs:
        if name in document:
            raise RefusedJSON(VALIDATION_FAILED, f"member {name!r} appears twice in one object")
        document[name] = value
    return document


def encode_answer(data: object) -> str:
    """An answer as compact JSON text (text: websocket frames are text frames).

    orjson encodes a large answer (a CPV of a thousand batches) several times faster than
    the standard library; what it refuses (an integer beyond 64 bits) goes to the latter.
    """
    try:
        return orjson.dumps(data).decode()
    except TypeError:
        return json.dumps(data, separators=(",", ":"))


def _no_constant(name: str) -> Any:
    raise RefusedJSON(VALIDATION_FAILED, f"{name} is not JSON: send numbers as finite values")


def strict_json(data: str | bytes) -> object:
    """The JSON document in ``data``, or :class:`RefusedJSON` saying what is wrong."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        document = json.loads(text, object_pairs_hook=_unique_members, parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise RefusedJSON(VALIDATION_FAILED, "the body is not UTF-8") from None
    except RecursionError:
        raise RefusedJSON(LIMIT_EXCEEDED, "the JSON is nested too deeply") from None
    except json.JSONDecodeError as exc:
        if isinstance(exc, RefusedJSON):
            raise
        where = f"line {exc.lineno} column {exc.colno}"
        raise RefusedJSON(VALIDATION_FAILED, f"not JSON: {exc.msg} at {where}") from None
    except ValueError:
        raise RefusedJSON(LIMIT_EXCEEDED, "a number in the JSON has over 4300 digits") from None
    if not isinstance(document, (dict, list)):
        raise RefusedJSON(VALIDATION_FAILED, "send a JSON object: {query, variables}")
    # Escapes are the only way JSON text can carry either: walk the document only then.
    if _UNSTORABLE_ESCAPE.search(text):
        found = _unstorable_at(document, "")
        if found is not None:
            raise RefusedJSON(VALIDATION_FAILED, f"{found[0]} holds {found[1]}: no text may")
    return document


# A NUL, or half of a UTF-16 surrogate pair (a pair decodes to one character).
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def _unstorable(text: str) -> str | None:
    if "\x00" in text:
        return "a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "a lone surrogate, which is not a Unicode character"
    return None


def _shown(name: str) -> str:
    """``name`` as an error may quote it: a lone surrogate written as its escape."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _unstorable_at(value: Any, path: str) -> tuple[str, str] | None:
    """The path of the first text (member name or string) that no database can store
    (a NUL, a lone surrogate), and what it holds; or None."""
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        if type(item) is str:
            what = _unstorable(item)
            if what is not None:
                return where, what
        elif type(item) is dict:
            for name, member in item.items():
                shown = _shown(name)
                inner = f"{where}.{shown}" if where else shown
                what = _unstorable(name)
                if what is not None:
                    return inner, what
                stack.append((inner, member))
        elif type(item) is list:
            stack.extend((f"{where}[{i}]", member) for i, member in enumerate(item))
    return None


class LedgerGraphQL(GraphQL[Context, None]):
    """``/graphql`` over HTTP and websockets."""

    graphql_transport_ws_handler_class = _TransportWSHandler

    def __init__(self, schema: BaseSchema, services: Services) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            allow_queries_via_get=False,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=10),
            max_subscriptions_per_connection=services.limits.max_subscriptions,
        )
        self.services = services
        self.console = ConsoleStore(services.ledger, services.auth, services.settings)

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL from this host's own files (no CDN), with the console session's CSRF
        token and the console's security headers."""
        return graphiql_page(request)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.services.metrics.request("/graphql")
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        response: Response | None
        try:
            with request_threads():
                response = await self._run_within_budget(Request(scope, receive))
        except Unauthenticated as error:
            self.services.metrics.error(UNAUTHENTICATED)
            response = JSONResponse(error_document(UNAUTHENTICATED, error.message), status_code=401)
        except HTTPException as error:  # not JSON, no query, wrong method
            response = _refusal(error)
        except DATABASE_DOWN:
            self.services.metrics.error(UNAVAILABLE)
            document = error_document(UNAVAILABLE, UNAVAILABLE_MESSAGE)
            response = JSONResponse(document, status_code=503)
        if response is not None:
            await response(scope, receive, send)

    async def _run_within_budget(self, request: Request) -> Response | None:
        """The operation's response; ``None`` when the client hung up first (its work is
        cancelled); ``LIMIT_EXCEEDED`` when it runs over ``Limits.query_time_budget``."""
        await request.body()  # read whole, so that what arrives next can only be a hang-up
        budget = self.services.limits.query_time_budget
        response: Response | None = None
        with anyio.CancelScope() as hung_up:
            watcher = asyncio.create_task(_cancel_on_disconnect(request, hung_up))
            try:
                with anyio.move_on_after(budget) as timer:
                    response = await self.run(request)
            except asyncio.CancelledError:
                if _cancelled_from_outside():
                    raise
                return self._stray_cancellation()
            finally:
                watcher.cancel()
        if timer.cancelled_caught:
            self.services.metrics.error(LIMIT_EXCEEDED)
            return JSONResponse(error_document(LIMIT_EXCEEDED, _over_budget(budget)))
        return response

    def _stray_cancellation(self) -> Response:
        """A cancellation raised by work the request awaited, not aimed at the request:
        answered as the internal error it is, never as a broken connection."""
        _log.exception("an operation's work was cancelled from within")
        self.services.metrics.error(INTERNAL_ERROR)
        return JSONResponse(error_document(INTERNAL_ERROR, INTERNAL_MESSAGE), status_code=500)

    def decode_json(self, data: str | bytes) -> object:
        return strict_json(data)

    def encode_json(self, data: object) -> str:
        return encode_answer(data)

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Any,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        _check_http_operation(request_data, self.services.limits.max_tokens)
        return await super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        services = self.services
        context = Context(
            ledger=services.ledger,
            settings=services.settings,
            limits=services.limits,
            services=services,
            request=request,
            response=response,
        )
        if isinstance(request, Request):
            body = await request.body()
            signed = SignedRequest(request.method, str(request.url), request.headers)
            context.party = await in_thread(services.auth.authenticate_http, signed, body)
            if context.party is None and request.method == "POST":
                # An unsigned request from a signed-in browser: the console session's party.
                context.party = await browser_caller(self.console, request)
        return context

    async def on_ws_connect(self, context: Context) -> dict[str, object]:
        payload = context.connection_params or {}
        url = context.request.url if context.request is not None else None
        path = url.path if url is not None else "/graphql"
        authority = url.netloc if url is not None else None
        context.party = await in_thread(
            self.services.auth.authenticate_ws, payload, path, authority
        )
        if context.party is None and isinstance(context.request, WebSocket):
            # An unsigned websocket from a signed-in browser (GraphiQL's subscriptions).
            context.party = await websocket_caller(self.console, context.request)
        return {"party": context.party.party_id if context.party else None}


class RefusedOperation(HTTPException):
    """A request whose operation cannot run over HTTP: answered 400, with ``field``."""

    def __init__(self, reason: str, field: str) -> None:
        super().__init__(400, reason)
        self.field = field


def _over_budget(budget: float) -> str:
    return (
        f"the operation ran over its time budget of {budget:g} s and was stopped: "
        "ask for less (fewer nested lists, smaller pages); a mutation's outcome is "
        "then unknown: read nextVersion of its subject"
    )


def _operations(query: object, max_tokens: int) -> list[OperationDefinitionNode]:
    """The operations of a document; none when it does not parse (the schema then refuses
    it with its code)."""
    if not isinstance(query, str):
        return []
    try:
        document = parsed(query, max_tokens)
    except GraphQLError:
        return []
    return [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]


def _chosen(
    operations: list[OperationDefinitionNode], name: str | None
) -> OperationDefinitionNode | None:
    for operation in operations:
        if name is None or (operation.name and operation.name.value == name):
            return operation
    return None


def _is_subscription(query: str, name: str | None, max_tokens: int) -> bool:
    chosen = _chosen(_operations(query, max_tokens), name)
    return chosen is not None and chosen.operation is OperationType.SUBSCRIPTION


def _check_http_operation(data: GraphQLRequestData, max_tokens: int) -> None:
    """Refuse a document of several operations without ``operationName`` (the GraphQL
    spec's request error) and a subscription, which runs over a websocket only."""
    operations = _operations(data.query, max_tokens)
    if data.operation_name is None and len(operations) > 1:
        raise RefusedOperation(
            f"the document holds {len(operations)} operations: name the one to run "
            "in operationName",
            "operationName",
        )
    chosen = _chosen(operations, data.operation_name)
    if chosen is not None and chosen.operation is OperationType.SUBSCRIPTION:
        raise RefusedOperation(
            "a subscription runs over a websocket (graphql-transport-ws) at this URL, "
            "not over HTTP POST",
            "query",
        )


async def _cancel_on_disconnect(request: Request, scope: anyio.CancelScope) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


def _refusal(error: HTTPException) -> JSONResponse:
    if isinstance(error, RefusedOperation):
        document = error_document(VALIDATION_FAILED, error.reason, error.field)
        return JSONResponse(document, status_code=error.status_code)
    refused = error.__cause__
    if isinstance(refused, RefusedJSON):
        return JSONResponse(error_document(refused.code, refused.reason, "body"), status_code=400)
    code = "NOT_FOUND" if error.status_code == 404 else VALIDATION_FAILED
    document = error_document(code, f"{error.reason}: send a GraphQL request as JSON")
    return JSONResponse(document, status_code=error.status_code)
