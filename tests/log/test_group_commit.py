"""Group commit: concurrent appends of one process share a transaction, each request
keeping its own outcome; a transaction that fails acknowledges none of them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from ledger.application import Appended, AppendRequest, Ledger
from ledger.domain.subjects import party_subject
from ledger.errors import BadSignature, LedgerError, Unavailable, VersionConflict
from ledger.group_commit import GroupCommit
from ledger.keys import encode_public_key
from ledger.log.envelope import event_hash
from tests.support.world import Actor, World

ROOT = Path(__file__).resolve().parents[2]
Signed = tuple[dict[str, Any], str]


def _key_added(actor: Actor, version: int, prev: str | None) -> Signed:
    payload = {"public_key": encode_public_key(SigningKey.generate()), "purpose": "party"}
    envelope = actor.envelope(
        "KeyAdded",
        party_subject(actor.party_id),
        payload,
        version=version,
        prev=prev,
        meaning="authored",
    )
    return envelope, actor.sign(envelope)


def _next_key_added(world: World, party: str) -> Signed:
    version, prev = world.ledger.next_version(party_subject(party))
    return _key_added(world[party], version, prev)


def _forged(signed: Signed) -> Signed:
    envelope, _ = signed
    return envelope, Actor(envelope["signer"], SigningKey.generate()).sign(envelope)


class _Recording(GroupCommit):
    """A group commit that holds its first group until told, and records each group."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(ledger)
        self.groups: list[list[AppendRequest]] = []
        self.told: list[int] = []
        self.release = threading.Event()
        original = ledger.append_group

        def append_group(requests: Sequence[AppendRequest], **options: Any) -> Any:
            self.groups.append(list(requests))
            if len(self.groups) == 1:
                self.release.wait(30)
            return original(requests, **options)

        ledger.append_group = append_group  # type: ignore[method-assign]

    def waiting(self) -> int:
        return len(self._queue)


def _submit_in_threads(
    writer: _Recording, requests: Sequence[Sequence[Signed]]
) -> list[list[Appended] | LedgerError]:
    """Submit the first request, then the others while the first group is held, each
    joining after the one before; return each request's outcome."""
    outcomes: list[list[Appended] | LedgerError | None] = [None] * len(requests)
    told: list[int] = []
    writer.ledger.add_listener(told.append)

    def submit(index: int) -> None:
        try:
            outcomes[index] = appended = writer.append_many(list(requests[index]))
        except LedgerError as error:
            outcomes[index] = error
        else:
            assert told and max(told) >= appended[-1].position, "returned before the views"
            writer.told = told

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(len(requests))]
    threads[0].start()
    _wait_for(lambda: len(writer.groups) == 1)
    for count, thread in enumerate(threads[1:], start=1):
        thread.start()
        _wait_for(lambda count=count: writer.waiting() == count)  # type: ignore[misc]
    writer.release.set()
    for thread in threads:
        thread.join(30)
    assert all(outcome is not None for outcome in outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "the requests did not queue"
        time.sleep(0.005)


def test_concurrent_requests_are_stored_in_one_transaction_in_the_order_they_joined(
    world: World,
) -> None:
    writer = _Recording(world.ledger)
    parties = ["northwind-bio", "contoso-cmo", "fabrikam-cmo", "helios-tx"]
    requests = [[_next_key_added(world, party)] for party in parties]
    head = world.ledger.head()

    outcomes = _submit_in_threads(writer, requests)

    assert [len(group) for group in writer.groups] == [1, 3], "the three waiting shared one"
    positions = [outcome[0].position for outcome in outcomes if isinstance(outcome, list)]
    assert positions == list(range(head + 1, head + 5)), "stored in the order they joined"
    assert writer.told == [head + 1, head + 4], "the listeners are told once per group"
    for party, outcome in zip(parties, outcomes, strict=True):
        assert isinstance(outcome, list)
        assert world.ledger.read(outcome[0].position - 1, 1)[0].event.envelope["signer"] == party


def test_a_refused_envelope_fails_its_own_request_only(world: World) -> None:
    writer = _Recording(world.ledger)
    requests = [
        [_next_key_added(world, "northwind-bio")],
        [_next_key_added(world, "contoso-cmo")],
        [_forged(_next_key_added(world, "fabrikam-cmo"))],
        [_next_key_added(world, "helios-tx")],
    ]
    head = world.ledger.head()

    outcomes = _submit_in_threads(writer, requests)

    assert [len(group) for group in writer.groups] == [1, 3]
    assert isinstance(outcomes[2], BadSignature)
    stored = [outcomes[i] for i in (0, 1, 3)]
    assert [o[0].position for o in stored if isinstance(o, list)] == [head + 1, head + 2, head + 3]
    assert world.ledger.head() == head + 3
    assert (
        world.ledger.next_version(party_subject("fabrikam-cmo"))[0] == requests[2][0][0]["version"]
    ), "the refused request stored nothing"


def test_a_request_refused_midway_leaves_nothing_the_next_request_is_checked_on(
    world: World,
) -> None:
    writer = _Recording(world.ledger)
    actor = world["contoso-cmo"]
    first = _next_key_added(world, "contoso-cmo")
    version = first[0]["version"]
    chained = _forged(_key_added(actor, version + 1, event_hash(*first)))
    # Signed against the stored log: valid only if the refused request left no trace.
    alone = _key_added(actor, version, first[0]["prev"])
    requests = [[_next_key_added(world, "northwind-bio")], [first, chained], [alone]]

    outcomes = _submit_in_threads(writer, requests)

    assert [len(group) for group in writer.groups] == [1, 2]
    assert isinstance(outcomes[1], BadSignature)
    assert outcomes[1].field == "envelopes[1].signature"
    accepted = outcomes[2]
    assert isinstance(accepted, list) and accepted[0].version == version


def test_a_failed_transaction_acknowledges_none_of_its_requests(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = _Recording(world.ledger)
    requests = [[_next_key_added(world, party)] for party in ("northwind-bio", "contoso-cmo")]
    requests.append([_next_key_added(world, "fabrikam-cmo")])
    head = world.ledger.head()
    original = world.ledger.save
    calls: list[int] = []

    def failing_save(*events: Any, **kwargs: Any) -> Any:
        calls.append(len(events))
        if len(calls) == 2:  # the shared transaction of the two waiting requests
            raise Unavailable("the database went away")
        return original(*events, **kwargs)

    monkeypatch.setattr(world.ledger, "save", failing_save)

    outcomes = _submit_in_threads(writer, requests)

    assert calls == [1, 2]
    assert isinstance(outcomes[0], list)
    assert isinstance(outcomes[1], Unavailable) and isinstance(outcomes[2], Unavailable)
    assert world.ledger.head() == head + 1, "nothing of the failed transaction is stored"
    again = writer.append(*_next_key_added(world, "contoso-cmo"))
    assert again.position == head + 2, "the ledger's state is the stored log's"


def test_a_crash_mid_transaction_stores_none_and_acknowledges_none(
    world: World, database_url: str, tmp_path: Path
) -> None:
    requests = [_next_key_added(world, p) for p in ("northwind-bio", "contoso-cmo", "helios-tx")]
    head = world.ledger.head()
    file = tmp_path / "requests.json"
    file.write_text(json.dumps([list(pair) for pair in requests]))
    command = [sys.executable, "-m", "tests.support.group_commit_child", database_url, str(file)]
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    try:
        said = child.stdout.readline()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        rest, _ = child.communicate(timeout=30)
    assert said == "inserted 3\n", "the three requests shared one transaction"
    assert "acknowledged" not in rest
    assert child.returncode == -signal.SIGKILL
    assert world.ledger.head() == head, "the killed transaction stored nothing"
    # The same envelopes are accepted now: nothing of them was stored. (PostgreSQL's
    # sequence may have moved past the positions the killed transaction took.)
    stored = [world.ledger.append(*pair).position for pair in requests]
    assert stored == sorted(stored) and stored[0] > head


def test_a_version_another_writer_stored_first_fails_its_request_only(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = world.ledger
    ledger.append(*_next_key_added(world, "contoso-cmo"))  # the party is cached, current
    stale = _next_key_added(world, "contoso-cmo")
    valid = _next_key_added(world, "northwind-bio")
    other = Ledger.open(ledger.settings)  # another process stores that version first
    try:
        other.append(*_key_added(world["contoso-cmo"], stale[0]["version"], stale[0]["prev"]))
    finally:
        other.close()
    # As if the other writer committed just after this one read the log's tail: only the
    # database's uniqueness can tell, when the shared transaction inserts.
    monkeypatch.setattr(ledger._aggregates, "catch_up", lambda *args: None)
    alone: list[int] = []
    original = ledger._append_each

    def append_each(*args: Any) -> Any:
        alone.append(len(args[2]))
        return original(*args)

    monkeypatch.setattr(ledger, "_append_each", append_each)

    outcomes = ledger.append_group([([stale], None), ([valid], None)])

    assert alone == [2], "the shared transaction was refused; each request went alone"
    assert isinstance(outcomes[0], VersionConflict)
    assert isinstance(outcomes[1], list)
    assert outcomes[1][0].version == valid[0]["version"]
