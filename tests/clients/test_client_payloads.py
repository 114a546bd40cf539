"""The client checks a payload against the ledger's own definition before it signs: a
mistake is refused on the caller's machine, naming the member, and nothing is sent."""

from __future__ import annotations

import json

import httpx2
import pytest
from nacl.signing import SigningKey

from clients.client import Draft, LedgerClient
from clients.errors import ClientError
from ledger.keys import encode_public_key

NOTARY = SigningKey.generate()


def answer_identity(sent: list[str]) -> httpx2.MockTransport:
    def handler(request: httpx2.Request) -> httpx2.Response:
        query = json.loads(request.content)["query"]
        sent.append(query)
        info = {"origin": "ledger.test/cmo", "notaryKey": encode_public_key(NOTARY), "treeSize": 0}
        return httpx2.Response(200, json={"data": {"ledger": info}})

    return httpx2.MockTransport(handler)


def test_a_misspelt_member_is_refused_before_signing() -> None:
    sent: list[str] = []
    with LedgerClient(
        "http://ledger.test",
        "contoso-cmo",
        SigningKey.generate(),
        notary_key=encode_public_key(NOTARY),
        transport=answer_identity(sent),
    ) as client:
        draft = Draft(
            "BatchEnded", "7f1d1c5e-0e46-5a57-8d6e-0a0f3d2d2e11", {"ended": "x"}, "completed"
        )
        with pytest.raises(ClientError) as refused:
            client.envelope(draft, 1, None)
    assert refused.value.field == "payload.ended"
    assert not any("submitEvent" in query for query in sent)
