"""GraphiQL at ``GET /graphql``, from the app's own files.

The page is strawberry's (the same GraphiQL 3.8.3, React 18.2.0 and explorer plugin 1.0.2,
vendored under ``static/vendor/``, see its README), with its inline script moved to
``static/graphiql-init.js`` so that the Content-Security-Policy allows scripts from this
host only. It carries the console session's CSRF token, which the script sends with each
request as ``x-csrf-token``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse

from api.console.pages import render
from api.console.security import GRAPHIQL_CSP, SESSION_COOKIE, csrf_token, secure_headers

__all__ = ["graphiql_page"]


def graphiql_page(request: Request) -> HTMLResponse:
    """The GraphiQL page, with the CSRF token of the browser's session (if any)."""
    token = request.cookies.get(SESSION_COOKIE)
    response = render("graphiql.html", csrf=csrf_token(token) if token else "")
    secure_headers(response.headers, csp=GRAPHIQL_CSP)
    return response
