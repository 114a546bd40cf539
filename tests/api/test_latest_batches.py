"""An agreement's latest batches are the newest ones the caller may see: a grantee opening
only older batches gets those, not an empty page cut from the newest."""

from __future__ import annotations

from datetime import timedelta

from ledger.timeutil import now_utc
from tests.support.agreements import grant, propose_and_sign
from tests.support.batches import register_batch
from tests.support.server import Server
from tests.support.world import World

SPONSOR, REGULATOR = "northwind-bio", "agency-inspectorate"
LATEST = "query($a: ID!, $n: Int!) { agreement(id: $a) { batches(latest: $n) { id } } }"


def test_the_latest_batches_a_grantee_sees_are_the_newest_its_grant_opens(
    api_world: World, server: Server
) -> None:
    agreement = propose_and_sign(api_world)
    start = now_utc() - timedelta(days=40)
    opened = [f"LATEST-OPEN-{n}" for n in range(3)]
    closed = [f"LATEST-CLOSED-{n}" for n in range(5)]
    for offset, name in enumerate(opened + closed):  # the closed ones are the newest
        register_batch(api_world, agreement, name, started_at=start + timedelta(days=offset))
    grant(api_world, agreement, SPONSOR, REGULATOR, batches=opened)
    server.services.projector.catch_up_safely(api_world.ledger.head())

    def latest(party: str, n: int) -> list[str]:
        data, errors = server.call(api_world[party], LATEST, {"a": str(agreement), "n": n})
        assert errors == [], errors
        return [batch["id"] for batch in data["agreement"]["batches"]]

    assert latest(REGULATOR, 2) == opened[1:]
    assert latest(REGULATOR, 50) == opened
    assert latest(SPONSOR, 2) == closed[3:]
    assert latest(SPONSOR, 50) == opened + closed
