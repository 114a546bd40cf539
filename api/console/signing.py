"""Signing in the browser: approvals and acknowledgements signed by a key that lives in the
browser (WebCrypto Ed25519, non-extractable, kept in IndexedDB by ``static/sign.js``).

The server never holds that key. For an action the page offers, it builds the unsigned
envelope as the API client would (``nextVersion`` of the subject read as the session's
party, ``signed_at`` from the ledger's clock, the meaning of the action, the reason typed in
the form) and answers it with its exact signing bytes (``cmo-ledger/envelope/v1\\n`` ‖ RFC
8785); the browser checks the bytes are those of the envelope it shows, signs them and posts
envelope and signature back, and the server relays them through GraphQL ``submitEvent`` as
the session's party: every rule of the API applies (signer, key in force, signature,
version, the event's own rules).

| route | what |
| --- | --- |
| ``GET /console/browser-key`` | generate the browser key, see its public key and how to enrol it |
| ``POST /console/sign/key`` | a browser key's state: enrolled, unknown, revoked, expired |
| ``POST /console/sign/prepare`` | the unsigned envelope of an action and its signing bytes |
| ``POST /console/sign/submit`` | relays the signed envelope to ``submitEvent`` |

Each ``POST`` is JSON, carries the session's CSRF token (``x-csrf-token``) and no foreign
``Origin``; a refusal is ``{"errors": [{"code", "field", "message"}]}``, nothing stored.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.auth import Caller
from api.console.pages import _services, _session, render
from api.console.queries import execute
from api.console.security import CSRF_HEADER, csrf_matches, csrf_token, same_origin
from api.errors import Unauthenticated
from api.threads import in_thread
from ledger.domain.payloads import decode_payload
from ledger.domain.subjects import batch_subject, parameter_subject
from ledger.errors import LedgerError, ValidationFailed
from ledger.keys import decode_public_key, key_id
from ledger.log.envelope import Envelope
from ledger.timeutil import format_utc

__all__ = ["ACTIONS", "browser_key_page", "key_state", "prepare", "submit"]

_MAX_BODY = 64 * 1024
_MAX_TEXT = 1000
NEXT_VERSION = "query ConsoleNextVersion($s: ID!) { nextVersion(subject: $s) { version prev } }"
SUBMIT = """
mutation ConsoleSubmit($envelope: JSON!, $signature: String!) {
  submitEvent(envelope: $envelope, signature: $signature) {
    position leafIndex recordedAt event { type signer key meaning }
  }
}
"""
_STATUS = {
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "VERSION_CONFLICT": 409,
    "EVIDENCE_REFUSED": 409,
    "LIMIT_EXCEEDED": 413,
    "UNAVAILABLE": 503,
}


class Refused(Exception):
    """A request refused with ``code`` naming ``field``."""

    def __init__(self, code: str, field: str | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message


def _refusal(code: str, field: str | None, message: str) -> JSONResponse:
    document = {"errors": [{"code": code, "field": field, "message": message}]}
    return JSONResponse(
        document, status_code=_STATUS.get(code, 400), headers={"cache-control": "no-store"}
    )


@dataclass(frozen=True, slots=True)
class Draft:
    """What an action signs, before ``version``, ``prev`` and ``signed_at``."""

    type: str
    subject: uuid.UUID
    payload: dict[str, Any]
    meaning: str
    reason: str | None


def _text(body: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is not None and (not isinstance(value, str) or len(value) > _MAX_TEXT):
        raise Refused("VALIDATION_FAILED", name, f"{name} is text of at most {_MAX_TEXT}")
    text = (value or "").strip()
    if not text and required:
        raise Refused("VALIDATION_FAILED", name, f"{name} is required")
    return text or None


def _uuid(body: Mapping[str, Any], name: str) -> uuid.UUID:
    text = _text(body, name)
    try:
        return uuid.UUID(str(text))
    except ValueError:
        raise Refused("VALIDATION_FAILED", name, f"{text!r} is no id") from None


def _decide_revision(approve: bool) -> Callable[[Mapping[str, Any]], Draft]:
    def draft(body: Mapping[str, Any]) -> Draft:
        agreement = _uuid(body, "agreement")
        name = str(_text(body, "parameter"))
        revision = str(_uuid(body, "revision"))
        reason = _text(body, "reason", required=not approve)
        subject = parameter_subject(agreement, name)
        if approve:
            return Draft(
                "ParameterRevisionApproved", subject, {"revision": revision}, "approved", reason
            )
        return Draft(
            "ParameterRevisionRejected", subject, {"revision": revision}, "rejected", reason
        )

    return draft


def _acknowledge_records(body: Mapping[str, Any]) -> Draft:
    batch = str(_text(body, "batch"))
    records = body.get("records")
    if (
        not isinstance(records, list)
        or not records
        or len(records) > 200
        or not all(isinstance(r, str) and 0 < len(r) <= 200 for r in records)
    ):
        raise Refused("VALIDATION_FAILED", "records", "records is a list of 1 to 200 record ids")
    reason = _text(body, "reason", required=False)
    payload = {"records": list(records)}
    return Draft("DataAcknowledged", batch_subject(batch), payload, "acknowledged", reason)


def _acknowledge_enhancement(body: Mapping[str, Any]) -> Draft:
    subject = _uuid(body, "enhancement")
    reason = _text(body, "reason", required=False)
    return Draft("EnhancementAcknowledged", subject, {}, "acknowledged", reason)


ACTIONS: dict[str, Callable[[Mapping[str, Any]], Draft]] = {
    "approve-revision": _decide_revision(approve=True),
    "reject-revision": _decide_revision(approve=False),
    "acknowledge-records": _acknowledge_records,
    "acknowledge-enhancement": _acknowledge_enhancement,
}
"""The actions the console signs in the browser, by name."""


async def _json_session(request: Request) -> tuple[Caller, dict[str, Any]] | Response:
    """The session's caller and the JSON body, or the refusal (CSRF, origin, session)."""
    if not same_origin(request):
        return _refusal("FORBIDDEN", "origin", "the request must come from this ledger's pages")
    session = await _session(request)
    if isinstance(session, Response):
        return _refusal("UNAUTHENTICATED", None, "sign in again (`cmo-ledger login`)")
    caller, token = session
    if not csrf_matches(token, request.headers.get(CSRF_HEADER)):
        return _refusal("FORBIDDEN", "csrf", f"the request lacks the page's {CSRF_HEADER}")
    raw = await request.body()
    if len(raw) > _MAX_BODY:
        return _refusal("LIMIT_EXCEEDED", "body", f"at most {_MAX_BODY} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return _refusal("VALIDATION_FAILED", "body", "the body must be a JSON object")
    if not isinstance(body, dict):
        return _refusal("VALIDATION_FAILED", "body", "the body must be a JSON object")
    return caller, body


def _browser_key(body: Mapping[str, Any]) -> str:
    text = body.get("publicKey")
    try:
        return key_id(decode_public_key(text, field="publicKey"))  # type: ignore[arg-type]
    except ValidationFailed as error:
        raise Refused(error.code, "publicKey", error.message) from None


async def browser_key_page(request: Request) -> Response:
    """``GET /console/browser-key``: generate and enrol the browser key."""
    _services(request)
    session = await _session(request)
    if isinstance(session, Response):
        return session
    caller, token = session
    return render("browser_key.html", title="Browser key", me=caller, csrf=csrf_token(token))


async def key_state(request: Request) -> Response:
    """``POST /console/sign/key`` ``{"publicKey"}``: its key id and whether it signs for
    the session's party now (``enrolled``), not yet (``unknown``) or no more (``revoked``,
    ``expired``)."""
    services = _services(request)
    found = await _json_session(request)
    if isinstance(found, Response):
        return found
    caller, body = found
    try:
        kid = _browser_key(body)
    except Refused as refused:
        return _refusal(refused.code, refused.field, refused.message)
    state, detail = "enrolled", ""
    try:
        await in_thread(services.auth.resolve, f"{caller.party_id}/{kid}")
    except Unauthenticated as error:
        detail = error.message
        state = next((s for s in ("revoked", "expired") if s in error.message), "unknown")
    answer = {"keyId": kid, "party": caller.party_id, "state": state, "detail": detail}
    return JSONResponse(answer, headers={"cache-control": "no-store"})


async def prepare(request: Request) -> Response:
    """``POST /console/sign/prepare`` ``{"action", "publicKey", ...}``: the envelope and
    its signing bytes (base64)."""
    services = _services(request)
    found = await _json_session(request)
    if isinstance(found, Response):
        return found
    caller, body = found
    try:
        action = body.get("action")
        if not isinstance(action, str) or action not in ACTIONS:
            raise Refused("VALIDATION_FAILED", "action", f"one of {', '.join(ACTIONS)}")
        draft = ACTIONS[action](body)
        kid = _browser_key(body)
    except Refused as refused:
        return _refusal(refused.code, refused.field, refused.message)
    head = await execute(request, caller, NEXT_VERSION, {"s": str(draft.subject)})
    if head.errors or head.data is None:
        first = head.errors[0]
        return _refusal(first.code, first.field, first.message)
    envelope: dict[str, Any] = {
        "ledger": services.ledger.identity.origin,
        "type": draft.type,
        "subject": str(draft.subject),
        "version": int(head.data["nextVersion"]["version"]),
        "prev": head.data["nextVersion"]["prev"],
        "payload": draft.payload,
        "signer": caller.party_id,
        "key": kid,
        "signed_at": format_utc(services.ledger.clock.now()),
        "meaning": draft.meaning,
    }
    if draft.reason is not None:
        envelope["reason"] = draft.reason
    try:
        decode_payload(draft.type, envelope["payload"])
        signing = Envelope.parse(envelope).signing_bytes()
    except LedgerError as error:
        return _refusal(error.code, error.field, error.message)
    answer = {
        "envelope": envelope,
        "signingBytes": base64.b64encode(signing).decode("ascii"),
        "keyId": kid,
    }
    return JSONResponse(answer, headers={"cache-control": "no-store"})


async def submit(request: Request) -> Response:
    """``POST /console/sign/submit`` ``{"envelope", "signature"}``: relayed to
    ``submitEvent`` as the session's party."""
    _services(request)
    found = await _json_session(request)
    if isinstance(found, Response):
        return found
    caller, body = found
    envelope, signature = body.get("envelope"), body.get("signature")
    if not isinstance(envelope, dict):
        return _refusal("VALIDATION_FAILED", "envelope", "envelope must be a JSON object")
    if not isinstance(signature, str):
        return _refusal("VALIDATION_FAILED", "signature", "signature must be base64 text")
    variables = {"envelope": envelope, "signature": signature}
    answer = await execute(request, caller, SUBMIT, variables)
    if answer.errors or answer.data is None:
        first = answer.errors[0]
        return _refusal(first.code, first.field, first.message)
    return JSONResponse(answer.data["submitEvent"], headers={"cache-control": "no-store"})
