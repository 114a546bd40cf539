"""The offline verifier: checkpoints, proofs and cosignatures checked from files alone."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from clients.offline import (
    EMPTY_ROOT,
    VerificationError,
    main,
    verify_checkpoint,
    verify_consistency_between,
    verify_cosigners,
    verify_inclusion_against_checkpoint,
    verify_proof_text,
)
from ledger.log.merkle import (
    complete_nodes_after_append,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_nodes,
)
from ledger.log.notes import (
    Checkpoint,
    add_signature_lines,
    cosign,
    cosigner_vkey,
    format_checkpoint,
    format_proof,
    sign_note,
    vkey,
)

REPO = Path(__file__).resolve().parents[2]
ORIGIN = "ledger.test/cmo"
LOG_KEY = SigningKey(hashlib.sha256(b"offline log key").digest())
OTHER_KEY = SigningKey(hashlib.sha256(b"offline other key").digest())
WITNESS_KEY = SigningKey(hashlib.sha256(b"offline witness key").digest())
LOG_VKEY = vkey(ORIGIN, LOG_KEY.verify_key)
WITNESS_VKEY = cosigner_vkey("witness.test/w1", WITNESS_KEY.verify_key)
ENTRIES = [b'{"event": %d}' % i for i in range(13)]
NODES = {
    (level, index): value
    for level, index, value in complete_nodes_after_append(0, [leaf_hash(e) for e in ENTRIES], {})
}


def checkpoint_note(size: int, key: SigningKey = LOG_KEY, origin: str = ORIGIN) -> str:
    body = format_checkpoint(origin, size, root_from_nodes(size, NODES))
    return sign_note(body, ORIGIN, key)


def checkpoint(size: int) -> Checkpoint:
    return Checkpoint(ORIGIN, size, root_from_nodes(size, NODES))


def proof_text(index: int, size: int, note: str | None = None) -> str:
    hashes = inclusion_proof(index, size, NODES)
    return format_proof(index, hashes, note or checkpoint_note(size))


# ------------------------------------------------------------------------- checkpoints


def test_signed_checkpoint_verifies_with_the_log_verifier_key() -> None:
    assert verify_checkpoint(checkpoint_note(13), LOG_VKEY) == checkpoint(13)


def test_checkpoint_signed_by_another_key_fails() -> None:
    with pytest.raises(VerificationError, match=r"checkpoint signature: .*no signature"):
        verify_checkpoint(checkpoint_note(13, key=OTHER_KEY), LOG_VKEY)


def test_checkpoint_with_a_tampered_size_fails() -> None:
    tampered = checkpoint_note(13).replace("\n13\n", "\n12\n")
    with pytest.raises(VerificationError, match="does not verify"):
        verify_checkpoint(tampered, LOG_VKEY)


def test_bad_verifier_key_text_fails_naming_the_key() -> None:
    with pytest.raises(VerificationError, match="log verifier key"):
        verify_checkpoint(checkpoint_note(13), "not a key")


def test_checkpoint_for_an_unexpected_origin_fails_when_the_origin_is_pinned() -> None:
    note = checkpoint_note(13, origin="elsewhere.test/log")
    assert verify_checkpoint(note, LOG_VKEY).origin == "elsewhere.test/log"
    with pytest.raises(VerificationError, match=r"expected 'ledger\.test/cmo'"):
        verify_checkpoint(note, LOG_VKEY, origin=ORIGIN)


def test_signed_note_that_is_not_a_checkpoint_fails() -> None:
    with pytest.raises(VerificationError, match="checkpoint text"):
        verify_checkpoint(sign_note("hello\n", ORIGIN, LOG_KEY), LOG_VKEY)


# --------------------------------------------------------------------------- inclusion


@pytest.mark.parametrize(("index", "size"), [(0, 1), (0, 13), (7, 13), (12, 13), (5, 8)])
def test_every_entry_is_proven_in_the_checkpoint(index: int, size: int) -> None:
    proof = inclusion_proof(index, size, NODES)
    verify_inclusion_against_checkpoint(ENTRIES[index], index, proof, checkpoint(size))


def test_other_leaf_bytes_fail_inclusion() -> None:
    proof = inclusion_proof(3, 13, NODES)
    with pytest.raises(VerificationError, match="inclusion proof of leaf 3 does not match"):
        verify_inclusion_against_checkpoint(ENTRIES[4], 3, proof, checkpoint(13))


def test_flipped_bit_in_inclusion_proof_fails() -> None:
    proof = inclusion_proof(3, 13, NODES)
    proof[1] = bytes([proof[1][0] ^ 1]) + proof[1][1:]
    with pytest.raises(VerificationError, match="inclusion proof"):
        verify_inclusion_against_checkpoint(ENTRIES[3], 3, proof, checkpoint(13))


# -------------------------------------------------------------------------- tlog-proof


def test_tlog_proof_text_verifies_for_its_entry() -> None:
    result = verify_proof_text(proof_text(6, 13), ENTRIES[6], LOG_VKEY, origin=ORIGIN)
    assert (result.index, result.checkpoint, result.extra) == (6, checkpoint(13), None)


def test_tlog_proof_for_another_entry_fails() -> None:
    with pytest.raises(VerificationError, match="inclusion proof of leaf 6"):
        verify_proof_text(proof_text(6, 13), ENTRIES[7], LOG_VKEY)


def test_tlog_proof_with_a_checkpoint_by_another_key_fails() -> None:
    text = proof_text(6, 13, checkpoint_note(13, key=OTHER_KEY))
    with pytest.raises(VerificationError, match="checkpoint signature"):
        verify_proof_text(text, ENTRIES[6], LOG_VKEY)


def test_garbled_tlog_proof_fails_as_a_tlog_proof() -> None:
    with pytest.raises(VerificationError, match="tlog-proof: "):
        verify_proof_text("c2sp.org/tlog-proof@v1\nnonsense\n", ENTRIES[0], LOG_VKEY)


def test_tlog_proof_returns_its_unauthenticated_extra_data() -> None:
    hashes = inclusion_proof(2, 13, NODES)
    text = format_proof(2, hashes, checkpoint_note(13), extra=b"hint")
    assert verify_proof_text(text, ENTRIES[2], LOG_VKEY).extra == b"hint"


# ------------------------------------------------------------------------- cosignatures


def cosigned_note(size: int) -> str:
    note = checkpoint_note(size)
    body = format_checkpoint(ORIGIN, size, root_from_nodes(size, NODES))
    return add_signature_lines(note, [cosign(body, "witness.test/w1", WITNESS_KEY, 1_700_000_000)])


def test_tlog_proof_with_a_required_cosignature_reports_its_time() -> None:
    text = proof_text(4, 13, cosigned_note(13))
    result = verify_proof_text(text, ENTRIES[4], LOG_VKEY, cosigner_vkeys=[WITNESS_VKEY])
    assert result.cosignatures == {"witness.test/w1": 1_700_000_000}


def test_missing_required_cosignature_fails_naming_the_cosigner() -> None:
    other_witness = cosigner_vkey("witness.test/w2", OTHER_KEY.verify_key)
    with pytest.raises(VerificationError, match=r"1 of 2 required .*missing: witness\.test/w2"):
        verify_cosigners(cosigned_note(13), [WITNESS_VKEY, other_witness])
    assert verify_cosigners(cosigned_note(13), [WITNESS_VKEY, other_witness], quorum=1) == {
        "witness.test/w1": 1_700_000_000
    }


def test_log_key_given_as_a_cosigner_key_fails() -> None:
    with pytest.raises(VerificationError, match="cosigner verifier key"):
        verify_cosigners(cosigned_note(13), [LOG_VKEY])


# -------------------------------------------------------------------------- consistency


@pytest.mark.parametrize(("m", "n"), [(1, 13), (6, 8), (8, 13), (12, 13), (13, 13)])
def test_older_checkpoint_is_a_prefix_of_the_newer_one(m: int, n: int) -> None:
    proof = consistency_proof(m, n, NODES)
    verify_consistency_between(checkpoint(m), checkpoint(n), proof)


def test_empty_checkpoint_is_a_prefix_of_every_checkpoint() -> None:
    verify_consistency_between(Checkpoint(ORIGIN, 0, EMPTY_ROOT), checkpoint(13), [])
    with pytest.raises(VerificationError, match="empty checkpoint"):
        verify_consistency_between(Checkpoint(ORIGIN, 0, EMPTY_ROOT), checkpoint(13), [EMPTY_ROOT])


def test_flipped_bit_in_consistency_proof_fails() -> None:
    proof = consistency_proof(6, 13, NODES)
    proof[0] = bytes([proof[0][0] ^ 0x80]) + proof[0][1:]
    with pytest.raises(VerificationError, match="from size 6 to size 13"):
        verify_consistency_between(checkpoint(6), checkpoint(13), proof)


def test_forked_checkpoint_fails_consistency() -> None:
    forked = Checkpoint(ORIGIN, 13, hashlib.sha256(b"fork").digest())
    with pytest.raises(VerificationError, match="does not verify"):
        verify_consistency_between(checkpoint(6), forked, consistency_proof(6, 13, NODES))


def test_checkpoints_of_different_logs_are_not_compared() -> None:
    other = Checkpoint("other.test/log", 13, checkpoint(13).root_hash)
    with pytest.raises(VerificationError, match="different logs"):
        verify_consistency_between(checkpoint(6), other, consistency_proof(6, 13, NODES))


def test_newer_checkpoint_cannot_be_smaller() -> None:
    with pytest.raises(VerificationError, match="exceeds new size"):
        verify_consistency_between(checkpoint(13), checkpoint(6), [])


# ------------------------------------------------------------------------------ command


def write_files(tmp_path: Path, proof: str, leaf: bytes) -> list[str]:
    (tmp_path / "entry.tlog-proof").write_text(proof, encoding="utf-8")
    (tmp_path / "entry.json").write_bytes(leaf)
    (tmp_path / "log.vkey").write_text(LOG_VKEY + "\n", encoding="utf-8")
    return [str(tmp_path / n) for n in ("entry.tlog-proof", "entry.json", "log.vkey")]


def test_command_accepts_a_valid_proof_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["proof", *write_files(tmp_path, proof_text(9, 13), ENTRIES[9])]) == 0
    assert "OK: leaf 9 is in ledger.test/cmo at size 13" in capsys.readouterr().out


def test_command_rejects_a_proof_for_other_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["proof", *write_files(tmp_path, proof_text(9, 13), b"forged")]) == 1
    assert "FAILED: inclusion proof of leaf 9" in capsys.readouterr().err


def test_command_verifies_a_checkpoint_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "checkpoint").write_text(checkpoint_note(13), encoding="utf-8")
    (tmp_path / "log.vkey").write_text(LOG_VKEY, encoding="utf-8")
    assert main(["checkpoint", str(tmp_path / "checkpoint"), str(tmp_path / "log.vkey")]) == 0
    assert "OK: checkpoint of ledger.test/cmo at size 13" in capsys.readouterr().out


def test_command_reports_an_unreadable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing")
    assert main(["checkpoint", missing, missing]) == 1
    assert "FAILED: cannot read" in capsys.readouterr().err


# ------------------------------------------------------------------------------ imports


def test_offline_verifier_imports_no_database_or_server_package() -> None:
    code = (
        "import sys\n"
        "import clients.offline\n"
        "heavy = ('sqlalchemy', 'eventsourcing', 'starlette', 'strawberry')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
