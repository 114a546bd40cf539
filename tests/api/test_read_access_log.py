"""R11: every external read of GxP data is logged, the log is committed by the notary's
signed ``ReadsRecorded`` events, and only the data's owner (the batch's CMO) and the notary
may ask who read it.

Reads go over signed HTTP with a query text of the test's own, so that each test finds its
rows by the SHA-256 of that query and its variables.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from graphql import GraphQLObjectType, build_schema

from api.read_log import GXP_FIELDS, ReadLog, query_hash, read_access, reads_root, verify_reads
from api.schema import schema
from clients.http_signing import PartyAuth
from ledger.application import Ledger
from ledger.clock import FakeClock
from ledger.config import Settings
from ledger.errors import ConfigurationError
from ledger.keystore import create_keystore
from ledger.log.checkpoints import Notary
from ledger.log.verify import verify_ledger
from tests.conftest import BACKENDS, fresh_database
from tests.support.agreements import propose_and_sign
from tests.support.batches import discrete_records, register_batch, submit_data
from tests.support.data_server import Served, shared_data_server
from tests.support.data_world import B1, H1
from tests.support.server import codes, running_server, wait_until_serving
from tests.support.world import ORIGIN, World, build_world, notary_actor

pytestmark = pytest.mark.xdist_group("data_queries")

NORTHWIND, HELIOS, CONTOSO = "northwind-bio", "helios-tx", "contoso-cmo"
FABRIKAM, REGULATOR = "fabrikam-cmo", "agency-inspectorate"
READS = """
query($b: String, $first: Int!, $after: String) {
  dataReads(batch: $b, first: $first, after: $after) {
    reads {
      id reader key agreementId batch fields operation queryHash at
      commitment { position first last count root }
    }
    endCursor hasNextPage
  }
}
"""
CLI = [sys.executable, "-c", "from clients.cli import main; main()"]
PASSPHRASE = "operator passphrase"


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest) -> Served:
    return shared_data_server(request, request.param)


def read_as(served: Served, party: str, query: str, variables: dict[str, Any]) -> str:
    """Run ``query`` signed by ``party`` over HTTP; the query hash the log records."""
    with served.server.http(served.data.world[party]) as client:
        response = client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return query_hash(query, variables)


def logged(served: Served, party: str, digest: str, batch: str | None = None) -> list[Any]:
    """The rows ``party`` sees in ``dataReads`` (every page) with query hash ``digest``."""
    rows: list[Any] = []
    after = None
    while True:
        variables = {"b": batch, "first": 500, "after": after}
        data, errors = served.call(party, READS, variables)
        assert errors == [], errors
        page = data["dataReads"]
        rows.extend(r for r in page["reads"] if r["queryHash"] == digest)
        if not page["hasNextPage"]:
            return rows
        after = page["endCursor"]


def test_r11_every_gxp_field_is_in_the_schema() -> None:
    served_schema = build_schema(schema.as_str())
    assert GXP_FIELDS
    for name in GXP_FIELDS:
        type_name, field = name.split(".")
        found = served_schema.get_type(type_name)
        assert isinstance(found, GraphQLObjectType) and field in found.fields, name


def test_r11_a_sponsor_read_of_cmo_data_is_logged(served: Served) -> None:
    query = (
        "query R11SponsorReads($b: String!) { batch(id: $b) { "
        "discrete { id value } events { id kind } } }"
    )
    digest = read_as(served, NORTHWIND, query, {"b": B1})
    [row] = logged(served, CONTOSO, digest, B1)
    assert row["reader"] == NORTHWIND
    assert row["key"] == served.data.world[NORTHWIND].key_id
    assert (row["agreementId"], row["batch"]) == (served.data.a1, B1)
    assert row["fields"] == ["Batch.discrete", "Batch.events"]
    assert row["operation"] == "R11SponsorReads"
    assert row["at"].endswith("Z")

    # A grantee's trace of the batch is logged too, and so are the envelopes it reads.
    trace = "query R11Trace($b: String!) { traceBatch(id: $b) { batch { id } } }"
    [traced] = logged(served, CONTOSO, read_as(served, REGULATOR, trace, {"b": B1}), B1)
    assert (traced["reader"], traced["fields"]) == (REGULATOR, ["Query.traceBatch"])
    log_page = "query R11Log { log(first: 500) { events { envelope } } }"
    digest = read_as(served, NORTHWIND, log_page, {})
    batches = {row["batch"] for row in logged(served, CONTOSO, digest)}
    assert B1 in batches and H1 not in batches  # Northwind may not read Helios's batch
    assert {tuple(r["fields"]) for r in logged(served, CONTOSO, digest)} == {("LogEvent.envelope",)}


def test_r11_the_owners_own_reads_are_not_logged(served: Served) -> None:
    query = "query R11OwnerReads($b: String!) { batch(id: $b) { discrete { id } } }"
    digest = read_as(served, CONTOSO, query, {"b": B1})
    assert logged(served, CONTOSO, digest, B1) == []
    # The same operation by the sponsor is logged: the owner's was not.
    read_as(served, NORTHWIND, query, {"b": B1})
    assert [row["reader"] for row in logged(served, CONTOSO, digest, B1)] == [NORTHWIND]
    # Reading batch metadata only (no GxP field) is not logged either.
    plain = "query R11Metadata($b: String!) { batch(id: $b) { id product site } }"
    assert logged(served, CONTOSO, read_as(served, NORTHWIND, plain, {"b": B1}), B1) == []


def test_r11_a_read_that_cannot_be_logged_is_not_answered(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    def database_down(*args: object) -> int:
        raise sa.exc.OperationalError("INSERT INTO read_access", {}, OSError("connection lost"))

    monkeypatch.setattr(served.server.services.read_log, "record", database_down)
    query = "query R11Unlogged($b: String!) { batch(id: $b) { discrete { id value } } }"
    with served.server.http(served.data.world[NORTHWIND]) as client:
        body = client.post("/graphql", json={"query": query, "variables": {"b": B1}}).json()
    assert body["data"] is None
    assert codes(body["errors"]) == ["UNAVAILABLE"]
    assert "value" not in str(body["errors"])
    monkeypatch.undo()
    assert logged(served, CONTOSO, query_hash(query, {"b": B1}), B1) == []


def _committed(served: Served, digest: str) -> dict[str, Any]:
    """The logged row of ``digest``, once the notary has committed it."""
    read_log: ReadLog = served.server.services.read_log
    while True:
        [row] = logged(served, CONTOSO, digest, B1)
        if row["commitment"] is not None:
            return row
        read_log.commit_pending(wait=False)


def test_r11_reads_are_committed_by_a_signed_reads_recorded_event(served: Served) -> None:
    query = "query R11Committed($b: String!) { batch(id: $b) { tags { tag points } } }"
    row = _committed(served, read_as(served, NORTHWIND, query, {"b": B1}))
    commitment = row["commitment"]
    assert commitment["first"] <= row["id"] <= commitment["last"]

    ledger = served.data.ledger
    position = commitment["position"]
    with ledger.engine.connect() as conn:
        rows = [
            dict(r._mapping)
            for r in conn.execute(
                sa.select(read_access)
                .where(read_access.c.committed_at == position)
                .order_by(read_access.c.id)
            )
        ]
    assert row["id"] in [r["id"] for r in rows]
    event = ledger.read_at([position])[position].event.envelope
    assert (event["type"], event["signer"], event["meaning"]) == (
        "ReadsRecorded",
        "notary",
        "recorded",
    )
    assert event["payload"] == {
        "first": rows[0]["id"],
        "last": rows[-1]["id"],
        "count": len(rows),
        "root": reads_root(rows),
    }
    assert commitment["root"] == event["payload"]["root"]
    assert verify_reads(ledger) == []
    Notary(ledger, served.data.world.notary.key).checkpoint_now()
    report = verify_ledger(ledger, workers=1)
    assert report.ok, report.problems


def test_r11_only_the_owner_can_ask_who_read_its_data(served: Served) -> None:
    asked = "query R11Asked($b: String!) { batch(id: $b) { discrete { id } } }"
    read_as(served, NORTHWIND, asked, {"b": B1})
    for party in (NORTHWIND, HELIOS, REGULATOR):
        for batch in (B1, None):
            _, errors = served.call(party, READS, {"b": batch, "first": 10, "after": None})
            assert codes(errors) == ["FORBIDDEN"], (party, errors)
    # Another CMO may not ask about Contoso's batch, nor learn whether it exists.
    _, errors = served.call(FABRIKAM, READS, {"b": B1, "first": 10, "after": None})
    assert codes(errors) == ["FORBIDDEN"] and errors[0]["extensions"]["field"] == "batch"
    _, unknown = served.call(FABRIKAM, READS, {"b": "NO-SUCH-BATCH", "first": 10, "after": None})
    assert unknown[0]["message"].replace("NO-SUCH-BATCH", B1) == errors[0]["message"]
    data, errors = served.call(FABRIKAM, READS, {"b": None, "first": 10, "after": None})
    assert errors == [] and data["dataReads"]["reads"] == []
    _, errors = served.call(None, READS, {"b": B1, "first": 10, "after": None})
    assert codes(errors) == ["UNAUTHENTICATED"]
    # The owner and the notary see the reads.
    world = served.data.world
    for actor in (world[CONTOSO], world.notary):
        data, errors = served.server.call(actor, READS, {"b": B1, "first": 10, "after": None})
        assert errors == [], errors
        reads = data["dataReads"]["reads"]
        assert reads and all(r["batch"] == B1 for r in reads)


def test_r11_tampered_read_log_row_is_detected(served: Served) -> None:
    query = "query R11Tampered($b: String!) { batch(id: $b) { submissions { id } } }"
    row = _committed(served, read_as(served, REGULATOR, query, {"b": B1}))
    ledger = served.data.ledger
    position = row["commitment"]["position"]
    where = read_access.c.id == row["id"]
    assert verify_reads(ledger) == []

    # Another reader written into the row: the signed root no longer matches.
    with ledger.engine.begin() as conn:
        conn.execute(sa.update(read_access).where(where).values(reader=HELIOS))
    try:
        assert verify_reads(ledger) == [
            f"the rows of ReadsRecorded at position {position} no longer match it (root): "
            "the read-access log was altered"
        ]
    finally:
        with ledger.engine.begin() as conn:
            conn.execute(sa.update(read_access).where(where).values(reader=REGULATOR))
    assert verify_reads(ledger) == []

    # The row deleted: its commitment no longer matches (or has no rows left).
    with ledger.engine.begin() as conn:
        conn.execute(sa.delete(read_access).where(where))
    try:
        [problem] = verify_reads(ledger)
        assert f"ReadsRecorded at position {position} " in problem, problem
    finally:
        with ledger.engine.begin() as conn:
            conn.execute(sa.insert(read_access).values(**_stored(row, position)))
    assert verify_reads(ledger) == []


def _stored(row: dict[str, Any], position: int) -> dict[str, Any]:
    return {
        "id": row["id"],
        "reader": row["reader"],
        "key": row["key"],
        "agreement": row["agreementId"],
        "batch": row["batch"],
        "owner": CONTOSO,
        "fields": ",".join(row["fields"]),
        "operation": row["operation"],
        "query_sha256": row["queryHash"],
        "at": row["at"],
        "committed_at": position,
    }


def test_r11_the_read_log_interval_is_read_and_checked() -> None:
    assert Settings.from_env({}).read_log_interval == 10.0
    assert Settings.from_env({"CMO_LEDGER_READ_LOG_INTERVAL": "2.5"}).read_log_interval == 2.5
    for value in ("0", "soon"):
        with pytest.raises(ConfigurationError) as refused:
            Settings.from_env({"CMO_LEDGER_READ_LOG_INTERVAL": value})
        assert refused.value.field == "CMO_LEDGER_READ_LOG_INTERVAL"


# ------------------------------------------------------------- a killed server process


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(settings: Settings, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMO_LEDGER_")}
    env.update(
        CMO_LEDGER_DATABASE_URL=settings.database_url,
        CMO_LEDGER_DATA_DIR=str(settings.data_dir),
        CMO_LEDGER_PASSPHRASE=PASSPHRASE,
    )
    port = _free_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [*CLI, "serve", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(url, process, log)
    return process, url


@pytest.fixture(params=BACKENDS)
def small_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[World, Settings]]:
    """A ledger with one batch of Contoso's data for Northwind, and the notary's keystore."""
    with fresh_database(request.param, request, tmp_path) as url:
        settings = Settings(database_url=url, data_dir=tmp_path / "data", kdf_profile="min")
        notary = notary_actor()
        ledger = Ledger.initialise(settings, ORIGIN, notary.public_key)
        try:
            world = build_world(ledger, notary)
            register_batch(world, propose_and_sign(world, NORTHWIND, CONTOSO), B1)
            submit_data(world, B1, "discrete", discrete_records("K"))
            create_keystore(
                settings.notary_keystore,
                "notary",
                PASSPHRASE,
                signing_key=notary.key,
                opslimit=1,
                memlimit=8192,
            )
            yield world, settings
        finally:
            ledger.close()


def _post(url: str, auth: PartyAuth, query: str, variables: dict[str, Any]) -> Any:
    import httpx2

    with httpx2.Client(timeout=60) as client:
        response = client.post(
            f"{url}/graphql", json={"query": query, "variables": variables}, auth=auth
        )
    assert response.status_code == 200, response.text
    return response.json()


def test_r11_the_notary_commits_at_most_once_per_interval(
    small_world: tuple[World, Settings],
) -> None:
    world, settings = small_world
    clock = FakeClock(ticking=True)
    query = "query R11Interval($b: String!) { batch(id: $b) { discrete { id } } }"
    with running_server(settings, world.notary.key, clock=clock, read_log_interval=3600) as server:
        read_log: ReadLog = server.services.read_log

        def sponsor_reads() -> None:
            with server.http(world[NORTHWIND]) as client:
                response = client.post("/graphql", json={"query": query, "variables": {"b": B1}})
            assert response.status_code == 200 and "errors" not in response.json()

        sponsor_reads()
        first = read_log.commit_pending()
        assert first is not None and first.count == 1
        sponsor_reads()
        assert read_log.commit_pending() is None  # within the interval: the row waits
        clock.advance(timedelta(seconds=3600))
        second = read_log.commit_pending()
        assert second is not None
        assert (second.first, second.last, second.count) == (first.last + 1, first.last + 1, 1)
        assert read_log.commit_pending(wait=False) is None  # nothing left to commit
    assert verify_reads(world.ledger) == []


def test_r11_the_served_app_commits_the_reads_by_itself(
    small_world: tuple[World, Settings],
) -> None:
    world, settings = small_world
    query = "query R11Background($b: String!) { batch(id: $b) { events { id } } }"
    with running_server(settings, world.notary.key, read_log_interval=0.2) as server:
        with server.http(world[NORTHWIND]) as client:
            response = client.post("/graphql", json={"query": query, "variables": {"b": B1}})
        assert response.status_code == 200 and "errors" not in response.json()
        deadline = time.monotonic() + 60
        while True:
            data, errors = server.call(world[CONTOSO], READS, {"b": B1, "first": 10, "after": None})
            assert errors == [], errors
            [row] = data["dataReads"]["reads"]
            if row["commitment"] is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert row["commitment"] is not None, "the app's background task committed the read"
    assert (row["commitment"]["first"], row["commitment"]["count"]) == (row["id"], 1)
    assert verify_reads(world.ledger) == []


def test_r11_reads_survive_a_killed_worker(
    small_world: tuple[World, Settings], tmp_path: Path
) -> None:
    world, settings = small_world
    origin = world.ledger.identity.origin
    query = "query R11Killed($b: String!) { batch(id: $b) { discrete { id value } } }"
    variables = {"b": B1}
    process, url = _serve(settings, tmp_path / "first.log")
    try:
        answer = _post(
            url, PartyAuth(NORTHWIND, world[NORTHWIND].key, origin=origin), query, variables
        )
        process.send_signal(signal.SIGKILL)  # at once after the answer: no shutdown runs
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    assert [r["id"] for r in answer["data"]["batch"]["discrete"]] == [
        f"K-{i:03d}" for i in range(1, 6)
    ]

    fresh, url = _serve(settings, tmp_path / "second.log")
    try:
        cmo = PartyAuth(CONTOSO, world[CONTOSO].key, origin=origin)
        page = _post(url, cmo, READS, {"b": B1, "first": 10, "after": None})
    finally:
        fresh.send_signal(signal.SIGINT)
        try:
            fresh.wait(30)
        except subprocess.TimeoutExpired:
            fresh.kill()
    rows = page["data"]["dataReads"]["reads"]
    assert [(r["reader"], r["queryHash"], r["fields"]) for r in rows] == [
        (NORTHWIND, query_hash(query, variables), ["Batch.discrete"])
    ]
