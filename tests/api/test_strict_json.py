"""Request bodies read strictly: a member named twice in one object is refused, naming it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.view import RefusedJSON, strict_json

# Text a body may carry: no NUL, no half of a surrogate pair (both refused on their own).
_TEXT = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
_DOCUMENTS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(_TEXT, max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(_TEXT, max_size=3), inner),
    max_leaves=20,
).map(lambda value: {"query": "{ me { id } }", "variables": {"x": value}})


@given(_DOCUMENTS)
def test_a_body_without_repeated_members_reads_as_json_reads_it(document: object) -> None:
    text = json.dumps(document)
    assert strict_json(text) == json.loads(text)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('{"query": "{ me { id } }", "query": "{ ledger { origin } }"}', "query"),
        (
            '{"variables": {"events": [{"envelope": {"ledger": "a", "b": 1, "ledger": "c"}}]}}',
            "ledger",
        ),
        ('{"a": {"x": 1, "y": 2, "x": 3, "y": 4}}', "x"),
    ],
)
def test_a_member_named_twice_in_one_object_is_refused_naming_it(body: str, named: str) -> None:
    with pytest.raises(RefusedJSON) as refused:
        strict_json(body)
    assert refused.value.code == "VALIDATION_FAILED"
    assert refused.value.reason == f"member {named!r} appears twice in one object"
