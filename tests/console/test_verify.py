"""In-browser verification (``verify.js``, WebCrypto): "verified" for a clean event, its
signer's key admitted by an event itself included under the checkpoint; "failed" naming
the check when the proof, the checkpoint or the key event's proof is corrupted in
transit."""

from __future__ import annotations

import base64
import json

import pytest
from playwright.sync_api import Page, Route, expect

from tests.console.conftest import B1, NORTHWIND, REGULATOR, SCREENSHOTS, RecordWorld, open_link

pytestmark = pytest.mark.xdist_group("console")

VERDICT_WAIT_MS = 30_000
"""How long a verdict may take to appear: the browser fetches the checkpoint, the proofs and
the key event and hashes them, slow on a busy machine (a bound, not a speed asserted)."""


def _batch_page(record: RecordWorld, page: Page, party: str = NORTHWIND) -> None:
    response = open_link(page, record.link(party))
    assert response is not None and response.status == 200
    response = page.goto(f"/console/batches/{B1}")
    assert response is not None and response.status == 200


def _flip(text: str) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[0] ^= 0x01
    return base64.b64encode(bytes(raw)).decode("ascii")


def test_verify_says_verified_for_a_clean_event(record: RecordWorld, record_page: Page) -> None:
    page = record_page
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    _batch_page(record, page)
    rows = page.locator("#timeline tr.event")
    assert rows.count() > 0
    last = rows.last
    last.locator("button.verify").click()
    expect(last.locator(".verdict")).to_have_text("verified", timeout=VERDICT_WAIT_MS)
    first = rows.first  # signed by Contoso: its key from its PartyAdmitted event
    first.locator("button.verify").click()
    expect(first.locator(".verdict")).to_have_text("verified", timeout=VERDICT_WAIT_MS)
    assert errors == [], errors
    assert record.blocked == []


def test_the_verify_page_lists_each_check(record: RecordWorld, record_page: Page) -> None:
    page = record_page
    _batch_page(record, page, REGULATOR)
    page.locator("#proof a", has_text="in this browser").click()
    page.wait_for_url("**/console/verify?**")
    page.wait_for_load_state()  # the page's script listens to the button once loaded
    page.click("#verify")
    expect(page.locator("#verdict")).to_have_text("verified", timeout=VERDICT_WAIT_MS)
    checks = page.locator("#checks li").all_inner_texts()
    names = ["checkpoint", "leaf", "inclusion", "key", "signature"]
    assert [c.split(":")[0] for c in checks] == names
    assert all(": ok" in c for c in checks), checks
    key = next(c for c in checks if c.startswith("key:"))
    assert "included under the same checkpoint" in key, key
    if record.backend == "sqlite":
        page.set_viewport_size({"width": 1200, "height": 700})
        page.screenshot(path=str(SCREENSHOTS / "verify.png"))


def test_verify_fails_when_the_proof_is_corrupted_in_transit(
    record: RecordWorld, record_page: Page
) -> None:
    page = record_page
    corrupted: list[int] = []

    def corrupt(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        event = (body.get("data") or {}).get("event")
        if event and event.get("inclusionProof") and event["inclusionProof"]["hashes"]:
            hashes = event["inclusionProof"]["hashes"]
            hashes[0] = _flip(hashes[0])
            corrupted.append(event["leafIndex"])
        route.fulfill(response=response, body=json.dumps(body))

    _batch_page(record, page)
    page.route("**/graphql", corrupt)
    row = page.locator("#timeline tr.event").last
    row.locator("button.verify").click()
    expect(row.locator(".verdict")).to_contain_text("failed: inclusion")
    assert corrupted, "the proof went through the route"


def test_verify_fails_when_the_checkpoint_is_corrupted_in_transit(
    record: RecordWorld, record_page: Page
) -> None:
    page = record_page

    def corrupt(route: Route) -> None:
        response = route.fetch()
        origin, size, root, rest = response.text().split("\n", 3)
        route.fulfill(response=response, body="\n".join([origin, size, _flip(root), rest]))

    _batch_page(record, page)
    page.route("**/checkpoint", corrupt)
    row = page.locator("#timeline tr.event").last
    row.locator("button.verify").click()
    expect(row.locator(".verdict")).to_contain_text("failed: checkpoint")


def test_verify_fails_when_the_signers_key_event_proof_is_corrupted_in_transit(
    record: RecordWorld, record_page: Page
) -> None:
    page = record_page
    row = page.locator("#timeline tr.event").first  # signed by Contoso, a party key
    key_leaves: list[int] = []
    corrupted: list[int] = []

    def corrupt(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        data = body.get("data") or {}
        for edge in (data.get("auditTrail") or {}).get("edges") or []:
            if edge["node"].get("type") in ("PartyAdmitted", "KeyAdded"):
                key_leaves.append(edge["node"]["leafIndex"])
        event = data.get("event")
        proof = (event or {}).get("inclusionProof")
        if event and proof and proof["hashes"] and event["leafIndex"] in key_leaves:
            proof["hashes"][0] = _flip(proof["hashes"][0])
            corrupted.append(event["leafIndex"])
        route.fulfill(response=response, body=json.dumps(body))

    _batch_page(record, page)
    page.route("**/graphql", corrupt)
    row.locator("button.verify").click()
    expect(row.locator(".verdict")).to_contain_text("failed: key")
    expect(row.locator(".verdict")).to_contain_text("the checkpoint's root")
    assert corrupted, "the key event's proof went through the route"
    assert int(row.get_attribute("data-leaf") or -1) not in corrupted
