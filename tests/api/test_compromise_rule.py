"""One compromise rule, one finding: an event whose ``signed_at`` or ``recorded_at`` is at or
after its key's ``compromised_since`` is reported as signed under a compromised key, in the
same words, by ``verify``, ``verify-bundle``, the API's ``LogEvent`` and the notary."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clients.bundle import verify_bundle
from clients.cli import app
from clients.client import LedgerClient
from clients.evidence import export_evidence
from ledger.domain.key_history import EXIT_COMPROMISED, finding
from ledger.domain.subjects import batch_subject, party_subject
from ledger.errors import KeyRevoked
from ledger.log.notes import cosign
from ledger.log.verify import verify_ledger
from ledger.timeutil import format_utc, now_utc, parse_utc
from tests.support.agreements import propose_and_sign
from tests.support.batches import data_payload, discrete_records, register_batch
from tests.support.server import Server
from tests.support.world import World

SPONSOR, CMO = "northwind-bio", "contoso-cmo"
BATCH = "NWB101-24-051"
EVENT = "query($i: Int!) { event(leafIndex: $i) { position compromised } }"


@dataclass
class Caught:
    """Contoso's key, compromised after the batch was registered and before its data came."""

    world: World
    kid: str
    since: str
    clean: int
    caught: int


def later_than(recorded_at: str) -> datetime:
    """The clock once it has passed ``recorded_at``, so the order of times is certain."""
    while now_utc() <= parse_utc(recorded_at, field="recorded_at"):
        time.sleep(0.001)
    return now_utc()


@pytest.fixture(scope="module")
def caught(server: Server, api_world: World) -> Caught:
    world, cmo = api_world, api_world[CMO]
    register_batch(world, propose_and_sign(world), BATCH)
    clean = world.ledger.head()
    since = format_utc(later_than(world.ledger.read(after=clean - 1, limit=1)[0].event.recorded_at))
    later_than(since)
    # Signed (it says) a minute before the compromise; recorded after it.
    envelope, signature = cmo.prepare(
        world.ledger,
        "DataSubmitted",
        batch_subject(BATCH),
        data_payload("discrete", discrete_records("K", sampled_at=now_utc())),
        meaning="submitted",
        signed_at=format_utc(parse_utc(since, field="since") - timedelta(seconds=60)),
    )
    data = world.ledger.append(envelope, signature).position
    world.notary.submit(
        world.ledger,
        "KeyRevoked",
        party_subject(CMO),
        {"key": cmo.key_id, "compromised_since": since},
        meaning="revoked",
        reason="signing key found on a public file share",
    )
    server.services.projector.catch_up_safely(world.ledger.head())
    server.services.index(world.ledger.head())
    server.services.notary.checkpoint_now()
    return Caught(world, cmo.key_id, since, clean, data)


def expected(caught: Caught) -> str:
    return finding(CMO, caught.kid, caught.since)


def test_verify_reports_the_event_in_the_rule_s_words(caught: Caught) -> None:
    report = verify_ledger(caught.world.ledger, workers=1)
    assert report.ok, [str(p) for p in report.errors]
    assert [p.position for p in report.compromised] == [caught.caught]
    assert expected(caught) in report.compromised[0].message
    assert report.exit_status == EXIT_COMPROMISED


def test_the_api_marks_the_same_event_and_only_it(server: Server, caught: Caught) -> None:
    leaves = server.services.leaf_indexes([caught.clean, caught.caught])
    assert sorted(leaves) == [caught.clean, caught.caught]
    for position, flagged in ((caught.clean, False), (caught.caught, True)):
        data, errors = server.call(caught.world[SPONSOR], EVENT, {"i": leaves[position]})
        assert errors == []
        assert data["event"] == {"position": position, "compromised": flagged}


def test_verify_bundle_reports_the_same_event_in_the_same_words(
    server: Server, caught: Caught, tmp_path: Path
) -> None:
    sponsor = caught.world[SPONSOR]
    with LedgerClient(server.url, sponsor.party_id, sponsor.key) as client:
        bundle = export_evidence(client, BATCH, tmp_path / "bundle")
        vkey = str(client.graphql("{ ledger { notaryKey } }")["ledger"]["notaryKey"])
    report = verify_bundle(bundle, vkey=vkey)
    assert report.problems == []
    assert len(report.compromised) == 1
    assert expected(caught) in report.compromised[0]
    assert report.exit_status == EXIT_COMPROMISED
    result = CliRunner().invoke(app, ["verify-bundle", str(bundle), "--vkey", vkey])
    assert result.exit_code == EXIT_COMPROMISED, result.output
    assert result.output.splitlines()[-1].startswith("COMPROMISED:")


def test_the_notary_refuses_a_cosignature_in_the_same_words(server: Server, caught: Caught) -> None:
    notary = server.services.notary
    checkpoint = notary.latest()
    assert checkpoint is not None
    timestamp = int(datetime.now(UTC).timestamp()) + 1  # whole seconds: past the compromise
    line = cosign(checkpoint.body, CMO, caught.world[CMO].key, timestamp)
    with pytest.raises(KeyRevoked) as refused:
        notary.add_cosignature(checkpoint.size, CMO, line)
    assert expected(caught) in str(refused.value)
