"""The append path encodes each envelope once and reads no more than it must, with the
same bytes, hashes and refusals as the reference definitions (``ledger.log.leaf``, the
field-by-field JSON check)."""

from __future__ import annotations

import copy
import math
import pickle
from datetime import timedelta
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import (
    MAX_DEPTH,
    CanonicalObject,
    _check_node,
    canonical_bytes,
    check_json_value,
)
from ledger.domain.subjects import batch_subject
from ledger.errors import LedgerError
from ledger.log import leaf
from ledger.log.envelope import Envelope, event_hash
from ledger.log.leaf import leaf_bytes
from ledger.timeutil import format_utc, now_utc
from tests.support.agreements import propose_and_sign
from tests.support.batches import data_payload, discrete_records, register_batch
from tests.support.statements import counted
from tests.support.world import World

CMO = "contoso-cmo"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),  # lone surrogates included
    st.tuples(st.integers()),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=6), inner, max_size=4),
    ),
    max_leaves=24,
)
valid_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
)
valid_values = st.recursive(
    valid_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.text(st.characters(exclude_categories=("Cs",)), max_size=6), inner, max_size=4
        ),
    ),
    max_leaves=24,
)


def _refusal(check: Any, value: Any) -> tuple[str, str | None] | None:
    try:
        check(value)
    except LedgerError as error:
        return error.code, error.field
    return None


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


@settings(max_examples=400, deadline=None)
@given(values)
def test_the_json_check_refuses_what_the_field_by_field_check_refuses(value: Any) -> None:
    quick = _refusal(lambda v: check_json_value(v, field="envelope"), value)
    exact = _refusal(lambda v: _check_node(v, field="envelope", depth=0), value)
    assert quick == exact


@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, MAX_DEPTH + 2])
def test_the_json_check_counts_nesting_as_the_field_by_field_check(depth: int) -> None:
    value = _nested(depth)
    quick = _refusal(lambda v: check_json_value(v, field="envelope"), value)
    exact = _refusal(lambda v: _check_node(v, field="envelope", depth=0), value)
    assert quick == exact
    assert (quick is None) == (depth <= MAX_DEPTH)


@pytest.mark.parametrize(
    "value",
    [
        {"n": 2**53},
        {"n": -(2**53)},
        {"f": 1.5},
        {"f": math.nan},
        {"k": ["\ud800"]},
        {"\udfff": 1},
        {"t": (1, 2)},
        {1: "x"},
    ],
)
def test_the_json_check_names_the_member_out_of_the_domain(value: Any) -> None:
    quick = _refusal(lambda v: check_json_value(v, field="envelope"), value)
    exact = _refusal(lambda v: _check_node(v, field="envelope", depth=0), value)
    assert quick is not None and quick == exact


def test_a_canonical_object_answers_its_bytes_and_keeps_its_members_fixed() -> None:
    members = {"b": [1, "é"], "a": {"z": None, "y": True}}
    kept = CanonicalObject(members, rfc8785.dumps(members))
    assert kept == members
    assert canonical_bytes(kept) == rfc8785.dumps(members)
    assert canonical_bytes({"outer": kept}) == rfc8785.dumps({"outer": members})
    for change in (
        lambda: kept.__setitem__("c", 1),
        lambda: kept.__delitem__("a"),
        lambda: kept.update(c=1),
        lambda: kept.pop("a"),
        lambda: kept.setdefault("c", 1),
        kept.clear,
        kept.popitem,
    ):
        with pytest.raises(TypeError):
            change()
    for copied in (copy.deepcopy(kept), pickle.loads(pickle.dumps(kept))):
        assert type(copied) is CanonicalObject
        assert copied == members and copied.canonical == kept.canonical


def _envelope(payload: Any) -> dict[str, Any]:
    return {
        "ledger": "ledger.test/cmo",
        "type": "DataSubmitted",
        "subject": "00000000-0000-0000-0000-000000000007",
        "version": 2,
        "prev": "ab" * 32,
        "payload": {"value": payload},
        "signer": "contoso-cmo",
        "key": "0" * 32,
        "signed_at": "2026-03-03T09:15:00.000Z",
        "meaning": "submitted",
    }


@settings(max_examples=200, deadline=None)
@given(valid_values)
def test_a_parsed_envelope_keeps_the_canonical_bytes_it_was_signed_over(payload: Any) -> None:
    raw = _envelope(payload)
    parsed = Envelope.parse(raw)
    signed = parsed.signed_copy()
    assert parsed.canonical == rfc8785.dumps(raw)
    assert parsed.signing_bytes() == b"cmo-ledger/envelope/v1\n" + rfc8785.dumps(raw)
    assert signed == raw and canonical_bytes(signed) == rfc8785.dumps(raw)
    signature = "c2ln" * 22
    assert event_hash(signed, signature) == leaf.event_hash(raw, signature)
    assert event_hash(raw, signature) == leaf.event_hash(raw, signature)


def test_a_stored_leaf_and_event_hash_are_those_of_the_signed_envelope(world: World) -> None:
    agreement = propose_and_sign(world)
    subject = register_batch(world, agreement, "B-LEAF")
    cmo = world[CMO]
    version, prev = world.ledger.next_version(subject)
    payload = data_payload("discrete", discrete_records("L"))
    envelope = cmo.envelope(
        "DataSubmitted", subject, payload, version=version, prev=prev, meaning="submitted"
    )
    signature = cmo.sign(envelope)
    appended = world.ledger.append(envelope, signature)
    assert appended.event_hash == leaf.event_hash(envelope, signature)
    stored = world.ledger.read_at([appended.position])[appended.position].event
    expected = leaf_bytes(envelope, appended.recorded_at, signature, appended.written_by)
    assert stored.leaf == expected
    assert world.ledger.next_version(subject) == (version + 1, appended.event_hash)


def test_registering_a_batch_replays_no_events_of_its_new_subject(world: World) -> None:
    agreement = propose_and_sign(world)
    register_batch(world, agreement, "B-WARM")  # the rules' state, cached
    payload = {
        "agreement": str(agreement),
        "batch": "B-NEW",
        "product": "NWB-101",
        "site": "contoso-site-a",
        "started_at": format_utc(now_utc() - timedelta(days=1)),
    }
    signed = world[CMO].prepare(
        world.ledger, "BatchRegistered", batch_subject("B-NEW"), payload, meaning="authored"
    )
    with counted(world.ledger) as statements:
        world.ledger.append(*signed)
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    # The log's tail since the last append, then whether the new subject has events.
    assert len(reads) == 2, reads
    assert not any("state" in s for s in reads), reads
