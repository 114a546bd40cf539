"""The evidence bundle of a batch, downloaded from its record page and signed in the browser.

A bundle's manifest is signed by the exporter's party key (``docs/evidence.md``); in the
console the only key at hand is the person's browser key (enrolled with ``KeyAdded``,
a party key), which never leaves the browser. So ``POST /console/evidence/prepare``
builds the whole bundle with :func:`ledger.evidence.export.build_bundle` (what
``cmo-ledger export-evidence`` writes, read through the served schema as the session's
party, so it holds only what that party may read) and answers its files with the
manifest's signing bytes; ``static/sign.js`` checks that those bytes are the manifest's
and that the manifest pins the files it got, signs them with the browser key, adds
``manifest.sig`` and saves the bundle as a zip. The server holds no private key and keeps
nothing.

``{"batch", "publicKey"}`` in, as JSON with the session's CSRF token and no foreign
``Origin``, like ``POST /console/sign/...``; refused before anything is built when the
browser key is no party key of the session's party in the log up to the checkpoint
(``EVIDENCE_REFUSED``, field ``key``) or the batch is not visible (``FORBIDDEN``).
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Mapping
from typing import Any

import anyio.from_thread
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.auth import Caller
from api.console.pages import _services
from api.console.queries import execute
from api.console.signing import Refused, _browser_key, _json_session, _refusal, _text
from ledger.evidence.export import EvidenceRefused, Unsigned, build_bundle
from ledger.evidence.layout import MANIFEST

__all__ = ["CHECKPOINT_WAIT", "prepare_bundle"]

CHECKPOINT_WAIT = 10.0
"""Seconds the download waits for a signed checkpoint covering the batch's events (the
notary signs one every ``CMO_LEDGER_CHECKPOINT_INTERVAL``); then it is refused, to retry."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class SessionRefused(Exception):
    """The API refused an operation of the export: its code, field and message."""

    def __init__(self, code: str, field: str | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


class SessionClient:
    """The exporter's GraphQL client in the console: each operation runs through the
    served schema as the session's party (:func:`api.console.queries.execute`), called
    from the worker thread the export runs in."""

    def __init__(self, request: Request, caller: Caller) -> None:
        self._request = request
        self._caller = caller

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> Any:
        answer = anyio.from_thread.run(
            execute, self._request, self._caller, query, dict(variables or {})
        )
        if answer.errors or answer.data is None:
            first = answer.errors[0]
            raise SessionRefused(first.code, first.field, first.message)
        return answer.data


def _file_name(batch: str) -> str:
    """The zip's name and top folder: the batch's name, with only safe characters."""
    return (_UNSAFE.sub("_", batch).strip("._") or "batch") + "-evidence"


def _answer(unsigned: Unsigned, kid: str) -> dict[str, Any]:
    return {
        "name": _file_name(str(unsigned.manifest["batch"])),
        "exporter": unsigned.exporter,
        "keyId": kid,
        "manifestFile": MANIFEST,
        "signingBytes": base64.b64encode(unsigned.message).decode("ascii"),
        "files": {
            name: base64.b64encode(content).decode("ascii")
            for name, content in sorted(unsigned.files.items())
        },
    }


async def prepare_bundle(request: Request) -> Response:
    """``POST /console/evidence/prepare`` ``{"batch", "publicKey"}``: every file of the
    batch's bundle (base64, ``manifest.json`` among them) and the bytes the browser key
    signs for ``manifest.sig``."""
    services = _services(request)
    found = await _json_session(request)
    if isinstance(found, Response):
        return found
    caller, body = found
    try:
        batch = str(_text(body, "batch"))
        kid = _browser_key(body)
    except Refused as refused:
        return _refusal(refused.code, refused.field, refused.message)
    export = functools.partial(
        build_bundle,
        SessionClient(request, caller),
        batch,
        key_id=kid,
        checkpoint_wait=CHECKPOINT_WAIT,
        clock=services.ledger.clock,
    )
    try:
        unsigned = await anyio.to_thread.run_sync(export)
    except SessionRefused as refused:
        return _refusal(refused.code, refused.field, str(refused))
    except EvidenceRefused as refused:
        code = "FORBIDDEN" if refused.field == "batch" else refused.code
        return _refusal(code, refused.field, refused.message)
    return JSONResponse(_answer(unsigned, kid), headers={"cache-control": "no-store"})
