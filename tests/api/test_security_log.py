"""R9: failed sign-ins are recorded per claimed identity; past the threshold the identity
is locked, the lockout is counted and the notary appends a signed ``SecurityAlert``.

A burst of bad request signatures claiming one party locks it: its correctly signed
requests are then refused naming the lock, another party is unaffected, the alert is in
the log and verifies, the party sees its alert (once the lock ends) and another party
does not. Spread over two server processes on one PostgreSQL database, the shared count
still locks once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
import sqlalchemy as sa
from nacl.signing import SigningKey
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from api.console.challenge import b64url, from_b64url
from api.security_log import SecurityLog
from clients.cli.login import sign_in_link
from clients.http_signing import PartyAuth
from ledger.clock import FakeClock
from ledger.config import Settings
from ledger.keystore import create_keystore
from ledger.log.checkpoints import Notary
from ledger.log.verify import verify_ledger
from tests.conftest import fresh_database
from tests.support.server import Server, running_server, wait_until_serving
from tests.support.world import ORIGIN, Actor, World, build_world, notary_actor

pytestmark = pytest.mark.xdist_group("api_security_log")

CMO = "contoso-cmo"
SPONSOR = "northwind-bio"
AUDITOR = "qa-auditor-llc"
HELIOS = "helios-tx"
THRESHOLD = 5
COOLDOWN = 60.0
ME = {"query": "{ me { id } }"}
ALERTS = (
    "{ securityAlerts { identity failures windowSeconds lockedUntil kinds reason "
    "event { type signer leafIndex } } }"
)
CLOSED_UNAUTHENTICATED = 4401
CLI = [sys.executable, "-c", "from clients.cli import main; main()"]


def _impostor(party: str, origin: str) -> PartyAuth:
    """Signs as ``party`` with a key that is not one of its keys."""
    stranger = SigningKey(hashlib.sha256(f"not {party}".encode()).digest())
    return PartyAuth(party, stranger, origin=origin)


def _post(url: str, auth: PartyAuth | None, body: dict[str, Any]) -> httpx2.Response:
    with httpx2.Client(timeout=30) as client:
        return client.post(f"{url}/graphql", json=body, auth=auth or httpx2.Auth())


def _error(response: httpx2.Response) -> tuple[str, str]:
    error = response.json()["errors"][0]
    return error["extensions"]["code"], error["message"]


def _metric(url: str, party: str) -> float:
    text = httpx2.get(f"{url}/metrics", timeout=10).text
    name = f'cmo_ledger_lockouts_total{{party="{party}"}} '
    for line in text.splitlines():
        if line.startswith(name):
            return float(line.split()[-1])
    return 0.0


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock(ticking=True)


@pytest.fixture(scope="module")
def locking(api_settings: Settings, api_world: World, clock: FakeClock) -> Iterator[Server]:
    settings = dataclasses.replace(
        api_settings, lockout_threshold=THRESHOLD, lockout_window=300.0, lockout_cooldown=COOLDOWN
    )
    with running_server(settings, api_world.notary.key, clock=clock) as running:
        yield running


def test_a_burst_of_bad_signatures_locks_the_party_and_alerts(
    locking: Server, api_world: World, clock: FakeClock
) -> None:
    cmo, sponsor = api_world[CMO], api_world[SPONSOR]
    auth = locking.auth
    assert _post(locking.url, auth(cmo), ME).status_code == 200
    for _ in range(THRESHOLD - 1):
        response = _post(locking.url, _impostor(CMO, locking.origin), ME)
        assert response.status_code == 401
    assert _post(locking.url, auth(cmo), ME).status_code == 200  # not yet locked
    assert _post(locking.url, _impostor(CMO, locking.origin), ME).status_code == 401

    # Locked: a correctly signed request is refused, naming the lock and why.
    refused = _post(locking.url, auth(cmo), ME)
    assert refused.status_code == 401
    code, message = _error(refused)
    assert code == "UNAUTHENTICATED"
    assert f"{CMO} is locked until" in message and f"{THRESHOLD} failed" in message, message
    # Another party is unaffected.
    assert _post(locking.url, auth(sponsor), ME).status_code == 200
    assert _metric(locking.url, CMO) == 1
    assert _metric(locking.url, SPONSOR) == 0

    # Failures while locked are recorded but do not lock again.
    assert _post(locking.url, _impostor(CMO, locking.origin), ME).status_code == 401
    assert _metric(locking.url, CMO) == 1
    security: SecurityLog = locking.app.state.security
    recorded = security.failures(CMO)
    assert len(recorded) == THRESHOLD + 1
    assert {kind for kind, _, _ in recorded} == {"request-signature"}
    assert all(f"is not a key of {CMO}" in reason for _, reason, _ in recorded)

    # The notary's signed alert is in the log, and the log verifies.
    ledger = api_world.ledger
    alerts = [
        r
        for r in ledger.iter_log()
        if r.event.envelope["type"] == "SecurityAlert"
        and r.event.envelope["payload"]["identity"] == CMO
    ]
    assert len(alerts) == 1
    envelope = alerts[0].event.envelope
    assert envelope["signer"] == "notary" and envelope["meaning"] == "alerted"
    assert envelope["payload"]["identity"] == CMO
    assert envelope["payload"]["failures"] == THRESHOLD
    assert envelope["payload"]["kinds"] == ["request-signature"]
    Notary(ledger, api_world.notary.key).checkpoint_now()
    report = verify_ledger(ledger, workers=1)
    assert report.ok, report.problems

    # The notary sees it; another party does not; the party does once its lock ends.
    data, errors = locking.call(api_world.notary, ALERTS)
    assert errors == [] and CMO in [a["identity"] for a in data["securityAlerts"]]
    assert {a["event"]["type"] for a in data["securityAlerts"]} == {"SecurityAlert"}
    data, errors = locking.call(sponsor, ALERTS)
    assert errors == [] and data["securityAlerts"] == []
    clock.advance(timedelta(seconds=COOLDOWN + 1))
    assert _post(locking.url, auth(cmo), ME).status_code == 200
    data, errors = locking.call(cmo, ALERTS)
    assert errors == [], errors
    [alert] = data["securityAlerts"]
    assert alert["identity"] == CMO and alert["failures"] == THRESHOLD
    assert alert["windowSeconds"] == 300 and "locked until" in alert["reason"]


def test_a_lock_closes_the_party_s_open_websocket(locking: Server, api_world: World) -> None:
    party = "fabrikam-cmo"
    protocols: Any = ["graphql-transport-ws"]
    with connect(locking.ws_url, subprotocols=protocols) as socket:
        init = {"type": "connection_init", "payload": locking.init_payload(api_world[party])}
        socket.send(json.dumps(init))
        assert json.loads(socket.recv(timeout=30))["type"] == "connection_ack"
        for _ in range(THRESHOLD):
            assert _post(locking.url, _impostor(party, locking.origin), ME).status_code == 401
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                socket.recv(timeout=30)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CLOSED_UNAUTHENTICATED
    assert f"{party} is locked until" in closed.value.rcvd.reason


def _forged_sign_in(server: Server, party: str, key: SigningKey) -> httpx2.Response:
    link = sign_in_link(server.url, party, key).url
    query = parse_qs(urlsplit(link).query)
    signature = bytearray(from_b64url(query["signature"][0]))
    signature[0] ^= 1
    forged = {"challenge": query["challenge"][0], "signature": b64url(bytes(signature))}
    return httpx2.get(f"{server.url}/console/sign-in?{urlencode(forged)}", timeout=30)


def test_refused_console_sign_ins_count_towards_the_lock(locking: Server, api_world: World) -> None:
    auditor = api_world[AUDITOR]
    for _ in range(THRESHOLD):
        assert _forged_sign_in(locking, AUDITOR, auditor.key).status_code == 401
    security: SecurityLog = locking.app.state.security
    kinds = {kind for kind, _, _ in security.failures(AUDITOR)}
    assert kinds == {"console-sign-in"}
    refused = _post(locking.url, locking.auth(auditor), ME)
    assert refused.status_code == 401
    assert f"{AUDITOR} is locked until" in _error(refused)[1]
    alerts = [
        r.event.envelope["payload"]
        for r in api_world.ledger.iter_log()
        if r.event.envelope["type"] == "SecurityAlert"
    ]
    assert {"identity": AUDITOR, "kinds": ["console-sign-in"]}.items() <= alerts[-1].items()


def test_a_locked_party_cannot_sign_in_to_the_console(locking: Server, api_world: World) -> None:
    helios = api_world[HELIOS]
    link = sign_in_link(locking.url, HELIOS, helios.key).url  # valid, taken before the lock
    for _ in range(THRESHOLD):
        assert _forged_sign_in(locking, HELIOS, helios.key).status_code == 401
    security: SecurityLog = locking.app.state.security
    recorded = len(security.failures(HELIOS))
    response = httpx2.get(link, timeout=30)
    assert response.status_code == 401
    assert f"{HELIOS} is locked until" in response.text
    assert len(security.failures(HELIOS)) == recorded  # the valid link proves nothing new


def test_an_unsigned_caller_cannot_list_alerts(locking: Server) -> None:
    response = _post(locking.url, None, {"query": ALERTS})
    code, _ = _error(response)
    assert code == "UNAUTHENTICATED"


def test_the_lockout_settings_are_read_and_checked() -> None:
    from ledger.errors import ConfigurationError

    default = Settings.from_env({})
    assert (default.lockout_threshold, default.lockout_window, default.lockout_cooldown) == (
        10,
        300.0,
        900.0,
    )
    read = Settings.from_env(
        {
            "CMO_LEDGER_LOCKOUT_THRESHOLD": "3",
            "CMO_LEDGER_LOCKOUT_WINDOW": "60",
            "CMO_LEDGER_LOCKOUT_COOLDOWN": "120",
        }
    )
    assert (read.lockout_threshold, read.lockout_window, read.lockout_cooldown) == (3, 60, 120)
    for name, value in (
        ("CMO_LEDGER_LOCKOUT_THRESHOLD", "0"),
        ("CMO_LEDGER_LOCKOUT_WINDOW", "soon"),
        ("CMO_LEDGER_LOCKOUT_COOLDOWN", "-5"),
    ):
        with pytest.raises(ConfigurationError) as refused:
            Settings.from_env({name: value})
        assert refused.value.field == name


# ------------------------------------------------------------ two processes, one database


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(settings: Settings, log: Path, threshold: int) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMO_LEDGER_")}
    env.update(
        CMO_LEDGER_DATABASE_URL=settings.database_url,
        CMO_LEDGER_DATA_DIR=str(settings.data_dir),
        CMO_LEDGER_PASSPHRASE="operator passphrase",
        CMO_LEDGER_LOCKOUT_THRESHOLD=str(threshold),
    )
    port = _free_port()
    out = log.open("w")
    process = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
    )
    out.close()
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture
def two_servers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[World, str, str]]:
    """Two `cmo-ledger serve` processes on one PostgreSQL ledger (threshold 6)."""
    with fresh_database("postgres", request, tmp_path) as url:
        settings = Settings(database_url=url, data_dir=tmp_path / "data", kdf_profile="min")
        notary = notary_actor()
        from ledger.application import Ledger

        ledger = Ledger.initialise(settings, ORIGIN, notary.public_key)
        world = build_world(ledger, notary)
        create_keystore(
            settings.notary_keystore,
            "notary",
            "operator passphrase",
            signing_key=notary.key,
            opslimit=1,
            memlimit=8192,
        )
        processes = [_serve(settings, tmp_path / f"serve-{i}.log", 6) for i in range(2)]
        try:
            for index, (process, served) in enumerate(processes):
                wait_until_serving(served, process, tmp_path / f"serve-{index}.log")
            yield world, processes[0][1], processes[1][1]
        finally:
            for process, _ in processes:
                process.send_signal(signal.SIGINT)
            for process, _ in processes:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
            ledger.close()


def test_a_burst_split_over_two_processes_locks_once(
    two_servers: tuple[World, str, str],
) -> None:
    world, first, second = two_servers
    origin = world.ledger.identity.origin
    cmo: Actor = world[CMO]
    # Three failures at each process: neither alone reaches 6, together they do.
    for url in (first, second, first, second, first):
        assert _post(url, _impostor(CMO, origin), ME).status_code == 401
    assert _post(first, PartyAuth(CMO, cmo.key, origin=origin), ME).status_code == 200
    assert _post(second, _impostor(CMO, origin), ME).status_code == 401
    for url in (first, second):
        refused = _post(url, PartyAuth(CMO, cmo.key, origin=origin), ME)
        assert refused.status_code == 401
        assert f"{CMO} is locked until" in _error(refused)[1]
    assert _post(first, PartyAuth(SPONSOR, world[SPONSOR].key, origin=origin), ME).status_code == (
        200
    )
    assert _metric(first, CMO) + _metric(second, CMO) == 1
    with world.ledger.engine.connect() as conn:
        locks = conn.execute(sa.text("SELECT identity, failures FROM security_lockouts")).all()
        failures = conn.execute(sa.text("SELECT count(*) FROM security_events")).scalar()
    assert [(str(i), int(n)) for i, n in locks] == [(CMO, 6)]
    assert failures == 6
    alerts = [r for r in world.ledger.iter_log() if r.event.envelope["type"] == "SecurityAlert"]
    assert len(alerts) == 1 and alerts[0].event.envelope["payload"]["identity"] == CMO
