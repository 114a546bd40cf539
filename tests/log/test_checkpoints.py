"""The notary's checkpoints and the witnesses' cosignatures, over a real ledger."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path

import pytest
import sqlalchemy as sa
from nacl.signing import SigningKey, VerifyKey

from clients.offline import verify_checkpoint, verify_consistency_between, verify_cosigners
from clients.witness import Witness, WitnessRefused
from ledger.application import Ledger
from ledger.errors import BadSignature, ConfigurationError, NotFound, UnknownSigner
from ledger.log.checkpoints import InconsistentTree, Notary
from ledger.log.merkle import leaf_hash, root_of
from ledger.log.notes import cosign, format_checkpoint, parse_checkpoint, parse_note, sign_note
from ledger.log.tree import MerkleTree
from tests.support.world import ORIGIN, Actor, World


def add_key(world: World, party: str, seed: str = "second") -> None:
    key = SigningKey(hashlib.sha256(f"{party} {seed} key".encode()).digest())
    world.add_key(party, key)


def reference_root(world: World) -> bytes:
    return root_of([leaf_hash(r.event.leaf_bytes()) for r in world.ledger.iter_log()])


@pytest.fixture
def signer(world: World) -> Notary:
    """The notary's checkpoint signer (``notary`` is the notary's party actor)."""
    return Notary(world.ledger, world.notary.key)


def test_a_checkpoint_covers_the_whole_log_and_verifies_with_the_vkey(
    world: World, signer: Notary
) -> None:
    signed = signer.checkpoint_now()
    checkpoint = verify_checkpoint(signed.text, signer.vkey(), origin=ORIGIN)
    assert (checkpoint.size, checkpoint.root_hash) == (6, reference_root(world))
    assert (signed.size, signed.root) == (6, checkpoint.root_hash)


def test_a_real_checkpoint_verifies_with_plain_ed25519(world: World, signer: Notary) -> None:
    note = signer.checkpoint_now().note
    body, _, signature_line = note.rpartition("\n\n")
    body += "\n"
    name, encoded = signature_line.removeprefix("\u2014 ").split()
    raw = base64.b64decode(encoded)
    public_key = bytes(world.notary.key.verify_key)
    assert name == ORIGIN
    assert raw[:4] == hashlib.sha256(ORIGIN.encode() + b"\n\x01" + public_key).digest()[:4]
    VerifyKey(public_key).verify(body.encode(), raw[4:])
    assert body.split("\n")[:2] == [ORIGIN, "6"]


def test_the_vkey_is_the_c2sp_verifier_key_of_the_notary(world: World, signer: Notary) -> None:
    name, key_id, key = signer.vkey().split("+", 2)
    public_key = bytes(world.notary.key.verify_key)
    assert name == ORIGIN
    assert (
        bytes.fromhex(key_id)
        == hashlib.sha256(f"{ORIGIN}\n".encode() + b"\x01" + public_key).digest()[:4]
    )
    assert base64.b64decode(key) == b"\x01" + public_key


def test_only_the_ledgers_notary_key_signs(world: World) -> None:
    with pytest.raises(ConfigurationError):
        Notary(world.ledger, world["contoso-cmo"].key)


def test_every_checkpoint_is_kept_and_each_extends_the_last(world: World, signer: Notary) -> None:
    first = signer.checkpoint_now()
    assert signer.checkpoint_now() == first  # nothing new: nothing signed
    add_key(world, "contoso-cmo")
    second = signer.checkpoint_now()
    add_key(world, "helios-tx")
    add_key(world, "northwind-bio")
    third = signer.checkpoint_now()
    kept = list(signer.all())
    assert [c.size for c in kept] == [6, 7, 9]
    assert signer.latest() == third and signer.get(7) == second
    assert signer.covering(6) == second  # the first checkpoint with leaf 6 in it
    for old, new in pairwise(kept):
        proof = signer.consistency_proof(old.size, new.size)
        verify_consistency_between(old.checkpoint, new.checkpoint, proof)


def test_the_first_checkpoint_of_an_empty_ledger_is_the_empty_tree(
    ledger: Ledger, notary: Actor
) -> None:
    signed = Notary(ledger, notary.key).checkpoint_now()
    assert signed.size == 0
    assert signed.root == hashlib.sha256(b"").digest()


def test_the_notary_refuses_a_tree_that_does_not_extend_its_last_checkpoint(
    world: World, signer: Notary
) -> None:
    signed = signer.checkpoint_now()
    ledger = world.ledger
    # Someone edits an event and rebuilds the tree from the edited log.
    first = ledger.read(0, 1)[0].position
    with ledger.engine.begin() as conn:
        state = conn.execute(
            sa.text("SELECT state FROM ledger_events WHERE id = :p"), {"p": first}
        ).scalar_one()
        edited = bytes(state).replace(b"Northwind", b"Northwinx")
        conn.execute(
            sa.text("UPDATE ledger_events SET state = :s WHERE id = :p"), {"s": edited, "p": first}
        )
        for table in ("merkle_leaves", "merkle_nodes", "merkle_tracking"):
            conn.execute(sa.text(f"DELETE FROM {table}"))
    add_key(world, "contoso-cmo")
    with pytest.raises(InconsistentTree):
        signer.checkpoint_now()
    assert signer.latest() == signed


def test_the_background_thread_signs_soon_after_new_events(world: World, signer: Notary) -> None:
    signer.start(interval=0.05)
    try:
        add_key(world, "contoso-cmo")
        add_key(world, "fabrikam-cmo")
        deadline = time.monotonic() + 60
        while (latest := signer.latest()) is None or latest.size < 8:
            assert time.monotonic() < deadline, "no checkpoint of the new events"
            time.sleep(0.02)
    finally:
        signer.stop()
    assert signer.last_error is None
    assert signer.tick() is None  # everything is signed: nothing to do


def test_interval_defaults_to_the_setting(world: World, signer: Notary) -> None:
    assert signer.interval == world.ledger.settings.checkpoint_interval == 1.0


# ------------------------------------------------------------------- witnesses


def witness_of(world: World, party: str, tmp_path: Path, signer: Notary) -> Witness:
    return Witness(party, world[party].key, tmp_path / f"{party}.json", signer.vkey())


def cosign_latest(witness: Witness, signer: Notary) -> str:
    signed = signer.checkpoint_now()
    last = witness.last
    proof = [] if last is None else signer.consistency_proof(last.size, signed.size)
    line = witness.cosign(signed.text, proof)
    signer.add_cosignature(signed.size, witness.party_id, line)
    return line


def test_cosignatures_are_verified_stored_and_served_with_the_checkpoint(
    world: World, signer: Notary, tmp_path: Path
) -> None:
    sponsor = witness_of(world, "northwind-bio", tmp_path, signer)
    regulator = witness_of(world, "agency-inspectorate", tmp_path, signer)
    cosign_latest(sponsor, signer)
    add_key(world, "contoso-cmo")
    cosign_latest(sponsor, signer)
    cosign_latest(regulator, signer)
    latest = signer.latest()
    assert latest is not None and latest.size == 7
    assert {c.witness for c in latest.cosignatures} == {"northwind-bio", "agency-inspectorate"}
    stamps = verify_cosigners(latest.text, [sponsor.vkey(), regulator.vkey()])
    assert set(stamps) == {"northwind-bio", "agency-inspectorate"}
    assert len(signer.get(6).cosignatures) == 1  # type: ignore[union-attr]
    assert verify_checkpoint(latest.text, signer.vkey()).size == 7


def test_a_cosignature_must_be_by_a_key_of_the_party(
    world: World, signer: Notary, tmp_path: Path
) -> None:
    signed = signer.checkpoint_now()
    impostor = Witness("northwind-bio", world["helios-tx"].key, tmp_path / "w.json", signer.vkey())
    with pytest.raises(UnknownSigner):
        signer.add_cosignature(6, "northwind-bio", impostor.cosign(signed.text, []))
    other = parse_note(signed.note)[0].replace("\n6\n", "\n5\n")
    forged = cosign(other, "northwind-bio", world["northwind-bio"].key, int(time.time()))
    with pytest.raises(BadSignature):
        signer.add_cosignature(6, "northwind-bio", forged)
    with pytest.raises(UnknownSigner):
        signer.add_cosignature(6, "nobody-here", forged)
    with pytest.raises(NotFound):
        signer.add_cosignature(99, "northwind-bio", forged)
    assert signer.latest().cosignatures == ()  # type: ignore[union-attr]


def forked_checkpoint(world: World, keep: int, size: int) -> tuple[str, list[bytes]]:
    """A checkpoint signed with the notary's key over a tree that shares only ``keep``
    leaves with the real log, and a consistency proof that tries to pass it off."""
    tree = MerkleTree(world.ledger)
    leaves = [tree.leaf(index)[1] for index in range(keep)]
    leaves += [leaf_hash(f"forged event {i}".encode()) for i in range(size - keep)]
    body = format_checkpoint(ORIGIN, size, root_of(leaves))
    note = sign_note(body, ORIGIN, world.notary.key)
    real = tree.size()
    return note, [root_of(leaves[real:])] if real < size else []


def test_a_witness_refuses_a_checkpoint_of_a_forked_tree(
    world: World, signer: Notary, tmp_path: Path
) -> None:
    witness = witness_of(world, "agency-inspectorate", tmp_path, signer)
    cosign_latest(witness, signer)
    note, proof = forked_checkpoint(world, keep=4, size=8)
    with pytest.raises(WitnessRefused, match="not consistent"):
        witness.cosign(note, proof)
    assert witness.last is not None and witness.last.size == 6
    # The real log, grown, is still accepted.
    add_key(world, "contoso-cmo")
    add_key(world, "helios-tx")
    cosign_latest(witness, signer)
    assert witness.last.size == 8


def test_a_witness_refuses_rollbacks_and_foreign_signatures(
    world: World, signer: Notary, tmp_path: Path
) -> None:
    witness = witness_of(world, "contoso-cmo", tmp_path, signer)
    first = signer.checkpoint_now()
    add_key(world, "helios-tx")
    cosign_latest(witness, signer)
    with pytest.raises(WitnessRefused, match="smaller"):
        witness.cosign(first.text, [])
    stranger = sign_note(parse_note(first.note)[0], ORIGIN, SigningKey(b"\x07" * 32))
    with pytest.raises(WitnessRefused, match="signed by the log"):
        witness.cosign(stranger, [])
    assert parse_checkpoint(parse_note(signer.latest().note)[0]).size == 7  # type: ignore[union-attr]


def test_a_witness_needs_no_database_stack() -> None:
    code = (
        "import sys, clients.witness; "
        "heavy = {'sqlalchemy', 'eventsourcing', 'ledger.application'} & set(sys.modules); "
        "sys.exit(sorted(heavy) or 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
