"""Two writers racing for one subject version: exactly one wins, nothing lost or duplicated."""

from __future__ import annotations

import threading
from typing import Any

from nacl.signing import SigningKey

from ledger.domain.subjects import party_subject
from ledger.errors import LedgerError, VersionConflict
from ledger.keys import encode_public_key
from tests.support.world import World

RACERS = 8
ROUNDS = 5


def test_racing_writers_for_the_same_version_get_exactly_one_winner(world: World) -> None:
    cmo = world["contoso-cmo"]
    subject = party_subject("contoso-cmo")
    for _ in range(ROUNDS):
        prepared: list[tuple[dict[str, Any], str]] = []
        for _ in range(RACERS):
            envelope, signature = cmo.prepare(
                world.ledger,
                "KeyAdded",
                subject,
                {"public_key": encode_public_key(SigningKey.generate()), "purpose": "party"},
                meaning="authored",
            )
            prepared.append((envelope, signature))
        version = prepared[0][0]["version"]
        head = world.ledger.head()
        outcomes = race(world, prepared)

        winners = [o for o in outcomes if not isinstance(o, LedgerError)]
        losers = [o for o in outcomes if isinstance(o, LedgerError)]
        assert len(winners) == 1
        assert all(isinstance(o, VersionConflict) for o in losers), losers
        events = world.ledger.read(head, 100)
        assert [e.version for e in events] == [version]
        assert world.ledger.next_version(subject)[0] == version + 1


def race(world: World, prepared: list[tuple[dict[str, Any], str]]) -> list[object]:
    """Append every envelope from its own thread, all released at once."""
    barrier = threading.Barrier(len(prepared))
    outcomes: list[object] = []
    lock = threading.Lock()

    def run(item: tuple[dict[str, Any], str]) -> None:
        barrier.wait()
        try:
            result: object = world.ledger.append(*item)
        except LedgerError as error:
            result = error
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=run, args=(item,)) for item in prepared]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
