"""One clock, injected: the ledger and the API read the time from the clock they are given,
so a test moves a fake clock instead of sleeping until a grant expires."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from ledger.application import Ledger
from ledger.clock import FakeClock
from ledger.config import Settings
from ledger.errors import ValidationFailed
from ledger.timeutil import format_utc
from tests.conftest import BACKENDS, fresh_database
from tests.support.agreements import grant, propose_and_sign
from tests.support.batches import discrete_records, register_batch, submit_data
from tests.support.server import Server, codes, running_server
from tests.support.world import ORIGIN, World, agreement_terms, build_world, notary_actor

SPONSOR, AUDITOR = "northwind-bio", "qa-auditor-llc"
BATCH = "NWB101-24-061"
RESULTS = 'query { batch(id: "NWB101-24-061") { discrete { id } } }'


@pytest.fixture(params=BACKENDS)
def clocked(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[World, FakeClock]]:
    clock = FakeClock(ticking=True)
    with fresh_database(request.param, request, tmp_path) as url:
        settings = Settings(database_url=url, data_dir=tmp_path / "data", kdf_profile="min")
        notary = notary_actor()
        ledger = Ledger.initialise(settings, ORIGIN, notary.public_key, clock)
        try:
            yield build_world(ledger, notary), clock
        finally:
            ledger.close()


@pytest.fixture
def served(clocked: tuple[World, FakeClock]) -> Iterator[Server]:
    world, clock = clocked
    with running_server(world.ledger.settings, world.notary.key, clock=clock) as server:
        yield server


def test_a_grant_closes_at_valid_until_on_the_api_s_clock(
    clocked: tuple[World, FakeClock], served: Server
) -> None:
    world, clock = clocked
    agreement = propose_and_sign(world)
    register_batch(world, agreement, BATCH)
    submit_data(world, BATCH, "discrete", discrete_records("C", sampled_at=clock.now()))
    # Within the request signatures' freshness (300 s): the API judges those on its clock too.
    until = clock.now() + timedelta(minutes=2)
    grant(
        world, agreement, SPONSOR, AUDITOR, data_classes=["discrete"], valid_until=format_utc(until)
    )
    served.services.projector.catch_up_safely(world.ledger.head())

    data, errors = served.call(world[AUDITOR], RESULTS)
    assert errors == [] and data["batch"]["discrete"], errors
    clock.advance(until - clock.now() - timedelta(seconds=5))
    assert served.call(world[AUDITOR], RESULTS)[1] == []
    clock.advance(timedelta(seconds=6))
    assert codes(served.call(world[AUDITOR], RESULTS)[1]) == ["FORBIDDEN"]


def test_a_signed_at_beyond_the_skew_is_judged_on_the_ledger_s_clock(
    clocked: tuple[World, FakeClock],
) -> None:
    world, clock = clocked
    skew = timedelta(seconds=world.ledger.settings.max_clock_skew)
    ahead = format_utc(clock.now() + skew + timedelta(seconds=5))
    proposal = {"terms": agreement_terms()}
    envelope, signature = world[SPONSOR].prepare(
        world.ledger, "AgreementProposed", uuid.uuid4(), proposal, meaning="authored"
    )
    envelope["signed_at"] = ahead
    signature = world[SPONSOR].sign(envelope)
    head = world.ledger.head()
    with pytest.raises(ValidationFailed) as refused:
        world.ledger.append(envelope, signature)
    assert refused.value.field == "signed_at"
    assert world.ledger.head() == head
    clock.advance(timedelta(seconds=10))  # now the same envelope is within the skew
    assert world.ledger.append(envelope, signature).position == head + 1
