"""The Starlette application: routes and the lifespan that opens the ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ledger.application import Ledger
from ledger.config import Settings

__all__ = ["create_app"]


async def healthz(request: Request) -> JSONResponse:
    """Liveness and the log's size: answers without authentication."""
    ledger: Ledger = request.app.state.ledger
    head = await run_in_threadpool(ledger.head)
    return JSONResponse({"status": "ok", "origin": ledger.identity.origin, "head": head})


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app; the ledger is opened on start-up and closed on shutdown."""
    resolved = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.ledger = await run_in_threadpool(Ledger.open, resolved)
        try:
            yield
        finally:
            app.state.ledger.close()

    return Starlette(routes=[Route("/healthz", healthz)], lifespan=lifespan)
