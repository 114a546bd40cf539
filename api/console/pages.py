"""The console's routes: sign-in by challenge, sign-out, the home page, the audit trail
and its export, and the static files (the console's and GraphiQL's, vendored).

| route | what |
| --- | --- |
| ``GET /`` | redirects to ``/console`` |
| ``POST /console/challenge`` | a one-time challenge for the key that signed the request |
| ``GET /console/sign-in?challenge=&signature=`` | checks the link, asks to confirm (no change) |
| ``POST /console/sign-in`` | signs the browser in, once, within 60 s (same-origin form) |
| ``POST /console/sign-out`` | ends the session (form with the CSRF token) |
| ``GET /console`` | the signed-in party's home page |
| ``GET /console/audit`` | the audit trail, filtered, a keyset page at a time |
| ``GET /console/audit/export.csv`` / ``.json`` | the filtered trail, every page |
| ``GET /console/batches/{name}`` (and parameters, grants, verify) | :mod:`api.console.records` |
| ``GET /console/browser-key``, ``POST /console/sign/...`` | :mod:`api.console.signing` |
| ``POST /console/evidence/prepare`` | a batch's bundle to sign: :mod:`api.console.evidence` |
| ``/console/static/...`` | stylesheet, GraphiQL's start-up script, vendored GraphiQL |
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from jinja2 import Environment, FileSystemLoader
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from api.auth import Caller, SignedRequest
from api.console.challenge import CHALLENGE_PATH, SIGN_IN_PATH, b64url, from_b64url
from api.console.queries import (
    AUDIT,
    AUDIT_COLUMNS,
    CLAIMS,
    HOME,
    MAX_BATCHES,
    PENDING,
    Answer,
    batch_issues,
    execute,
)
from api.console.security import (
    CSRF_FIELD,
    SESSION_COOKIE,
    clear_session_cookie,
    csrf_matches,
    csrf_token,
    same_origin,
    set_session_cookie,
)
from api.console.store import ConsoleStore, SessionRefused, SignInRefused
from api.errors import UNAUTHENTICATED, Unauthenticated, error_document
from api.security_log import record_console_refusal
from api.services import Services
from api.threads import in_thread
from ledger.timeutil import format_utc

__all__ = ["STATIC", "TEMPLATES", "console_routes", "render"]

HERE = Path(__file__).parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"
EXPIRING_WITHIN = timedelta(days=14)
ISSUES_PER_OPERATION = 25
"""Batches asked about in one operation of the home page (its cost stays far below the
operation cost limit)."""
"""Batches whose open deviations and excursions the home page looks at (newest first)."""
EXPORT_MAX = 50_000
"""Entries one export holds at most; over it, the filter must be narrowed."""
_MAX_PARAMETER = 200
_FILTERS = ("agreement", "batch", "type", "signer", "from", "to")
_OPEN_REPORTING = ("open", "unreported", "late")

_templates = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)


def render(template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """A console page; ``Cache-Control: no-store``: pages carry data or a CSRF token."""
    html = _templates.get_template(template).render(**values)
    return HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})


def _message(
    status: int, title: str, message: str, *, caller: Caller | None = None, csrf: str = ""
) -> HTMLResponse:
    return render("message.html", status, title=title, message=message, me=caller, csrf=csrf)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    services.metrics.request(request.url.path)
    return services


def _store(request: Request) -> ConsoleStore:
    store: ConsoleStore = request.app.state.graphql.console
    return store


async def _session(request: Request) -> tuple[Caller, str] | Response:
    """The session's caller and token, or the page refusing the request."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return _message(
            401,
            "Sign in",
            "You are not signed in. Run `cmo-ledger login --key YOUR.key --url "
            f"{request.base_url}` and open the link it prints.",
        )
    try:
        caller = await in_thread(_store(request).authenticate, token)
    except SessionRefused as error:
        response = _message(401, "Signed out", error.message)
        clear_session_cookie(response, request)
        return response
    return caller, token


def _error_page(answer: Answer, caller: Caller, csrf: str) -> HTMLResponse:
    first = answer.errors[0]
    status = {
        "FORBIDDEN": 403,
        "NOT_FOUND": 404,
        "UNAUTHENTICATED": 401,
        "VALIDATION_FAILED": 400,
        "LIMIT_EXCEEDED": 400,
        "UNAVAILABLE": 503,
    }.get(first.code, 500)
    where = f" ({first.field})" if first.field else ""
    return _message(
        status, first.code, f"{first.code}{where}: {first.message}", caller=caller, csrf=csrf
    )


def _stranger(caller: Caller, csrf: str) -> HTMLResponse:
    return _message(
        403,
        "No access",
        f"{caller.party_id} is no party to an agreement on this ledger and holds no grant "
        "in force: there is nothing here for it to see.",
        caller=caller,
        csrf=csrf,
    )


# ---------------------------------------------------------------------- sign-in


async def root(request: Request) -> Response:
    """``/``: the console."""
    return RedirectResponse("/console", status_code=307)


async def challenge(request: Request) -> Response:
    """``POST /console/challenge``, signed: a challenge for the key that signed it."""
    services = _services(request)
    body = await request.body()
    signed = SignedRequest(request.method, str(request.url), request.headers)
    try:
        caller = await in_thread(services.auth.authenticate_http, signed, body)
        if caller is None:
            raise Unauthenticated("sign this request with your party key (`cmo-ledger login` does)")
    except Unauthenticated as error:
        services.metrics.error(UNAUTHENTICATED)
        document = error_document(UNAUTHENTICATED, error.message)
        return JSONResponse(document, status_code=401)
    issued = await in_thread(_store(request).issue, caller)
    answer = {
        "challenge": b64url(issued.value),
        "party": issued.party,
        "key": issued.key_id,
        "expiresAt": format_utc(issued.expires_at),
        "signIn": SIGN_IN_PATH,
    }
    return JSONResponse(answer, headers={"cache-control": "no-store"})


def _decoded(params: Mapping[str, str], name: str) -> bytes | HTMLResponse:
    text = params.get(name)
    what = {"challenge": "the challenge", "signature": "the signature"}[name]
    if not text:
        return _message(
            400, "Sign-in refused", f"VALIDATION_FAILED ({name}): the link lacks {what}"
        )
    try:
        if len(text) > _MAX_PARAMETER:
            raise ValueError(name)
        return from_b64url(text)
    except ValueError:
        return _message(
            400,
            "Sign-in refused",
            f"VALIDATION_FAILED ({name}): {what} is not base64url: copy the whole link",
        )


def _link_parts(
    services: Services, params: Mapping[str, str]
) -> tuple[bytes, bytes] | HTMLResponse:
    value = _decoded(params, "challenge")
    if isinstance(value, Response):
        services.metrics.sign_in("unknown", "failed")
        return value
    signature = _decoded(params, "signature")
    if isinstance(signature, Response):
        services.metrics.sign_in("unknown", "failed")
        return signature
    return value, signature


def _cross_site(request: Request) -> bool:
    """Whether a browser says the request comes from elsewhere than this ledger's pages:
    ``Sec-Fetch-Site`` other than ``same-origin`` (or ``none``), or without it an
    ``Origin`` naming another host or ``null`` (the pages' ``no-referrer`` policy makes a
    form's ``Origin`` ``null``, so the fetch metadata is what a current browser is judged
    by). A client that sends neither is no browser another site could drive."""
    fetched = request.headers.get("sec-fetch-site")
    if fetched is not None:
        return fetched not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return origin == "null" or not same_origin(request)


async def sign_in(request: Request) -> Response:
    """``GET /console/sign-in``: the link checked (not consumed) and a page asking to
    confirm; its ``POST`` signs in, so a link prefetcher cannot use the link up."""
    services = _services(request)
    parts = _link_parts(services, request.query_params)
    if isinstance(parts, Response):
        return parts
    value, signature = parts
    try:
        caller = await in_thread(_store(request).check, value, signature)
    except SignInRefused as refused:
        services.metrics.sign_in(refused.party, refused.outcome)
        await record_console_refusal(request, refused.party, refused.outcome, refused.message)
        return _message(401, "Sign-in refused", f"{UNAUTHENTICATED}: {refused.message}")
    return render(
        "confirm.html",
        title="Confirm sign-in",
        party=caller.party_id,
        key=caller.key_id,
        challenge=b64url(value),
        signature=b64url(signature),
        csrf="",
    )


async def sign_in_confirm(request: Request) -> Response:
    """``POST /console/sign-in`` (form ``challenge``, ``signature``; no CSRF token, there is
    no session yet, but same-origin): consume the challenge, set the session cookie, go
    home."""
    services = _services(request)
    if _cross_site(request):
        services.metrics.sign_in("unknown", "failed")
        return _message(
            403,
            "Sign-in refused",
            "FORBIDDEN (origin): confirm the sign-in on this ledger's own page: open the link "
            "again",
        )
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    fields = {name: values[0] for name, values in form.items() if values}
    parts = _link_parts(services, fields)
    if isinstance(parts, Response):
        return parts
    value, signature = parts
    store = _store(request)
    try:
        token, caller = await in_thread(store.sign_in, value, signature)
    except SignInRefused as refused:
        services.metrics.sign_in(refused.party, refused.outcome)
        await record_console_refusal(request, refused.party, refused.outcome, refused.message)
        return _message(401, "Sign-in refused", f"{UNAUTHENTICATED}: {refused.message}")
    services.metrics.sign_in(caller.party_id, "accepted")
    response = RedirectResponse("/console", status_code=303)
    set_session_cookie(response, request, token, store.lifetime_ms // 1000)
    return response


async def sign_out(request: Request) -> Response:
    """``POST /console/sign-out`` (form with ``csrf``): end the session."""
    _services(request)
    token = request.cookies.get(SESSION_COOKIE)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    sent = form.get(CSRF_FIELD, [None])[0]
    if not token or not csrf_matches(token, sent):
        return _message(
            403,
            "Sign-out refused",
            "FORBIDDEN (csrf): the form does not carry this session's token: sign out from a "
            "console page",
        )
    await in_thread(_store(request).sign_out, token)
    response = _message(200, "Signed out", "You are signed out. `cmo-ledger login` signs in.")
    clear_session_cookie(response, request)
    return response


# ------------------------------------------------------------------------ home


async def _approvals(
    request: Request, caller: Caller, agreements: list[dict[str, Any]]
) -> list[dict[str, str]]:
    """What waits for the caller to sign: proposals, amendments and parameter revisions
    the other party of its agreements made."""
    me = caller.party_id
    waiting: list[dict[str, str]] = []
    for agreement in agreements:
        if me not in (agreement["sponsor"], agreement["cmo"]):
            continue
        title = agreement["title"]
        if agreement["status"] == "proposed" and agreement["proposedBy"] != me:
            waiting.append(
                {
                    "what": "agreement to sign",
                    "agreement": title,
                    "by": agreement["proposedBy"],
                    "since": agreement["proposedAt"],
                    "detail": f"terms version {agreement['termsVersion']}",
                }
            )
        answer = await execute(request, caller, PENDING, {"id": agreement["id"]})
        data = answer.data or {}
        for amendment in (data.get("agreement") or {}).get("amendments") or []:
            if amendment["status"] == "pending" and amendment["proposedBy"] != me:
                waiting.append(
                    {
                        "what": "amendment to decide",
                        "agreement": title,
                        "by": amendment["proposedBy"],
                        "since": amendment["proposedAt"],
                        "detail": amendment["reason"] or "",
                    }
                )
        for parameter in data.get("parameters") or []:
            for revision in parameter["revisions"]:
                if revision["outcome"] == "pending" and revision["proposedBy"] != me:
                    waiting.append(
                        {
                            "what": "parameter revision to decide",
                            "agreement": title,
                            "by": revision["proposedBy"],
                            "since": revision["proposedAt"],
                            "detail": f"{parameter['name']}: {revision['reason'] or ''}",
                        }
                    )
    return waiting


def _expiring(grants: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    horizon = now + EXPIRING_WITHIN
    soon = []
    for grant in grants:
        until = grant["validUntil"]
        if until and datetime.fromisoformat(until.replace("Z", "+00:00")) <= horizon:
            soon.append(grant)
    return sorted(soon, key=lambda g: str(g["validUntil"]))


async def _batch_issues(
    request: Request, caller: Caller, batches: list[tuple[str, str]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """Open deviations, open or unreported excursions, and batches not shared with the
    caller, of the :data:`MAX_BATCHES` most recent batches, :data:`ISSUES_PER_OPERATION`
    batches to an operation (a refused batch leaves the others standing)."""
    deviations: list[dict[str, Any]] = []
    excursions: list[dict[str, Any]] = []
    withheld: list[str] = []
    chosen = batches[:MAX_BATCHES]
    for start in range(0, len(chosen), ISSUES_PER_OPERATION):
        group = chosen[start : start + ISSUES_PER_OPERATION]
        variables = {f"b{index}": batch for index, (_, batch) in enumerate(group)}
        answer = await execute(request, caller, batch_issues(len(group)), variables)
        data = answer.data or {}
        for index, (title, batch) in enumerate(group):
            events = (data.get(f"d{index}") or {}).get("events")
            if events is None:
                withheld.append(batch)
            for event in events or []:
                if event["acknowledgedAt"] is None and event["supersededBy"] is None:
                    deviations.append({**event, "batch": batch, "agreement": title})
            for excursion in (data.get(f"x{index}") or {}).get("excursions") or []:
                if (
                    excursion["evaluation"] == "action"
                    and excursion["reporting"] in _OPEN_REPORTING
                ):
                    excursions.append({**excursion, "batch": batch, "agreement": title})
    return deviations, excursions, withheld


async def _claims(
    request: Request, caller: Caller, agreements: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Enhancement claims the other party of the caller's agreements made, not answered."""
    mine = {a["id"] for a in agreements if caller.party_id in (a["sponsor"], a["cmo"])}
    if not mine:
        return []
    answer = await execute(request, caller, CLAIMS)
    found: list[dict[str, Any]] = (answer.data or {}).get("enhancements") or []
    return [
        c
        for c in found
        if c["agreementId"] in mine
        and c["status"] == "claimed"
        and c["claimant"] != caller.party_id
    ]


async def home(request: Request) -> Response:
    """``GET /console``: what the signed-in party has to look at."""
    services = _services(request)
    session = await _session(request)
    if isinstance(session, Response):
        return session
    caller, token = session
    csrf = csrf_token(token)
    answer = await execute(request, caller, HOME, {"latest": MAX_BATCHES})
    if answer.errors or answer.data is None:
        return _error_page(answer, caller, csrf)
    data = answer.data
    agreements: list[dict[str, Any]] = data["agreements"]
    grants: list[dict[str, Any]] = data["grants"] or []
    if not agreements and not grants:
        return _stranger(caller, csrf)
    titles = {a["id"]: a["title"] for a in agreements}
    batches = sorted(
        ((a["title"], b["id"], b["startedAt"]) for a in agreements for b in a["batches"]),
        key=lambda item: item[2],
        reverse=True,
    )
    deviations, excursions, withheld = await _batch_issues(
        request, caller, [(title, batch) for title, batch, _ in batches]
    )
    claims = await _claims(request, caller, agreements)
    return render(
        "home.html",
        claims=claims,
        title="Home",
        me=data["me"],
        csrf=csrf,
        in_force=[a for a in agreements if a["status"] == "effective"],
        others=[a for a in agreements if a["status"] != "effective"],
        approvals=await _approvals(request, caller, agreements),
        reviews=data["reviews"] or [],
        deliveries=data["deliveries"] or [],
        deviations=deviations,
        excursions=excursions,
        withheld=withheld,
        expiring=_expiring(grants, services.ledger.clock.now()),
        titles=titles,
    )


# ----------------------------------------------------------------- audit trail


class _BadFilter(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _time(text: str, field: str) -> str:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _BadFilter(field, f"{text!r} is no time: write 2026-03-01T09:00Z") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # a browser's datetime-local field: read as UTC
    return format_utc(value)


def _filters(params: Mapping[str, str]) -> dict[str, str]:
    """The filters given (stripped, non-empty), checked for length and times."""
    chosen: dict[str, str] = {}
    for name in (*_FILTERS, "after", "first"):
        value = params.get(name, "").strip()
        if len(value) > _MAX_PARAMETER:
            raise _BadFilter(name, f"at most {_MAX_PARAMETER} characters")
        if value:
            chosen[name] = value
    for name in ("from", "to"):
        if name in chosen:
            chosen[name] = _time(chosen[name], name)
    return chosen


def _first(chosen: Mapping[str, str], limit: int) -> int:
    text = chosen.get("first", "50")
    if not text.isdigit() or not 1 <= int(text) <= limit:
        raise _BadFilter("first", f"a page holds 1 to {limit} entries, not {text!r}")
    return int(text)


def _variables(chosen: Mapping[str, str], first: int, after: str | None) -> dict[str, Any]:
    audit_filter = {name: chosen[name] for name in _FILTERS if name in chosen}
    return {"filter": audit_filter or None, "first": first, "after": after}


async def _audit_session(
    request: Request,
) -> tuple[Caller, str, dict[str, str]] | Response:
    _services(request)
    session = await _session(request)
    if isinstance(session, Response):
        return session
    caller, token = session
    csrf = csrf_token(token)
    try:
        chosen = _filters(request.query_params)
    except _BadFilter as bad:
        message = f"VALIDATION_FAILED ({bad.field}): {bad.message}"
        return _message(400, "Filter refused", message, caller=caller, csrf=csrf)
    # A stranger sees nothing, not even the shape of the trail.
    probe = await execute(request, caller, "{ agreements { id } grants(active: true) { id } }")
    if probe.data is not None and not probe.data["agreements"] and not probe.data["grants"]:
        return _stranger(caller, csrf)
    return caller, csrf, chosen


async def audit(request: Request) -> Response:
    """``GET /console/audit``: a page of the filtered trail."""
    found = await _audit_session(request)
    if isinstance(found, Response):
        return found
    caller, csrf, chosen = found
    limits = request.app.state.services.limits
    try:
        first = _first(chosen, limits.max_page_size)
    except _BadFilter as bad:
        message = f"VALIDATION_FAILED ({bad.field}): {bad.message}"
        return _message(400, "Filter refused", message, caller=caller, csrf=csrf)
    answer = await execute(request, caller, AUDIT, _variables(chosen, first, chosen.get("after")))
    if answer.errors or answer.data is None:
        return _error_page(answer, caller, csrf)
    trail = answer.data["auditTrail"]
    kept = {name: chosen[name] for name in (*_FILTERS, "first") if name in chosen}
    next_link = None
    if trail["pageInfo"]["hasNextPage"]:
        next_link = "/console/audit?" + urlencode({**kept, "after": trail["pageInfo"]["endCursor"]})
    query = urlencode({name: chosen[name] for name in _FILTERS if name in chosen})
    return render(
        "audit.html",
        title="Audit trail",
        me=caller,
        csrf=csrf,
        filters={name: chosen.get(name, "") for name in _FILTERS},
        first=first,
        entries=[edge["node"] for edge in trail["edges"]],
        position=trail["position"],
        next_link=next_link,
        first_link="/console/audit?" + urlencode(kept) if "after" in chosen else None,
        export_query=query,
    )


async def _export(request: Request) -> tuple[dict[str, str], int, list[dict[str, Any]]] | Response:
    found = await _audit_session(request)
    if isinstance(found, Response):
        return found
    caller, csrf, chosen = found
    page = request.app.state.services.limits.max_page_size
    entries: list[dict[str, Any]] = []
    after: str | None = None
    position = 0
    while True:
        answer = await execute(request, caller, AUDIT, _variables(chosen, page, after))
        if answer.errors or answer.data is None:
            return _error_page(answer, caller, csrf)
        trail = answer.data["auditTrail"]
        position = position or trail["position"]
        entries.extend(edge["node"] for edge in trail["edges"])
        if len(entries) > EXPORT_MAX:
            message = (
                f"LIMIT_EXCEEDED: the filtered trail holds over {EXPORT_MAX} entries: "
                "narrow the filter (a time range, an agreement, a batch)"
            )
            return _message(400, "Export refused", message, caller=caller, csrf=csrf)
        if not trail["pageInfo"]["hasNextPage"]:
            break
        after = trail["pageInfo"]["endCursor"]
    shown = {name: chosen[name] for name in _FILTERS if name in chosen}
    return shown, position, entries


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    # A cell a spreadsheet would run as a formula is written as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _download(body: str, media_type: str, name: str) -> Response:
    headers = {
        "content-disposition": f'attachment; filename="{name}"',
        "cache-control": "no-store",
    }
    return Response(body, media_type=media_type, headers=headers)


async def export_csv(request: Request) -> Response:
    """``GET /console/audit/export.csv``: the filtered trail as CSV, every page."""
    found = await _export(request)
    if isinstance(found, Response):
        return found
    _, _, entries = found
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(AUDIT_COLUMNS)
    for entry in entries:
        writer.writerow([_cell(entry[name]) for name in AUDIT_COLUMNS])
    return _download(out.getvalue(), "text/csv; charset=utf-8", "audit-trail.csv")


async def export_json(request: Request) -> Response:
    """``GET /console/audit/export.json``: the filtered trail as JSON, every page."""
    found = await _export(request)
    if isinstance(found, Response):
        return found
    shown, position, entries = found
    document = {"filter": shown, "position": position, "entries": entries}
    body = json.dumps(document, indent=1, ensure_ascii=False)
    return _download(body, "application/json", "audit-trail.json")


def console_routes() -> list[BaseRoute]:
    """The console's routes, to mount beside ``/graphql``."""
    from api.console import (  # they build on this module's helpers
        cpv_page,
        evidence,
        reads_page,
        records,
        signing,
    )

    return [
        Route("/", root),
        Route("/console", home),
        Route(CHALLENGE_PATH, challenge, methods=["POST"]),
        Route(SIGN_IN_PATH, sign_in, methods=["GET"]),
        Route(SIGN_IN_PATH, sign_in_confirm, methods=["POST"]),
        Route("/console/browser-key", signing.browser_key_page),
        Route("/console/sign/key", signing.key_state, methods=["POST"]),
        Route("/console/sign/prepare", signing.prepare, methods=["POST"]),
        Route("/console/sign/submit", signing.submit, methods=["POST"]),
        Route("/console/evidence/prepare", evidence.prepare_bundle, methods=["POST"]),
        Route("/console/sign-out", sign_out, methods=["POST"]),
        Route("/console/audit", audit),
        Route("/console/audit/export.csv", export_csv),
        Route("/console/audit/export.json", export_json),
        Route("/console/batches/{name}", records.batch_record),
        Route("/console/agreements/{id}/parameters/{name}", records.parameter_history),
        Route("/console/agreements/{id}/parameters/{name}/cpv", cpv_page.cpv_page),
        Route("/console/grants", records.grants),
        Route("/console/verify", records.verify_page),
        Route("/console/reads", reads_page.reads_page),
        Mount("/console/static", StaticFiles(directory=STATIC), name="console-static"),
    ]
