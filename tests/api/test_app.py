"""The plain HTTP endpoints and the `cmo-ledger serve` command."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from nacl.signing import SigningKey
from typer.testing import CliRunner

from api.app import KEEP_ALIVE_SECONDS
from clients.cli import app as cli_app
from clients.http_signing import PartyAuth
from clients.offline import verify_checkpoint
from ledger.config import Settings
from ledger.domain.subjects import party_subject
from ledger.keys import encode_public_key
from ledger.keystore import create_keystore
from tests.support.server import Server, codes, wait_until_serving
from tests.support.world import World

pytestmark = pytest.mark.xdist_group("api_app")

CMO = "contoso-cmo"
CLI = [sys.executable, "-c", "from clients.cli import main; main()"]


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in the metrics:\n{text}")


def counted(text: str, name: str) -> float:
    """A counter's value; a counter not yet incremented is absent, i.e. zero."""
    return metric(text, name) if f"{name} " in text else 0.0


def test_a_browser_gets_graphiql(server: Server) -> None:
    with server.http(None) as client:
        response = client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


def test_a_body_that_is_not_a_graphql_request_is_refused_with_a_code(
    server: Server, api_world: World
) -> None:
    with server.http(api_world[CMO]) as client:
        response = client.post(
            "/graphql", content=b"{not json", headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    assert codes(response.json()["errors"]) == ["VALIDATION_FAILED"]


def test_the_checkpoint_is_c2sp_text_signed_by_the_notary(server: Server, api_world: World) -> None:
    vkey = server.call(None, "{ ledger { notaryKey } }")[0]["ledger"]["notaryKey"]
    with server.http(None) as client:
        response = client.get("/checkpoint")
    assert response.headers["content-type"].startswith("text/plain")
    checkpoint = verify_checkpoint(response.text, vkey, origin=api_world.ledger.identity.origin)
    assert checkpoint.size >= len(api_world.actors)


def test_health_reports_the_log_head(server: Server, api_world: World) -> None:
    with server.http(None) as client:
        health = client.get("/healthz").json()
    assert health["status"] == "ok"
    assert health["head"] == api_world.ledger.head()


def test_metrics_count_requests_errors_appends_and_report_the_log(
    server: Server, api_world: World
) -> None:
    with server.http(None) as client:
        before = client.get("/metrics").text
    server.call(None, "{ me { id } }")
    server.submit(
        api_world[CMO],
        "KeyAdded",
        party_subject(CMO),
        {"public_key": encode_public_key(SigningKey.generate()), "purpose": "party"},
        meaning="authored",
    )
    with server.http(None) as client:
        response = client.get("/metrics")
    after = response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    errors = 'cmo_ledger_errors_total{code="UNAUTHENTICATED"}'
    assert metric(after, errors) == counted(before, errors) + 1
    assert (
        metric(after, "cmo_ledger_appends_total") == counted(before, "cmo_ledger_appends_total") + 1
    )
    requests = 'cmo_ledger_http_requests_total{path="/graphql"}'
    assert metric(after, requests) >= counted(before, requests) + 3
    assert metric(after, "cmo_ledger_log_size") == api_world.ledger.head()
    assert metric(after, "cmo_ledger_projection_lag") == 0
    assert metric(after, "cmo_ledger_tree_size") >= metric(after, "cmo_ledger_checkpoint_size")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served_by_cli(api_settings: Settings, api_world: World, tmp_path: Path) -> Iterator[str]:
    """`cmo-ledger serve --workers 2` on the module's ledger, as an operator starts it."""
    create_keystore(
        api_settings.notary_keystore,
        "notary",
        "operator passphrase",
        signing_key=api_world.notary.key,
        overwrite=True,
        opslimit=1,
        memlimit=8192,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMO_LEDGER_")}
    env.update(
        CMO_LEDGER_DATABASE_URL=api_settings.database_url,
        CMO_LEDGER_DATA_DIR=str(api_settings.data_dir),
        CMO_LEDGER_PASSPHRASE="operator passphrase",
    )
    port = _free_port()
    args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen([*CLI, *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process, tmp_path / "serve.log")
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_the_serve_command_runs_workers_that_share_one_database(
    served_by_cli: str, api_world: World
) -> None:
    actor = api_world[CMO]
    body = {"query": "{ me { id } }"}
    request = httpx2.Request("POST", f"{served_by_cli}/graphql", json=body)
    PartyAuth(actor.party_id, actor.key, origin=api_world.ledger.identity.origin).sign(request)
    answers = []
    with httpx2.Client() as client:
        for _ in range(4):  # the same signed request, to whichever worker takes it
            answers.append(client.send(request).status_code)
    assert answers == [200, 401, 401, 401]


def test_the_server_keeps_an_idle_connection_longer_than_clients_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A client reuses an idle connection for up to its expiry; were the server to close it
    # sooner, a request sent at that moment would fail unanswered.
    started: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda *args, **options: started.update(options))
    monkeypatch.setenv("CMO_LEDGER_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(cli_app, ["serve", "--port", "0"])
    assert result.exit_code == 0, result.output
    client_expiry = httpx2.Limits().keepalive_expiry or 0.0
    assert started["timeout_keep_alive"] == KEEP_ALIVE_SECONDS > client_expiry
