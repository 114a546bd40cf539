"""The Starlette application: routes, the body-size limit and the lifespan.

Routes: ``/graphql`` (POST; GraphiQL for a browser's GET; ``graphql-transport-ws``
websockets), ``/checkpoint`` (the latest signed checkpoint, C2SP text), ``/healthz`` and
``/metrics`` (Prometheus text). ``/checkpoint``, ``/healthz`` and ``/metrics`` need no
signature. ``/`` and ``/console/...``: the browser console (:mod:`api.console.pages`).

The lifespan opens the ledger, catches the read models and the Merkle tree up, starts the
projector, the notary's checkpoint signer, the event feed and the commitments of the
read-access log (:mod:`api.read_log`), and stops them on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from nacl.signing import SigningKey
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.console.pages import console_routes
from api.console.security import ConsoleHeaders
from api.errors import DATABASE_DOWN, LIMIT_EXCEEDED, error_document
from api.limits import Limits
from api.metrics import CONTENT_TYPE, Metrics, render
from api.schema import build_schema
from api.security_log import SecurityLog
from api.services import Services, one_at_a_time
from api.tls import StrictTransportSecurity
from api.view import LedgerGraphQL
from ledger.clock import SYSTEM, Clock
from ledger.config import Settings
from ledger.domain.payloads import PAYLOADS, SCHEMAS, schema_bytes
from ledger.domain.terms_schema import TERMS_SCHEMA_NAME
from ledger.errors import ConfigurationError, Unavailable
from ledger.keystore import PASSPHRASE_FILE, load_keystore
from ledger.runtime import settle_heap

__all__ = ["KEEP_ALIVE_SECONDS", "START_PATIENCE", "create_app", "load_notary_key", "serve_app"]

log = logging.getLogger(__name__)


def load_notary_key(settings: Settings) -> SigningKey:
    """The notary's signing key from ``data_dir/notary.key``, opened with the passphrase
    (``CMO_LEDGER_PASSPHRASE``, else the generated ``data_dir/notary.passphrase``)."""
    passphrase = settings.passphrase
    generated = settings.data_dir / PASSPHRASE_FILE
    if passphrase is None and generated.exists():
        passphrase = generated.read_text(encoding="utf-8").strip()
    if not passphrase:
        raise ConfigurationError(
            "the server signs checkpoints with the notary key: set CMO_LEDGER_PASSPHRASE",
            field="CMO_LEDGER_PASSPHRASE",
        )
    _, key = load_keystore(settings.notary_keystore, passphrase)
    return key


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    services.metrics.request(request.url.path)
    return services


async def healthz(request: Request) -> JSONResponse:
    """Liveness, the log's head and the latest checkpoint's size."""
    services = _services(request)
    head = await run_in_threadpool(services.ledger.head)
    latest = await run_in_threadpool(services.notary.latest)
    return JSONResponse(
        {
            "status": "ok",
            "origin": services.ledger.identity.origin,
            "head": head,
            "checkpoint": None if latest is None else latest.size,
        }
    )


async def checkpoint(request: Request) -> Response:
    """The latest signed checkpoint with its cosignatures, as C2SP signed-note text."""
    services = _services(request)
    latest = await run_in_threadpool(services.notary.latest)
    if latest is None:
        return PlainTextResponse("no checkpoint is signed yet: retry shortly\n", status_code=503)
    return PlainTextResponse(latest.text)


async def schema_index(request: Request) -> JSONResponse:
    """The event types whose payload JSON Schemas are served, and the terms' schema."""
    return JSONResponse(
        {
            "event_types": [f"/schema/{name}.json" for name in PAYLOADS],
            "terms": f"/schema/{TERMS_SCHEMA_NAME}.json",
        }
    )


async def payload_schema(request: Request) -> Response:
    """``GET /schema/<EventType>.json``: that event type's payload JSON Schema
    (``/schema/AgreementTerms.json``: the agreement terms')."""
    event_type = str(request.path_params["event_type"])
    if event_type not in SCHEMAS:
        document = error_document(
            "NOT_FOUND", f"no event type {event_type!r}: see /schema/", "event_type"
        )
        return JSONResponse(document, status_code=404)
    return Response(schema_bytes(event_type), media_type="application/schema+json")


def _gauges(services: Services) -> dict[str, float]:
    head = services.ledger.head()
    latest = services.notary.latest()
    gauges = {
        "cmo_ledger_log_size": float(head),
        "cmo_ledger_tree_size": float(services.tree.size()),
        "cmo_ledger_checkpoint_size": float(0 if latest is None else latest.size),
        "cmo_ledger_subscribers": float(services.feed.subscribers),
    }
    if services.projector is not None:
        gauges["cmo_ledger_projection_lag"] = float(max(0, head - services.projector.reached))
    return gauges


async def metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    services = _services(request)
    gauges = await run_in_threadpool(_gauges, services)
    return Response(render(services.metrics, gauges), media_type=CONTENT_TYPE)


START_PATIENCE = 60.0
"""Seconds a starting process waits for a database that does not answer (restarting, say)
before it gives up. A worker that gave up at once would take its siblings down with it:
uvicorn's supervisor stops every worker when a replacement fails to start."""


async def _waiting_for_the_database(
    start: Callable[[], Awaitable[Services]],
    patience: float,
    clock: Callable[[], float] = time.monotonic,
) -> Services:
    """``start()``, tried again while the database does not answer, for up to ``patience``
    seconds by ``clock``; any other failure, or the database still away after that, is
    raised."""
    deadline = clock() + patience
    delay = 0.25
    while True:
        try:
            return await start()
        except (Unavailable, *DATABASE_DOWN) as error:
            if clock() + delay > deadline:
                raise
            log.warning("the database does not answer (%s); starting again in %.2f s", error, delay)
        await asyncio.sleep(delay)
        delay = min(2 * delay, 5.0)


async def _stop(services: Services) -> None:
    await services.feed.stop()
    await run_in_threadpool(services.close)


def _create_tables(services: Services, create: Callable[[], None]) -> None:
    """Side tables (console sessions, the security log), one process at a time."""
    with one_at_a_time(services.ledger):
        create()


class _GraphQLEndpoint:
    """Dispatches to the GraphQL view, which the lifespan builds with the services."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        view: LedgerGraphQL = scope["app"].state.graphql
        await view(scope, receive, send)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413 and ``LIMIT_EXCEEDED``."""

    def __init__(self, app: ASGIApp, max_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _TooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watched)
        except _TooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.metrics.error(LIMIT_EXCEEDED)
        message = f"request body is over {self.max_bytes} bytes: send smaller batches"
        response = JSONResponse(error_document(LIMIT_EXCEEDED, message), status_code=413)
        await response(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    notary_key: SigningKey | None = None,
    limits: Limits | None = None,
    projections: bool = True,
    clock: Clock = SYSTEM,
    settle: bool = False,
) -> Starlette:
    """Build the app; the ledger opens on start-up and closes on shutdown.

    ``notary_key`` defaults to the keystore in ``settings.data_dir``; ``limits`` to
    ``Limits.from_settings(settings)``; ``clock`` is the time every part of the app reads.
    ``settle``: once started, keep the start-up's heap out of later collections
    (:func:`ledger.runtime.settle_heap`), as a serving process that owns its interpreter
    does (:func:`serve_app`).
    """
    resolved = settings or Settings.from_env()
    chosen = limits or Limits.from_settings(resolved)
    key = notary_key or load_notary_key(resolved)
    counters = Metrics()

    async def start(app: Starlette) -> Services:
        services = await run_in_threadpool(
            functools.partial(
                Services.open,
                resolved,
                chosen,
                key,
                projections=projections,
                metrics=counters,
                clock=clock,
            )
        )
        try:
            await run_in_threadpool(services.start)
            await services.feed.start()
            app.state.services = services
            app.state.graphql = LedgerGraphQL(build_schema(chosen), services)
            await run_in_threadpool(
                _create_tables, services, app.state.graphql.console.create_tables
            )
            app.state.security = SecurityLog(services.ledger, key, counters)
            await run_in_threadpool(_create_tables, services, app.state.security.create_tables)
            services.auth.security = app.state.security
        except BaseException:
            await _stop(services)
            raise
        return services

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = await _waiting_for_the_database(lambda: start(app), START_PATIENCE)
        try:
            reads = asyncio.create_task(services.read_log.run(), name="cmo-ledger-read-log")
            if settle:
                settle_heap()
            try:
                yield
            finally:
                reads.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reads
        finally:
            await _stop(services)

    endpoint = _GraphQLEndpoint()
    routes = [
        Route("/graphql", endpoint, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", endpoint),
        Route("/checkpoint", checkpoint),
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        Route("/schema/", schema_index),
        Route("/schema/{event_type}.json", payload_schema),
        *console_routes(),
    ]
    middleware = [
        Middleware(BodyLimit, max_bytes=chosen.max_body_bytes, metrics=counters),
        Middleware(ConsoleHeaders),
    ]
    if resolved.tls_cert is not None:
        middleware.append(Middleware(StrictTransportSecurity))
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


KEEP_ALIVE_SECONDS = 75
"""How long the server keeps an idle connection open. Longer than clients keep one (httpx:
5 s), so that a client never sends a request on a connection the server is closing at that
moment: such a request fails unanswered, and the client cannot tell whether it landed."""


def serve_app() -> Starlette:
    """The app ``cmo-ledger serve`` runs in each worker process: settings from the
    environment, the heap settled once started."""
    return create_app(settle=True)
