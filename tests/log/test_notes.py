"""C2SP signed notes, checkpoints, cosignatures and tlog-proofs."""

from __future__ import annotations

import base64
import hashlib

import pytest
from nacl.signing import SigningKey, VerifyKey

from ledger.log.notes import (
    Checkpoint,
    NoteError,
    NoteSignature,
    TlogProof,
    add_signature_lines,
    cosign,
    cosignature_message,
    cosignature_timestamp,
    cosigner_key_id,
    cosigner_vkey,
    format_checkpoint,
    format_proof,
    note_key_id,
    parse_checkpoint,
    parse_cosigner_vkey,
    parse_note,
    parse_proof,
    parse_vkey,
    sign_note,
    verify_cosignature,
    verify_note,
    verify_note_cosignatures,
    vkey,
)

EM_DASH = "\u2014"

# golang.org/x/mod/sumdb/note example: the signer key "PRIVATE+KEY+PeterNeumann+c74f20a3+..."
# holds 0x01 || this seed.
GO_SEED_B64 = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIGNATURE = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)
GO_NOTE = f"{GO_TEXT}\n{EM_DASH} PeterNeumann {GO_SIGNATURE}\n"

# transparency-dev/formats note tests: a type-0x04 cosigner key and a type-0x01 key whose
# base64 contains '+'.
REMORA_COSIGNER_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
PLUS_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"

# c2sp.org/tlog-cosignature example: a checkpoint, its log signature and one cosignature.
SPEC_COSIGNED_CHECKPOINT = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    f"{EM_DASH} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URY"
    "N7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    f"{EM_DASH} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZC"
    "B9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)

ORIGIN = "ledger.test/cmo"
ROOT = hashlib.sha256(b"some root").digest()
LOG_KEY = SigningKey(hashlib.sha256(b"log key seed").digest())
OTHER_KEY = SigningKey(hashlib.sha256(b"other key seed").digest())
WITNESS_KEY = SigningKey(hashlib.sha256(b"witness key seed").digest())
WITNESS = "witness.test/w1"


def go_signing_key() -> SigningKey:
    return SigningKey(base64.b64decode(GO_SEED_B64)[1:])


def signed_checkpoint(size: int = 42, key: SigningKey = LOG_KEY, name: str = ORIGIN) -> str:
    return sign_note(format_checkpoint(ORIGIN, size, ROOT), name, key)


def replace_last_line(note: str, line: str) -> str:
    body, _, _ = note[:-1].rpartition("\n")
    return f"{body}\n{line}\n"


# ------------------------------------------------------------------------ known answers


def test_go_example_key_id_and_verifier_key_are_reproduced() -> None:
    key = go_signing_key().verify_key
    assert note_key_id("PeterNeumann", key).hex() == "c74f20a3"
    assert vkey("PeterNeumann", key) == GO_VKEY


def test_go_example_note_is_signed_byte_for_byte() -> None:
    assert sign_note(GO_TEXT, "PeterNeumann", go_signing_key()) == GO_NOTE


def test_go_example_note_verifies_with_its_published_verifier_key() -> None:
    name, _, key = parse_vkey(GO_VKEY)
    assert verify_note(GO_NOTE, [(name, key)]) == GO_TEXT


def test_verifier_key_whose_base64_contains_a_plus_parses() -> None:
    name, key_id, key = parse_vkey(PLUS_VKEY)
    assert (name, key_id.hex()) == ("TEST", "7997405c")
    assert vkey(name, key) == PLUS_VKEY


def test_published_cosigner_verifier_key_parses_with_type_0x04() -> None:
    name, key_id, key = parse_cosigner_vkey(REMORA_COSIGNER_VKEY)
    assert (name, key_id.hex()) == ("remora.n621.de", "da77ade7")
    assert cosigner_key_id(name, key) == key_id
    assert cosigner_vkey(name, key) == REMORA_COSIGNER_VKEY


def test_cosigner_verifier_key_is_refused_as_a_note_verifier_key() -> None:
    with pytest.raises(ValueError, match="must be 0x01"):
        parse_vkey(REMORA_COSIGNER_VKEY)
    with pytest.raises(ValueError, match="must be 0x04"):
        parse_cosigner_vkey(GO_VKEY)


def test_spec_cosignature_example_parses_and_carries_its_timestamp() -> None:
    body, signatures = parse_note(SPEC_COSIGNED_CHECKPOINT)
    checkpoint = parse_checkpoint(body)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    assert [s.name for s in signatures] == ["example.com/behind-the-sofa", "witness.example.com/w1"]
    assert cosignature_timestamp(signatures[1]) == 1679315147


def test_transparency_dev_cosignature_timestamp_is_read_big_endian() -> None:
    payload = (
        "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOwor"
        "DcFiEBYJXORmnFBOBA=="
    )
    _, signatures = parse_note(f"x\n\n{EM_DASH} w {payload}\n")
    assert cosignature_timestamp(signatures[0]) == 1727964367


# ------------------------------------------------------------------------ verifier keys


def test_verifier_key_round_trips() -> None:
    text = vkey(ORIGIN, LOG_KEY.verify_key)
    name, key_id, key = parse_vkey(text)
    assert (name, key, key_id) == (ORIGIN, LOG_KEY.verify_key, note_key_id(ORIGIN, key))
    assert text.split("+")[1] == key_id.hex()


def test_note_key_id_is_sha256_of_name_newline_0x01_and_public_key() -> None:
    raw = bytes(LOG_KEY.verify_key)
    expected = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw).digest()[:4]
    assert note_key_id(ORIGIN, LOG_KEY.verify_key) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("PeterNeumann+c74f20a3", "must have the form"),
        ("PeterNeumann", "must have the form"),
        ("PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 hex digits"),
        ("PeterNeumann+c74f20ag+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 hex digits"),
        ("PeterNeumann+00000000+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("PeterNeumanN+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T", "base64"),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW!", "base64"),
        ("PeterNeumann+c74f20a3+AnBjMSM=", "0x01 and a 32-byte"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "key name"),
        ("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "key name"),
    ],
)
def test_bad_verifier_key_is_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_vkey(text)


@pytest.mark.parametrize("name", ["", "has space", "has+plus", "tab\there", "nbsp\u00a0here"])
def test_key_names_with_spaces_or_plus_are_refused(name: str) -> None:
    with pytest.raises(NoteError, match="key name"):
        note_key_id(name, LOG_KEY.verify_key)


# ------------------------------------------------------------------------ signed notes


def test_signature_line_is_em_dash_space_name_space_base64_of_key_id_and_signature() -> None:
    note = sign_note("hello\n", "example.com/k", LOG_KEY)
    body, _, line = note.partition("\n\n")
    assert body + "\n" == "hello\n"
    assert line.startswith("\u2014 example.com/k ")
    raw = base64.b64decode(line.split(" ")[2])
    assert raw[:4] == note_key_id("example.com/k", LOG_KEY.verify_key)
    assert len(raw) == 4 + 64


def test_checkpoint_signature_verifies_with_plain_nacl_over_the_note_text() -> None:
    note = signed_checkpoint()
    text, signature_block = note.rsplit("\n\n", 1)
    text += "\n"
    dash_and_space, name, encoded = signature_block.rstrip("\n").split(" ")
    assert dash_and_space == "\u2014"
    assert name == ORIGIN
    raw = base64.b64decode(encoded, validate=True)
    public = bytes(LOG_KEY.verify_key)
    assert raw[:4] == hashlib.sha256(name.encode() + b"\n" + b"\x01" + public).digest()[:4]
    VerifyKey(public).verify(text.encode("utf-8"), raw[4:])
    assert text == f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\n"


def test_parse_note_splits_at_the_last_blank_line() -> None:
    body = "first\n\nsecond paragraph\n"
    body_out, signatures = parse_note(sign_note(body, "k", LOG_KEY))
    assert body_out == body
    assert signatures == [
        NoteSignature("k", note_key_id("k", LOG_KEY.verify_key), signatures[0].signature)
    ]


def test_note_verifies_with_any_one_known_key_and_ignores_unknown_signatures() -> None:
    note = signed_checkpoint()
    body = parse_note(note)[0]
    other_line = sign_note(body, "other", OTHER_KEY).rpartition("\n\n")[2]
    garbage_line = f"{EM_DASH} unknown {base64.b64encode(bytes(68)).decode()}"
    note = add_signature_lines(note, [other_line, garbage_line])
    assert len(parse_note(note)[1]) == 3
    assert verify_note(note, [(ORIGIN, LOG_KEY.verify_key)]) == body
    assert verify_note(note, [("other", OTHER_KEY.verify_key)]) == body
    both = [(ORIGIN, LOG_KEY.verify_key), ("other", OTHER_KEY.verify_key)]
    assert verify_note(note, both) == body


def test_signature_by_a_known_name_with_an_unknown_key_id_is_ignored() -> None:
    impostor = signed_checkpoint(key=OTHER_KEY)
    with pytest.raises(NoteError, match="no signature by a known key"):
        verify_note(impostor, [(ORIGIN, LOG_KEY.verify_key)])


def test_note_without_a_known_signature_is_rejected() -> None:
    with pytest.raises(NoteError, match=r"no signature by a known key \(nobody\)"):
        verify_note(signed_checkpoint(), [])


def test_note_with_a_tampered_text_is_rejected() -> None:
    tampered = signed_checkpoint().replace("\n42\n", "\n43\n")
    with pytest.raises(NoteError, match="does not verify"):
        verify_note(tampered, [(ORIGIN, LOG_KEY.verify_key)])


def test_failing_signature_by_a_known_key_rejects_the_whole_note() -> None:
    good = signed_checkpoint()
    _, signatures = parse_note(good)
    bad_sig = bytes([signatures[0].signature[0] ^ 1]) + signatures[0].signature[1:]
    bad_line = f"{EM_DASH} {ORIGIN} {base64.b64encode(signatures[0].key_id + bad_sig).decode()}"
    note = add_signature_lines(good, [bad_line])
    with pytest.raises(NoteError, match="does not verify"):
        verify_note(note, [(ORIGIN, LOG_KEY.verify_key)])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no blank line\n— k AAAAAAA=\n", "no blank line"),
        ("text\n\n", "must end with a signature line"),
        ("text\n\n— k AAAAAAA=", "must end with a signature line"),
        ("text\n\n- k AAAAAAA=\n", "em dash"),
        ("text\n\n—k AAAAAAA=\n", "em dash"),
        ("text\n\n— k\n", "signature line must be"),
        ("text\n\n— k AAAA\n", "too short"),
        ("text\n\n— k AAAAAAA\n", "base64"),
        ("text\n\n— k+x AAAAAAA=\n", "key name"),
        ("te\x01xt\n\n— k AAAAAAA=\n", "control character"),
        ("text\r\n\n— k AAAAAAA=\n", "control character"),
        ("bad \ud800\n\n— k AAAAAAA=\n", "UTF-8"),
        ("text\n\n" + "— k AAAAAAA=\n" * 101, "more than 100 signatures"),
    ],
)
def test_malformed_notes_are_refused(text: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        parse_note(text)


def test_sign_note_refuses_text_without_final_newline() -> None:
    with pytest.raises(NoteError, match="end with a newline"):
        sign_note("no newline", ORIGIN, LOG_KEY)


def test_note_errors_are_value_errors() -> None:
    assert issubclass(NoteError, ValueError)


# ------------------------------------------------------------------------- checkpoints


def test_checkpoint_text_is_origin_size_and_base64_root() -> None:
    body = format_checkpoint(ORIGIN, 42, ROOT)
    assert body == f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\n"
    assert parse_checkpoint(body) == Checkpoint(ORIGIN, 42, ROOT, ())


def test_checkpoint_with_extension_lines_round_trips() -> None:
    checkpoint = Checkpoint(ORIGIN, 0, ROOT, ("ext one", "ext two"))
    assert checkpoint.body.endswith("\next one\next two\n")
    assert parse_checkpoint(checkpoint.body) == checkpoint


def test_checkpoint_is_frozen() -> None:
    checkpoint = parse_checkpoint(format_checkpoint(ORIGIN, 1, ROOT))
    with pytest.raises(AttributeError):
        checkpoint.size = 2  # type: ignore[misc]


ROOT_B64 = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (f"{ORIGIN}\n42\n{ROOT_B64}", "end with a newline"),
        (f"{ORIGIN}\n42\n", "needs an origin"),
        (f"\n42\n{ROOT_B64}\n", "origin is empty"),
        (f"{ORIGIN}\n042\n{ROOT_B64}\n", "leading zeroes"),
        (f"{ORIGIN}\n-1\n{ROOT_B64}\n", "decimal"),
        (f"{ORIGIN}\n+1\n{ROOT_B64}\n", "decimal"),
        (f"{ORIGIN}\n 1\n{ROOT_B64}\n", "decimal"),
        (f"{ORIGIN}\n\u0663\n{ROOT_B64}\n", "decimal"),
        (f"{ORIGIN}\n18446744073709551616\n{ROOT_B64}\n", "too large"),
        (f"{ORIGIN}\n42\n{base64.b64encode(ROOT[:31]).decode()}\n", "31 bytes"),
        (f"{ORIGIN}\n42\nnot base64!\n", "base64"),
        (f"{ORIGIN}\n42\n{ROOT_B64}\n\n", "extension lines must not be empty"),
    ],
)
def test_malformed_checkpoints_are_refused(body: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        parse_checkpoint(body)


def test_format_checkpoint_refuses_a_multi_line_origin_or_short_root() -> None:
    with pytest.raises(NoteError, match="origin"):
        format_checkpoint("a\nb", 1, ROOT)
    with pytest.raises(NoteError, match="root hash"):
        format_checkpoint(ORIGIN, 1, ROOT[:16])


# ------------------------------------------------------------------------ cosignatures


def test_cosignature_round_trips_and_returns_its_timestamp() -> None:
    body = format_checkpoint(ORIGIN, 42, ROOT)
    line = cosign(body, WITNESS, WITNESS_KEY, 1_700_000_000)
    assert line.startswith(f"{EM_DASH} {WITNESS} ") and line.endswith("\n")
    assert verify_cosignature(line, body, WITNESS, WITNESS_KEY.verify_key) == 1_700_000_000


def test_cosignature_payload_is_key_id_big_endian_timestamp_and_signature() -> None:
    body = format_checkpoint(ORIGIN, 42, ROOT)
    line = cosign(body, WITNESS, WITNESS_KEY, 1_679_315_147)
    raw = base64.b64decode(line.rstrip("\n").split(" ")[2])
    public = bytes(WITNESS_KEY.verify_key)
    assert len(raw) == 4 + 8 + 64
    assert raw[:4] == hashlib.sha256(WITNESS.encode() + b"\n\x04" + public).digest()[:4]
    assert raw[4:12] == (1_679_315_147).to_bytes(8, "big")
    message = f"cosignature/v1\ntime 1679315147\n{body}".encode()
    assert cosignature_message(body, 1_679_315_147) == message
    VerifyKey(public).verify(message, raw[12:])


def test_cosignature_over_another_checkpoint_fails() -> None:
    line = cosign(format_checkpoint(ORIGIN, 42, ROOT), WITNESS, WITNESS_KEY, 5)
    with pytest.raises(NoteError, match="does not verify"):
        verify_cosignature(
            line, format_checkpoint(ORIGIN, 43, ROOT), WITNESS, WITNESS_KEY.verify_key
        )


def test_cosignature_with_an_altered_timestamp_fails() -> None:
    body = format_checkpoint(ORIGIN, 42, ROOT)
    raw = bytearray(base64.b64decode(cosign(body, WITNESS, WITNESS_KEY, 5).split(" ")[2]))
    raw[11] ^= 1
    line = f"{EM_DASH} {WITNESS} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(NoteError, match="does not verify"):
        verify_cosignature(line, body, WITNESS, WITNESS_KEY.verify_key)


def test_cosignature_by_another_key_or_name_fails() -> None:
    body = format_checkpoint(ORIGIN, 42, ROOT)
    line = cosign(body, WITNESS, WITNESS_KEY, 5)
    with pytest.raises(NoteError, match="key ID does not match"):
        verify_cosignature(line, body, WITNESS, OTHER_KEY.verify_key)
    with pytest.raises(NoteError, match=r"expected 'witness\.test/w2'"):
        verify_cosignature(line, body, "witness.test/w2", WITNESS_KEY.verify_key)


def test_plain_note_signature_is_not_accepted_as_a_cosignature() -> None:
    body = format_checkpoint(ORIGIN, 42, ROOT)
    note_line = sign_note(body, WITNESS, WITNESS_KEY).split("\n\n")[1]
    with pytest.raises(NoteError, match="key ID does not match"):
        verify_cosignature(note_line, body, WITNESS, WITNESS_KEY.verify_key)


def test_cosignatures_are_ignored_by_log_signature_verification() -> None:
    note = signed_checkpoint()
    body = parse_note(note)[0]
    cosigned = add_signature_lines(note, [cosign(body, ORIGIN, LOG_KEY, 5)])
    assert verify_note(cosigned, [(ORIGIN, LOG_KEY.verify_key)]) == body


def test_cosigned_checkpoint_reports_each_known_cosigner_timestamp() -> None:
    note = signed_checkpoint()
    body = parse_note(note)[0]
    lines = [cosign(body, WITNESS, WITNESS_KEY, 7), cosign(body, "w2", OTHER_KEY, 9)]
    cosigned = add_signature_lines(note, lines)
    cosigners = [(WITNESS, WITNESS_KEY.verify_key), ("w3", LOG_KEY.verify_key)]
    assert verify_note_cosignatures(cosigned, cosigners) == {WITNESS: 7}


@pytest.mark.parametrize("timestamp", [-1, 2**63])
def test_cosignature_timestamp_out_of_range_is_refused(timestamp: int) -> None:
    with pytest.raises(NoteError, match="out of range"):
        cosign(format_checkpoint(ORIGIN, 1, ROOT), WITNESS, WITNESS_KEY, timestamp)


# -------------------------------------------------------------------------- tlog-proof


def test_tlog_proof_text_has_header_extra_index_hashes_blank_line_and_checkpoint() -> None:
    note = signed_checkpoint()
    hashes = [bytes([1]) * 32, bytes([2]) * 32]
    text = format_proof(7, hashes, note, extra=b"context")
    assert text == (
        "c2sp.org/tlog-proof@v1\n"
        "extra Y29udGV4dA==\n"
        "index 7\n"
        "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n"
        "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=\n"
        "\n" + note
    )
    assert parse_proof(text) == TlogProof(7, tuple(hashes), note, b"context")


def test_tlog_proof_without_extra_or_hashes_round_trips() -> None:
    note = signed_checkpoint(size=1)
    text = format_proof(0, [], note)
    assert text == "c2sp.org/tlog-proof@v1\nindex 0\n\n" + note
    assert parse_proof(text) == TlogProof(0, (), note, None)


def test_tlog_proof_keeps_cosignatures_on_the_checkpoint_verbatim() -> None:
    note = signed_checkpoint()
    cosigned = add_signature_lines(note, [cosign(parse_note(note)[0], WITNESS, WITNESS_KEY, 1)])
    assert parse_proof(format_proof(3, [ROOT], cosigned)).checkpoint_note == cosigned


HEADER = "c2sp.org/tlog-proof@v1\n"
HASH_LINE = base64.b64encode(ROOT).decode() + "\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("c2sp.org/tlog-proof@v2\nindex 0\n\n", "must start with"),
        ("c2sp.org/tlog-proof@v1", "ends before its header"),
        (HEADER + "index 0\n", "ends before its blank line"),
        (HEADER + "idx 0\n\n", "no 'index <n>' line"),
        (HEADER + "index 01\n\n", "leading zeroes"),
        (HEADER + "index -1\n\n", "decimal"),
        (HEADER + "extra !!\nindex 0\n\n", "extra data is not valid base64"),
        (HEADER + "index 0\nAAAA\n\n", "3 bytes, expected 32"),
        (HEADER + "index 0\n" + HASH_LINE * 65 + "\n", "more than 64 proof hashes"),
        (HEADER + "index 0\n" + HASH_LINE + "\nno signatures\n", "no blank line"),
    ],
)
def test_malformed_tlog_proofs_are_refused(text: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        parse_proof(text)


def test_format_proof_refuses_hashes_of_the_wrong_size() -> None:
    with pytest.raises(NoteError, match="32 bytes"):
        format_proof(0, [b"short"], signed_checkpoint())
