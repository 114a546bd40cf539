"""R6: every signing needs two distinct components. On the command line, the keystore file
(possession of the private key) and its passphrase (knowledge); in the console, the
session, opened by a sign-in the party key signed, and the browser's own key. When the
session times out, nothing more is signed until the party signs in again."""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from nacl.signing import SigningKey

from clients.cli.login import sign_in_link
from ledger.clock import FakeClock
from ledger.domain.subjects import party_subject
from ledger.keys import encode_public_key
from ledger.keystore import (
    WrongPassphrase,
    create_keystore,
    kdf_limits_from_env,
    load_keystore,
    read_public,
)
from tests.support.agreements import propose_and_sign
from tests.support.batches import event_records, register_batch, submit_data
from tests.support.server import Server, running_server
from tests.support.world import Actor, World

NORTHWIND = "northwind-bio"
PASSPHRASE = "correct horse battery staple"
BATCH = "NWB101-24-001"
IDLE = 60.0
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


def test_r6_signing_needs_the_key_file_and_its_passphrase(world: World, tmp_path: Path) -> None:
    path = tmp_path / "northwind.key"
    opslimit, memlimit = kdf_limits_from_env({"CMO_LEDGER_KDF_PROFILE": "min"})
    actor = world[NORTHWIND]
    create_keystore(
        path, NORTHWIND, PASSPHRASE, signing_key=actor.key, opslimit=opslimit, memlimit=memlimit
    )

    with pytest.raises(WrongPassphrase) as wrong:  # the file without its passphrase
        load_keystore(path, "not the passphrase")
    assert wrong.value.field == "passphrase"
    assert read_public(path).public_key == actor.public_key  # the file alone shows no secret
    with pytest.raises(FileNotFoundError):  # the passphrase without the file
        load_keystore(tmp_path / "elsewhere.key", PASSPHRASE)

    keystore, key = load_keystore(path, PASSPHRASE)  # both: the party key, to sign with
    assert keystore.key_id == actor.key_id
    head = world.ledger.head()
    added = Actor(NORTHWIND, key).submit(
        world.ledger,
        "KeyAdded",
        party_subject(NORTHWIND),
        {"public_key": encode_public_key(SigningKey.generate()), "purpose": "party"},
        meaning="authored",
    )
    assert added.position == head + 1


@pytest.fixture
def served(world: World) -> Iterator[tuple[Server, FakeClock]]:
    """The world with batch B1's deviations, served on a clock only this test moves, its
    console sessions ending after a minute unused (a new sign-in is then still fresh on
    the machine's clock, which signs the sign-in request)."""
    register_batch(world, propose_and_sign(world), BATCH)
    submit_data(world, BATCH, "event", event_records())
    clock = FakeClock(ticking=True)
    settings = dataclasses.replace(world.ledger.settings, session_idle=IDLE)
    with running_server(settings, world.notary.key, clock=clock) as server:
        yield server, clock


@contextmanager
def _signed_in(server: Server, actor: Actor) -> Iterator[httpx2.Client]:
    """A console session of ``actor``, opened as the sign-in page's form does."""
    link = sign_in_link(server.url, actor.party_id, actor.key).url
    form = {name: values[0] for name, values in parse_qs(urlsplit(link).query).items()}
    with httpx2.Client(base_url=server.url) as http:
        signed_in = http.post("/console/sign-in", data=form)
        assert signed_in.status_code == 303, signed_in.text
        yield http


def _csrf(http: httpx2.Client) -> dict[str, str]:
    found = _CSRF.search(http.get("/console/browser-key").text)
    return {"x-csrf-token": found.group(1) if found else ""}


def _prepare(http: httpx2.Client, actor: Actor, record: str) -> httpx2.Response:
    """Ask the console for the envelope acknowledging ``record``, to sign with ``actor``'s key."""
    action = {
        "action": "acknowledge-records",
        "publicKey": actor.public_key,
        "batch": BATCH,
        "records": [record],
    }
    return http.post("/console/sign/prepare", json=action, headers=_csrf(http))


def _signed(actor: Actor, prepared: httpx2.Response) -> dict[str, Any]:
    """The prepared envelope and ``actor``'s signature of its signing bytes."""
    assert prepared.status_code == 200, prepared.text
    answer = prepared.json()
    signature = actor.key.sign(base64.b64decode(answer["signingBytes"])).signature
    return {"envelope": answer["envelope"], "signature": base64.b64encode(signature).decode()}


def test_r6_console_signing_after_session_expiry_is_refused(
    world: World, served: tuple[Server, FakeClock]
) -> None:
    server, clock = served
    actor = world[NORTHWIND]
    with _signed_in(server, actor) as http:
        headers = _csrf(http)
        signed = _signed(actor, _prepare(http, actor, "E-001"))
        assert http.post("/console/sign/submit", json=signed, headers=headers).status_code == 200
        held = _signed(actor, _prepare(http, actor, "E-003"))  # signed, not yet sent

        clock.advance(timedelta(seconds=IDLE + 1))
        head = world.ledger.head()
        late = http.post("/console/sign/submit", json=held, headers=headers)
        assert late.status_code == 401, late.text
        assert late.json()["errors"][0]["code"] == "UNAUTHENTICATED"
        assert _prepare(http, actor, "E-003").status_code == 401
        assert world.ledger.head() == head, "a signing after the timeout stored something"

    with _signed_in(server, actor) as http:  # both components again: a new sign-in
        signed = _signed(actor, _prepare(http, actor, "E-003"))
        assert (
            http.post("/console/sign/submit", json=signed, headers=_csrf(http)).status_code == 200
        )
