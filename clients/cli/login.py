"""``cmo-ledger login``: sign a browser in to the console without the key leaving this machine.

1. a request signed with the party key (RFC 9421) asks the server for a one-time challenge;
2. the key signs ``SIGN_IN_DOMAIN + challenge`` here (Ed25519, domain-separated);
3. the command prints the sign-in link ``<url>/console/sign-in?challenge=..&signature=..``
   and, on a desktop, opens it in the browser (``--no-open``: print only).

The link signs one browser in, once, within 60 s of the challenge: opening it shows a
confirmation page, whose *Sign in* button uses it (a link prefetcher cannot). ``register(app)`` adds
the command to the ``cmo-ledger`` Typer app.
"""

from __future__ import annotations

import os
import sys
import webbrowser
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx2
import typer
from nacl.signing import SigningKey

from api.console.challenge import (
    CHALLENGE_PATH,
    SIGN_IN_PATH,
    b64url,
    from_b64url,
    sign_in_message,
)
from clients.cli.common import DEFAULT_URL, KeyOption, UrlOption, commands, connect, console
from clients.errors import ClientError, ServerRefused
from clients.http_signing import PartyAuth

__all__ = ["SignInLink", "login_command", "register", "sign_in_link"]


@dataclass(frozen=True, slots=True)
class SignInLink:
    """A sign-in link and when it stops working."""

    url: str
    party: str
    expires_at: str


def _refusal(response: httpx2.Response) -> ClientError:
    try:
        document: Any = response.json()
        error = document["errors"][0]
        extensions = error.get("extensions") or {}
        return ServerRefused.of(
            str(extensions.get("code", "CLIENT_ERROR")), extensions.get("field"), error["message"]
        )
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return ClientError(
            f"the server answered HTTP {response.status_code} to {CHALLENGE_PATH}: "
            "check --url (a cmo-ledger server with the console)",
            field="--url",
        )


def sign_in_link(
    url: str,
    party_id: str,
    key: SigningKey,
    *,
    transport: httpx2.BaseTransport | None = None,
) -> SignInLink:
    """Ask ``url`` for a challenge over a signed request and sign it: the sign-in link."""
    base = url.rstrip("/")
    auth = PartyAuth(party_id, key)
    with httpx2.Client(base_url=base, auth=auth, timeout=30.0, transport=transport) as http:
        response = http.post(CHALLENGE_PATH, content=b"")
    if response.status_code != 200:
        raise _refusal(response)
    answer = response.json()
    challenge = from_b64url(str(answer["challenge"]))
    signature = key.sign(sign_in_message(challenge)).signature
    query = urlencode({"challenge": answer["challenge"], "signature": b64url(signature)})
    return SignInLink(f"{base}{SIGN_IN_PATH}?{query}", str(answer["party"]), answer["expiresAt"])


def _has_desktop() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@commands
def login_command(
    key: KeyOption,
    url: UrlOption = DEFAULT_URL,
    no_open: Annotated[
        bool, typer.Option("--no-open", help="Print the link only; do not open a browser")
    ] = False,
) -> None:
    """Sign a browser in to the console: print (and open) a one-time link valid 60 s."""
    with connect(url, key) as client:  # unlocks the keystore (passphrase or prompt)
        party, signing_key = client.party, client.signing_key
    link = sign_in_link(url, party, signing_key)
    out = console()
    out.print(
        f"sign-in link for {link.party} (usable once, until {link.expires_at}; "
        "confirm on the page it opens):"
    )
    out.print(link.url, soft_wrap=True)
    if not no_open and _has_desktop():
        webbrowser.open(link.url)


def register(app: typer.Typer) -> None:
    """Add ``login`` to ``app``."""
    app.command("login")(login_command)
