"""Answers are compact JSON text that reads back as what was answered, whatever it holds."""

from __future__ import annotations

import json

import pytest

from api.view import encode_answer


@pytest.mark.parametrize(
    "answer",
    [
        {"data": {"cpv": {"sigma": 0.1 + 0.2, "n": 20, "points": [{"value": "7.05"}]}}},
        {"data": {"party": {"name": "Contoso Contract Manufacturing GmbH, Zürich 🧪"}}},
        {"data": {"big": 2**70, "negative": -(2**64)}},
        {"errors": [{"message": "no subject", "extensions": {"code": "NOT_FOUND"}}]},
    ],
)
def test_an_answer_is_compact_json_text_that_reads_back_as_answered(answer: object) -> None:
    text = encode_answer(answer)
    assert isinstance(text, str), "websocket frames carry text"
    assert json.loads(text) == answer
    assert ": " not in text and '", ' not in text, "compact"
