"""Envelopes: canonical bytes and signatures (R4)."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from ledger.canonical import canonical_bytes, check_json_value
from ledger.errors import BadSignature, LimitExceeded, ValidationFailed
from ledger.keys import key_id
from ledger.log.envelope import ENVELOPE_DOMAIN, Envelope, sign_envelope

KEY = SigningKey(b"k" * 32)
OTHER = SigningKey(b"o" * 32)

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=20),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.text(st.characters(exclude_categories=("Cs",)), max_size=8), inner, max_size=4
        ),
    ),
    max_leaves=20,
)


def envelope(payload: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ledger": "ledger.test/cmo",
        "type": "DataSubmitted",
        "subject": str(uuid.UUID(int=7)),
        "version": 3,
        "prev": "ab" * 32,
        "payload": payload if payload is not None else {"value": "37.0", "unit": "Cel"},
        "signer": "contoso-cmo",
        "key": key_id(KEY.verify_key),
        "signed_at": "2026-03-03T09:15:00.000Z",
        "meaning": "submitted",
    }
    base.update(changes)
    return base


def _shuffled(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shuffled(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_shuffled(v) for v in value]
    return value


@given(json_value)
def test_canonical_bytes_do_not_depend_on_member_order(value: Any) -> None:
    assert canonical_bytes(value) == canonical_bytes(_shuffled(value))


@given(json_value)
def test_canonical_bytes_are_rfc8785_and_parse_back_to_the_same_value(value: Any) -> None:
    encoded = canonical_bytes(value)
    assert encoded == rfc8785.dumps(value)
    assert json.loads(encoded) == value


@given(
    st.dictionaries(st.text(max_size=5).filter(lambda s: s.isprintable()), json_value, max_size=5)
)
@settings(max_examples=50)
def test_signature_round_trips_for_any_payload(payload: dict[str, Any]) -> None:
    raw = envelope({"data": payload})
    check_json_value(raw, field="envelope")
    signature = sign_envelope(raw, KEY)
    Envelope.parse(raw).verify(KEY.verify_key, signature)


CHANGES: list[tuple[str, Any]] = [
    ("ledger", "ledger.other/cmo"),
    ("type", "DataCorrected"),
    ("subject", str(uuid.UUID(int=8))),
    ("version", 4),
    ("prev", "cd" * 32),
    ("payload", {"value": "37.1", "unit": "Cel"}),
    ("signer", "northwind-bio"),
    ("key", "0" * 32),
    ("signed_at", "2026-03-03T09:15:00.001Z"),
    ("meaning", "approved"),
    ("reason", "added after signing"),
]


@pytest.mark.parametrize(("field", "value"), CHANGES, ids=[c[0] for c in CHANGES])
def test_changing_any_single_field_breaks_the_signature(field: str, value: Any) -> None:
    raw = envelope()
    signature = sign_envelope(raw, KEY)
    tampered = copy.deepcopy(raw)
    tampered[field] = value
    with pytest.raises(BadSignature):
        Envelope.parse(tampered).verify(KEY.verify_key, signature)


def test_a_signature_moved_to_another_envelope_fails() -> None:
    first, second = envelope(), envelope(version=4)
    with pytest.raises(BadSignature):
        Envelope.parse(second).verify(KEY.verify_key, sign_envelope(first, KEY))


def test_a_signature_by_another_key_fails() -> None:
    raw = envelope()
    with pytest.raises(BadSignature):
        Envelope.parse(raw).verify(KEY.verify_key, sign_envelope(raw, OTHER))


def test_signed_bytes_are_domain_separated_canonical_json() -> None:
    raw = envelope()
    signed = Envelope.parse(raw).signing_bytes()
    assert signed == ENVELOPE_DOMAIN + rfc8785.dumps(raw)
    signature = base64.b64decode(sign_envelope(raw, KEY))
    KEY.verify_key.verify(b"cmo-ledger/envelope/v1\n" + rfc8785.dumps(raw), signature)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"version": 0}, "version"),
        ({"version": True}, "version"),
        ({"subject": "not-a-uuid"}, "subject"),
        ({"subject": str(uuid.UUID(int=0xABCDEF)).upper()}, "subject"),
        ({"prev": "xyz"}, "prev"),
        ({"payload": []}, "payload"),
        ({"signed_at": "2026-03-03T09:15:00"}, "signed_at"),
        ({"signed_at": "2026-03-03T09:15:00+02:00"}, "signed_at"),
        ({"key": "short"}, "key"),
        ({"extra": 1}, "extra"),
        ({"reason": ""}, "reason"),
        ({"payload": {"value": 37.5}}, "envelope.payload.value"),
        ({"payload": {"value": float("nan")}}, "envelope.payload.value"),
        ({"payload": {"value": 2**60}}, "envelope.payload.value"),
    ],
)
def test_malformed_envelopes_are_refused_naming_the_field(
    change: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        Envelope.parse(envelope(**change))
    assert caught.value.field == field
    assert caught.value.code == "VALIDATION_FAILED"


def test_a_missing_member_is_named() -> None:
    raw = envelope()
    del raw["meaning"]
    with pytest.raises(ValidationFailed) as caught:
        Envelope.parse(raw)
    assert caught.value.field == "meaning"


def test_absurdly_deep_payloads_are_refused() -> None:
    deep: Any = "x"
    for _ in range(40):
        deep = {"a": deep}
    with pytest.raises(LimitExceeded):
        Envelope.parse(envelope({"deep": deep}))


wide_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
wide_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1), wide_text),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(wide_text, inner, max_size=5)
    ),
    max_leaves=30,
)


@given(wide_value)
@settings(max_examples=300)
def test_the_fast_canonical_path_equals_rfc8785_including_astral_keys(value: Any) -> None:
    assert canonical_bytes(value) == rfc8785.dumps(value)


@pytest.mark.parametrize(
    "text", ["\u2028\u2029", "\x00\x1f\x7f", '"\\/', "\U0001f600", "\ud7ff\ue000\uffff"]
)
def test_escaping_matches_rfc8785_on_edge_characters(text: str) -> None:
    value = {text: text, "k": [text]}
    assert canonical_bytes(value) == rfc8785.dumps(value)
