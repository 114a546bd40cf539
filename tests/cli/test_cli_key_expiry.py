"""R8, rotation before expiry is shown: ``whoami`` and the API's ``me`` name the keys that
expire within the rotation warning window, and every key shows when it expires."""

from __future__ import annotations

from datetime import timedelta

import pytest
from nacl.signing import SigningKey

from ledger.domain.key_history import DEFAULT_KEY_LIFETIME, ROTATION_WARNING
from ledger.keys import encode_public_key, key_id
from ledger.timeutil import format_utc, now_utc, parse_utc
from tests.support.cli import SPONSOR, Cli
from tests.support.server import Server
from tests.support.world import World

pytestmark = pytest.mark.xdist_group("client_cli")

EXPIRING = "{ me { keysExpiringSoon { id expiresAt } } }"
OWN_KEYS = "{ parties { id keys { id addedAt expiresAt } } }"


def test_r8_whoami_warns_of_a_key_expiring_soon(cli: Cli, server: Server, world: World) -> None:
    first = world[SPONSOR].key_id
    quiet = cli.run(SPONSOR, "whoami")
    assert f"key {first} (this keystore): party key, expires" in quiet
    assert "rotate before" not in quiet  # a first key lasts two years

    soon = format_utc(now_utc() + ROTATION_WARNING - timedelta(days=20))
    added = SigningKey.generate()
    public_key = encode_public_key(added)
    cli.json(SPONSOR, "key", "add", "--public-key", public_key, "--expires-at", soon)
    kid = key_id(added.verify_key)

    warned = cli.run(SPONSOR, "whoami")
    assert f"key {kid}: party key, expires {soon}" in warned
    assert f"rotate before {soon}: key {kid} expires then" in warned
    assert warned.count("rotate before") == 1, warned

    data, errors = server.call(world[SPONSOR], EXPIRING)
    assert errors == [] and data["me"]["keysExpiringSoon"] == [{"id": kid, "expiresAt": soon}]

    projector = server.services.projector
    assert projector is not None, "the served ledger runs its projector"
    projector.catch_up_safely(world.ledger.head())
    data, _ = server.call(world[SPONSOR], OWN_KEYS)
    keys = next(p["keys"] for p in data["parties"] if p["id"] == SPONSOR)
    assert keys, "the sponsor's own keys are listed to it"
    expiry = {k["id"]: k["expiresAt"] for k in keys}
    assert expiry[kid] == soon
    added_at = next(k["addedAt"] for k in keys if k["id"] == first)
    default = parse_utc(added_at, field="addedAt") + DEFAULT_KEY_LIFETIME
    assert expiry[first] == format_utc(default)


def test_r8_a_key_expiry_is_refused_beyond_the_maximum_on_the_command_line(cli: Cli) -> None:
    too_late = format_utc(now_utc() + DEFAULT_KEY_LIFETIME + timedelta(days=1))
    public_key = encode_public_key(SigningKey.generate())
    line = cli.fails(SPONSOR, "key", "add", "--public-key", public_key, "--expires-at", too_late)
    assert "VALIDATION_FAILED" in line and "expires_at" in line, line
