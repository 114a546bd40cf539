"""Key compromise: once a party's key is revoked as compromised since a past time, every event
it signed or the ledger recorded from then on is reported as signed under a compromised key
(by `verify`, exit 2, and by the API's ``compromised``), new ones are refused, and the events
signed and recorded before stay valid."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from nacl.signing import SigningKey
from typer.testing import CliRunner

from clients.cli import app
from ledger.application import Ledger
from ledger.config import Settings
from ledger.domain.subjects import party_subject
from ledger.errors import KeyRevoked
from ledger.keys import encode_public_key
from ledger.log.verify import verify_ledger
from ledger.timeutil import format_utc, now_utc, parse_utc
from tests.support.server import SUBMIT, Server, codes, running_server
from tests.support.world import Actor, World

pytestmark = pytest.mark.reliability

CMO = "contoso-cmo"
LOG = "query { log(first: 100) { events { position leafIndex signer key compromised } } }"
EVENT = "query($i: Int!) { event(leafIndex: $i) { position compromised } }"


@dataclass
class Compromise:
    """Contoso's first key, compromised since ``since``: what it signed on each side."""

    world: World
    stolen: Actor
    spare: Actor
    since: datetime
    before: list[int]
    after: list[int]
    by_spare: list[int]


def new_key(label: str) -> SigningKey:
    return SigningKey(hashlib.sha256(f"{CMO} {label}".encode()).digest())


def add_key(world: World, actor: Actor, key: SigningKey, signed_at: datetime) -> int:
    envelope, signature = actor.prepare(
        world.ledger,
        "KeyAdded",
        party_subject(CMO),
        {"public_key": encode_public_key(key), "purpose": "party"},
        meaning="authored",
        signed_at=format_utc(signed_at),
    )
    return world.ledger.append(envelope, signature).position


def a_later_millisecond(than: str) -> datetime:
    """Wait until the clock has passed ``than`` (a recorded time), so ordering is certain."""
    limit = parse_utc(than, field="recorded_at")
    while now_utc() <= limit:
        time.sleep(0.001)
    return now_utc()


@pytest.fixture
def compromise(world: World) -> Compromise:
    stolen = world[CMO]
    before = [add_key(world, stolen, new_key("spare"), now_utc())]
    spare = Actor(CMO, new_key("spare"))
    since = a_later_millisecond(
        world.ledger.read(after=before[0] - 1, limit=1)[0].event.recorded_at
    )
    a_later_millisecond(format_utc(since))
    after = [
        # Backdated to before the compromise: caught by when the ledger recorded it.
        add_key(world, stolen, new_key("b1"), since - timedelta(seconds=60)),
        add_key(world, stolen, new_key("b2"), now_utc()),
    ]
    by_spare = [add_key(world, spare, new_key("c1"), now_utc())]
    world.notary.submit(
        world.ledger,
        "KeyRevoked",
        party_subject(CMO),
        {"key": stolen.key_id, "compromised_since": format_utc(since)},
        meaning="revoked",
        reason="signing key found on a public file share",
    )
    return Compromise(world, stolen, spare, since, before, after, by_spare)


@pytest.fixture
def server(settings: Settings, compromise: Compromise) -> Iterator[Server]:
    with running_server(settings, compromise.world.notary.key) as running:
        yield running


def test_verify_flags_exactly_the_events_signed_after_the_compromise(
    compromise: Compromise,
) -> None:
    report = verify_ledger(compromise.world.ledger, workers=1)
    assert report.ok, [str(p) for p in report.errors]
    assert [p.position for p in report.compromised] == compromise.after


def test_the_verify_command_reports_them_and_exits_2(
    compromise: Compromise, settings: Settings
) -> None:
    env = {"CMO_LEDGER_DATABASE_URL": settings.database_url}
    result = CliRunner().invoke(app, ["verify", "--workers", "1"], env=env)
    assert result.exit_code == 2, result.output
    warned = [line for line in result.output.splitlines() if "compromised key:" in line]
    assert len(warned) == len(compromise.after)
    for position in compromise.after:
        assert any(f"position {position} " in line for line in warned)


def test_the_api_marks_events_signed_after_the_compromise(
    compromise: Compromise, server: Server
) -> None:
    data, errors = server.call(compromise.spare, LOG)
    assert errors == []
    flags = {e["position"]: e["compromised"] for e in data["log"]["events"]}
    assert [p for p, flagged in flags.items() if flagged] == compromise.after
    for position in compromise.before + compromise.by_spare:
        assert flags[position] is False
    leaf = {e["position"]: e["leafIndex"] for e in data["log"]["events"]}
    for position, expected in [(compromise.after[0], True), (compromise.before[0], False)]:
        data, errors = server.call(compromise.world["northwind-bio"], EVENT, {"i": leaf[position]})
        assert errors == []
        assert data["event"] == {"position": position, "compromised": expected}


def test_new_envelopes_signed_with_the_compromised_key_are_refused(
    compromise: Compromise,
) -> None:
    world = compromise.world
    head = world.ledger.head()
    with pytest.raises(KeyRevoked):
        add_key(world, compromise.stolen, new_key("late"), now_utc())
    with pytest.raises(KeyRevoked):  # backdating before the compromise does not help
        add_key(world, compromise.stolen, new_key("late"), compromise.since - timedelta(seconds=1))
    assert world.ledger.head() == head


def test_the_api_refuses_the_compromised_key_for_requests_and_envelopes(
    compromise: Compromise, server: Server
) -> None:
    world = compromise.world
    head = world.ledger.head()
    _, errors = server.call(compromise.stolen, "query { me { id } }")
    assert codes(errors) == ["UNAUTHENTICATED"]
    # An envelope signed with the stolen key, sent over a request signed by the spare key.
    envelope, signature = compromise.stolen.prepare(
        world.ledger,
        "KeyAdded",
        party_subject(CMO),
        {"public_key": encode_public_key(new_key("late")), "purpose": "party"},
        meaning="authored",
    )
    _, errors = server.call(compromise.spare, SUBMIT, {"e": envelope, "s": signature})
    assert codes(errors) == ["KEY_REVOKED"]
    assert world.ledger.head() == head


def test_the_spare_key_keeps_working_after_the_revocation(compromise: Compromise) -> None:
    world = compromise.world
    position = add_key(world, compromise.spare, new_key(str(uuid.uuid4())), now_utc())
    report = verify_ledger(world.ledger, workers=1)
    assert report.ok
    assert position not in [p.position for p in report.compromised]


def test_a_restarted_ledger_flags_the_same_events(
    compromise: Compromise, settings: Settings
) -> None:
    reopened = Ledger.open(settings)
    try:
        report = verify_ledger(reopened, workers=1)
    finally:
        reopened.close()
    assert [p.position for p in report.compromised] == compromise.after
