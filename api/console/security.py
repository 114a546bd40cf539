"""The console's session cookie, CSRF tokens and security headers.

* The session cookie (:data:`SESSION_COOKIE`) is ``HttpOnly``, ``SameSite=Strict``,
  ``Path=/`` and ``Secure`` when the request came over https; it holds a random token whose
  SHA-256 is all the database keeps.
* The CSRF token of a session is an HMAC of its session token (nothing more to store): the
  pages carry it in ``<meta name="csrf-token">`` and in every form; a state-changing request
  (a form ``POST``, a GraphQL ``POST`` authenticated by the cookie) must send it back, in the
  form field ``csrf`` or the header ``x-csrf-token``.
* Console pages and GraphiQL carry a Content-Security-Policy without inline scripts
  (``script-src 'self'``), ``frame-ancestors 'none'``, ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: no-referrer``; pages that carry data also ``Cache-Control: no-store``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import MutableMapping

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CONSOLE_CSP",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "GRAPHIQL_CSP",
    "SESSION_COOKIE",
    "ConsoleHeaders",
    "clear_session_cookie",
    "csrf_matches",
    "csrf_token",
    "same_origin",
    "secure_headers",
    "set_session_cookie",
]

SESSION_COOKIE = "cmo_ledger_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
_CSRF_LABEL = b"cmo-ledger console csrf v1"

CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# GraphiQL sets element styles at run time and ships its fonts as data: URLs.
GRAPHIQL_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def csrf_token(session_token: str) -> str:
    """The CSRF token of the session whose token is ``session_token``."""
    return hmac.new(session_token.encode("utf-8"), _CSRF_LABEL, hashlib.sha256).hexdigest()


def csrf_matches(session_token: str, sent: str | None) -> bool:
    """Whether ``sent`` is the session's CSRF token (compared in constant time)."""
    return sent is not None and hmac.compare_digest(csrf_token(session_token), sent)


def same_origin(connection: HTTPConnection) -> bool:
    """False when the request names an ``Origin`` other than the host it was sent to."""
    origin = connection.headers.get("origin")
    if origin is None:
        return True
    host = connection.headers.get("host", "")
    return origin.split("://", 1)[-1].rstrip("/").lower() == host.lower()


def set_session_cookie(
    response: Response, connection: HTTPConnection, token: str, max_age: int
) -> None:
    """Give the browser the session cookie."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=connection.url.scheme == "https",
    )


def clear_session_cookie(response: Response, connection: HTTPConnection) -> None:
    """Tell the browser to drop the session cookie."""
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=connection.url.scheme == "https",
    )


def secure_headers(
    headers: MutableMapping[str, str] | MutableHeaders, *, csp: str = CONSOLE_CSP
) -> None:
    """Set the security headers of a console page (those not set already)."""
    defaults = {
        "content-security-policy": csp,
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
        "cross-origin-opener-policy": "same-origin",
    }
    for name, value in defaults.items():
        if name not in headers:
            headers[name] = value


class ConsoleHeaders:
    """Adds the security headers to every response under ``/console`` (and ``/``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == "/" or path.startswith("/console")):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                secure_headers(MutableHeaders(scope=message))
            await send(message)

        await self.app(scope, receive, with_headers)
