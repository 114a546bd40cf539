"""A large batch's signatures are checked ahead by worker processes, and the checks in order
still decide: a forged signature, a key the batch itself adds or revokes, and workers that
fail are each judged exactly as without workers."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest
from nacl.signing import SigningKey

from ledger.domain.subjects import batch_subject, party_subject
from ledger.errors import BadSignature, KeyRevoked
from ledger.keys import encode_public_key, key_id
from ledger.log.envelope import Envelope, event_hash
from ledger.log.signature_workers import SIGNATURES_AHEAD_FROM, Checks, SignatureWorkers
from tests.support.agreements import propose_and_sign
from tests.support.batches import data_payload, discrete_records, register_batch
from tests.support.workers import kill_workers
from tests.support.world import Actor, World

CMO = "contoso-cmo"
LARGE = SIGNATURES_AHEAD_FROM + 6
Item = tuple[dict[str, Any], str]


def _chain(world: World, signer: Actor, subject: Any, count: int) -> list[Item]:
    """``count`` envelopes continuing ``subject`` from its stored head."""
    version, prev = world.ledger.next_version(subject)
    chain: list[Item] = []
    for index in range(count):
        payload = data_payload("discrete", discrete_records(f"W{version}-{index}"))
        envelope = signer.envelope(
            "DataSubmitted", subject, payload, version=version, prev=prev, meaning="submitted"
        )
        chain.append((envelope, signer.sign(envelope)))
        version, prev = version + 1, event_hash(*chain[-1])
    return chain


def _key_added(world: World, key: SigningKey) -> Item:
    """The CMO's ``KeyAdded`` of ``key``, signed by its key in force."""
    payload = {"public_key": encode_public_key(key), "purpose": "party"}
    return world[CMO].prepare(
        world.ledger, "KeyAdded", party_subject(CMO), payload, meaning="authored"
    )


@pytest.fixture()
def batch(world: World) -> Any:
    register_batch(world, propose_and_sign(world), "B-AHEAD")
    return batch_subject("B-AHEAD")


@pytest.fixture()
def inline(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the signatures verified in process."""
    calls: list[int] = []
    verify = Envelope.verify

    def counted(self: Envelope, *args: Any) -> None:
        calls.append(self.version)
        verify(self, *args)

    monkeypatch.setattr(Envelope, "verify", counted)
    return calls


def test_a_large_batch_s_signatures_are_verified_by_the_workers(
    world: World, batch: Any, inline: list[int]
) -> None:
    appended = world.ledger.append_many(_chain(world, world[CMO], batch, LARGE))
    assert len(appended) == LARGE
    assert inline == []  # none verified twice


def test_a_forged_signature_in_a_large_batch_is_refused_and_nothing_is_stored(
    world: World, batch: Any
) -> None:
    chain = _chain(world, world[CMO], batch, LARGE)
    forged = Actor(CMO, SigningKey.generate()).sign(chain[40][0])
    chain[40] = (chain[40][0], forged)
    head = world.ledger.head()
    with pytest.raises(BadSignature) as refused:
        world.ledger.append_many(chain)
    assert refused.value.field == "envelopes[40].signature"
    assert world.ledger.head() == head


def test_a_key_the_batch_adds_signs_the_rest_of_it(
    world: World, batch: Any, inline: list[int]
) -> None:
    new = SigningKey.generate()
    added = _key_added(world, new)
    rest = _chain(world, Actor(CMO, new), batch, LARGE)
    appended = world.ledger.append_many([added, *rest])
    assert len(appended) == LARGE + 1
    # The key added was unknown ahead: what it signed was verified in order.
    assert inline == [envelope["version"] for envelope, _ in rest]


def test_a_key_the_batch_revokes_cannot_sign_after_its_revocation(world: World, batch: Any) -> None:
    spare = SigningKey.generate()
    world.ledger.append(*_key_added(world, spare))
    signed_by_spare = _chain(world, Actor(CMO, spare), batch, LARGE)
    revoked = world[CMO].prepare(
        world.ledger,
        "KeyRevoked",
        party_subject(CMO),
        {"key": key_id(spare.verify_key)},
        meaning="revoked",
        reason="laptop lost",
    )
    head = world.ledger.head()
    # The workers verify every signature as the key stood before the batch: good ones.
    with pytest.raises(KeyRevoked) as refused:
        world.ledger.append_many([revoked, *signed_by_spare])
    assert refused.value.field == "envelopes[1].key"
    assert world.ledger.head() == head


def test_signatures_the_workers_fail_to_check_are_verified_in_process(
    world: World, batch: Any, inline: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    def lost(self: SignatureWorkers, indexes: Any, items: Any) -> Checks:
        checks, part = Checks(), Future[list[bool]]()
        part.set_exception(RuntimeError("a worker process died"))
        checks.add(indexes, items, part)
        return checks

    monkeypatch.setattr(SignatureWorkers, "check", lost)
    chain = _chain(world, world[CMO], batch, LARGE)
    assert len(world.ledger.append_many(chain)) == LARGE
    assert len(inline) == LARGE


def test_a_worker_s_verdict_counts_only_for_the_bytes_and_key_it_checked() -> None:
    key = SigningKey.generate()
    message = b"signed bytes"
    signature = key.sign(message).signature
    workers = SignatureWorkers(workers=2)
    try:
        checks = workers.check([0, 1], [(bytes(key.verify_key), message, signature)] * 2)
        assert checks.verified(0, bytes(key.verify_key), message, signature)
        assert not checks.verified(1, bytes(key.verify_key), b"other bytes", signature)
        other = bytes(SigningKey.generate().verify_key)
        assert not checks.verified(1, other, message, signature)
        assert not checks.verified(2, bytes(key.verify_key), message, signature)
        forged = workers.check([0], [(other, message, signature)])
        assert not forged.verified(0, other, message, signature)
    finally:
        workers.close()


def test_workers_lost_between_batches_leave_the_next_to_the_process_then_start_again() -> None:
    key = SigningKey.generate()
    item = (bytes(key.verify_key), b"signed bytes", key.sign(b"signed bytes").signature)
    workers = SignatureWorkers(workers=2)
    try:
        assert workers.check([0], [item]).verified(0, *item)
        assert workers._pool is not None
        kill_workers(workers._pool)
        assert not workers.check([0], [item]).verified(0, *item)  # checked in process then
        assert workers.check([0], [item]).verified(0, *item)  # new workers
    finally:
        workers.close()
