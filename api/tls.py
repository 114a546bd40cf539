"""HTTPS (R30): the ``Strict-Transport-Security`` header a server with TLS sends.

``cmo-ledger serve --tls-cert FILE --tls-key FILE`` (or ``CMO_LEDGER_TLS_CERT`` and
``CMO_LEDGER_TLS_KEY``) has uvicorn serve HTTPS; the app then tells browsers to use HTTPS
only, for a year (RFC 6797). A server without TLS sends no such header: over plain HTTP it
would be ignored, and it must never pin a host that does not serve HTTPS.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["HSTS_HEADER", "HSTS_VALUE", "StrictTransportSecurity"]

HSTS_HEADER = b"strict-transport-security"
HSTS_VALUE = b"max-age=31536000"


class StrictTransportSecurity:
    """Adds ``Strict-Transport-Security: max-age=31536000`` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != HSTS_HEADER]
                message = {**message, "headers": [*headers, (HSTS_HEADER, HSTS_VALUE)]}
            await send(message)

        await self.app(scope, receive, with_header)
