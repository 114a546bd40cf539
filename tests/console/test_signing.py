"""Signing in the browser with a key that lives in the browser: generated non-extractable
with WebCrypto, enrolled by the real ``cmo-ledger key enrol-browser``, it approves a
parameter revision, acknowledges a deviation and an enhancement claim; the log still
verifies; a tampered envelope and a revoked key's signature are refused, nothing stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import Browser, Locator, Page, Route, expect
from typer.testing import CliRunner

from clients.cli import app
from clients.cli.party import BROWSER_KEY_REASON
from ledger.domain.subjects import batch_subject, parameter_subject
from tests.console.conftest import (
    B1,
    DO,
    NORTHWIND,
    PH,
    SigningWorld,
    open_link,
)

pytestmark = pytest.mark.xdist_group("console")

HEAD = "query($s: ID!) { nextVersion(subject: $s) { version } }"
PIN = "4711-0815"


@dataclass
class Browsing:
    """A browser context signed in as Northwind, with its browser key enrolled."""

    page: Page
    public_key: str
    key_id: str


def _context_page(browser: Browser, signing: SigningWorld) -> Page:
    local = urlsplit(signing.url).netloc
    context = browser.new_context(base_url=signing.url)

    def only_local(route: Route) -> None:
        if urlsplit(route.request.url).netloc == local:
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_local)
    return context.new_page()


def _cli(signing: SigningWorld, who: str, *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env=signing.env(who))
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return str(result.stdout)


def _enrolled_browser(browser: Browser, signing: SigningWorld) -> Browsing:
    """Sign in, generate the browser key, enrol it with the real command, reload."""
    page = _context_page(browser, signing)
    response = open_link(page, signing.link(NORTHWIND))
    assert response is not None and response.status == 200, page.content()
    page.goto("/console/browser-key")
    page.fill("#new-pin", PIN)
    page.fill("#new-pin-again", PIN)
    page.click("#generate-key")
    expect(page.locator("#public-key")).to_contain_text("ed25519:")
    public_key = page.locator("#public-key").inner_text()
    command = page.locator("#enrol-command").inner_text()
    assert f"cmo-ledger key enrol-browser --public-key {public_key} --key" in command
    expect(page.locator("#key-state")).to_contain_text("unknown")
    _cli(signing, NORTHWIND, "key", "enrol-browser", "--public-key", public_key)
    page.reload()
    expect(page.locator("#key-state")).to_have_text("enrolled")
    return Browsing(page, public_key, page.locator("#key-id").inner_text())


@pytest.fixture(scope="module")
def browsing(browser: Browser, signing: SigningWorld) -> Iterator[Browsing]:
    """One enrolled browser for the module (its key stays in its IndexedDB)."""
    enrolled = _enrolled_browser(browser, signing)
    try:
        yield enrolled
    finally:
        enrolled.page.context.close()


def _sign(form: Locator, pin: str = PIN) -> None:
    """Type the browser key's PIN into a signing form and submit it."""
    form.locator('[name="pin"]').fill(pin)
    form.locator('button[type="submit"]').click()


def _version(signing: SigningWorld, subject: object) -> int:
    data, errors = signing.server.call(signing.world[NORTHWIND], HEAD, {"s": str(subject)})
    assert not errors, errors
    return int(data["nextVersion"]["version"])


def _last_event(signing: SigningWorld, subject: object) -> dict[str, object]:
    query = """query($s: ID!) { auditTrail(filter: {subject: $s}, first: 200) {
      edges { node { type signer key meaning reason } } } }"""
    data, errors = signing.server.call(signing.world[NORTHWIND], query, {"s": str(subject)})
    assert not errors, errors
    edges = data["auditTrail"]["edges"]
    assert edges, "the subject has events"
    node: dict[str, object] = edges[-1]["node"]
    return node


def _parameter_page(signing: SigningWorld, page: Page, name: str) -> None:
    page.goto(f"/console/agreements/{signing.a1}/parameters/{quote(name, safe='')}")
    expect(page.locator("body")).to_have_attribute("data-signing", "ready")


def test_a_browser_key_enrolled_by_the_cli_approves_a_revision_and_the_log_verifies(
    signing: SigningWorld, browsing: Browsing
) -> None:
    page = browsing.page
    subject = parameter_subject(signing.a1, DO)
    before = _version(signing, subject)
    _parameter_page(signing, page, DO)
    form = page.locator('form.sign-action[data-action="approve-revision"]')
    expect(form).to_have_count(1)
    form.locator('[name="reason"]').fill("approved at the six-month review")
    _sign(form)
    outcome = form.locator("output.sign-outcome")
    expect(outcome).to_have_attribute("data-state", "signed")
    assert browsing.key_id in outcome.inner_text()
    assert _version(signing, subject) == before + 1
    landed = _last_event(signing, subject)
    assert landed["type"] == "ParameterRevisionApproved"
    assert landed["signer"] == NORTHWIND and landed["key"] == browsing.key_id
    assert landed["meaning"] == "approved"
    assert landed["reason"] == "approved at the six-month review"
    # The whole log, re-checked offline by `cmo-ledger verify`, holds.
    result = CliRunner().invoke(
        app, ["verify"], env={"CMO_LEDGER_DATABASE_URL": signing.settings.database_url}
    )
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    # The page shows it decided, with no form left to sign.
    page.reload()
    expect(page.locator("tr.decide")).to_have_count(0)
    assert "approved" in page.locator("#revisions").inner_text()


def test_the_enrolment_is_a_key_added_noted_as_a_browser_key(
    signing: SigningWorld, browsing: Browsing
) -> None:
    query = """query { auditTrail(filter: {type: "KeyAdded", signer: "northwind-bio"},
      first: 200) { edges { node { reason } } } }"""
    data, errors = signing.server.call(signing.world[NORTHWIND], query)
    assert not errors, errors
    reasons = [edge["node"]["reason"] for edge in data["auditTrail"]["edges"]]
    assert reasons, "Northwind added keys"
    assert BROWSER_KEY_REASON in reasons


def test_a_deviation_is_acknowledged_with_the_browser_key(
    signing: SigningWorld, browsing: Browsing
) -> None:
    page = browsing.page
    page.goto(f"/console/batches/{B1}")
    expect(page.locator("body")).to_have_attribute("data-signing", "ready")
    form = page.locator('form.sign-action[data-record="E-001"]')
    expect(form).to_be_visible()
    _sign(form)
    expect(form.locator("output.sign-outcome")).to_have_attribute("data-state", "signed")
    landed = _last_event(signing, batch_subject(B1))
    assert landed["type"] == "DataAcknowledged" and landed["key"] == browsing.key_id
    page.reload()
    rows = page.locator("#records tbody tr").all_inner_texts()
    assert rows, "the batch has event records"
    assert any("E-001" in row and f"{NORTHWIND} at" in row for row in rows)


def test_an_enhancement_claim_is_acknowledged_from_the_home_page(
    signing: SigningWorld, browsing: Browsing
) -> None:
    page = browsing.page
    page.goto("/console")
    expect(page.locator("body")).to_have_attribute("data-signing", "ready")
    form = page.locator(f'form.sign-action[data-enhancement="{signing.claim}"]')
    expect(form).to_be_visible()
    _sign(form)
    expect(form.locator("output.sign-outcome")).to_have_attribute("data-state", "signed")
    landed = _last_event(signing, signing.claim)
    assert landed["type"] == "EnhancementAcknowledged" and landed["key"] == browsing.key_id
    page.reload()
    expect(page.locator(f'tr.claim[data-enhancement="{signing.claim}"]')).to_have_count(0)


def test_a_tampered_envelope_is_refused_with_bad_signature_and_nothing_stored(
    signing: SigningWorld, browsing: Browsing
) -> None:
    page = browsing.page
    subject = parameter_subject(signing.a1, PH)
    before = _version(signing, subject)
    _parameter_page(signing, page, PH)

    def tamper(route: Route) -> None:
        sent = json.loads(route.request.post_data or "{}")
        sent["envelope"]["reason"] = "rejected: the target is wrong"  # not what was signed
        route.continue_(post_data=json.dumps(sent))

    page.route("**/console/sign/submit", tamper)
    try:
        form = page.locator('form.sign-action[data-action="reject-revision"]')
        form.locator('[name="reason"]').fill("the target needs more data")
        _sign(form)
        outcome = form.locator("output.sign-outcome")
        expect(outcome).to_have_attribute("data-state", "refused")
        assert "BAD_SIGNATURE (signature)" in outcome.inner_text()
    finally:
        page.unroute("**/console/sign/submit")
    assert _version(signing, subject) == before


def test_a_revoked_browser_key_signs_nothing(browser: Browser, signing: SigningWorld) -> None:
    enrolled = _enrolled_browser(browser, signing)
    page = enrolled.page
    try:
        subject = parameter_subject(signing.a1, PH)
        _parameter_page(signing, page, PH)
        reason = ["--reason", "browser of a laptop handed back"]
        _cli(signing, NORTHWIND, "key", "revoke", enrolled.key_id, *reason)
        before = _version(signing, subject)
        form = page.locator('form.sign-action[data-action="approve-revision"]')
        _sign(form)
        outcome = form.locator("output.sign-outcome")
        expect(outcome).to_have_attribute("data-state", "refused")
        assert "KEY_REVOKED" in outcome.inner_text()
        assert _version(signing, subject) == before
        page.goto("/console/browser-key")
        expect(page.locator("#key-state")).to_contain_text("revoked")
    finally:
        page.context.close()


def test_a_prepare_without_the_csrf_token_is_refused(
    signing: SigningWorld, browsing: Browsing
) -> None:
    page = browsing.page
    page.goto("/console/browser-key")
    answer = page.evaluate(
        """async (body) => {
          const r = await fetch("/console/sign/prepare", {method: "POST",
            headers: {"content-type": "application/json"}, body: JSON.stringify(body)});
          return [r.status, await r.json()];
        }""",
        {"action": "acknowledge-enhancement", "enhancement": signing.claim},
    )
    assert answer[0] == 403
    assert answer[1]["errors"][0]["code"] == "FORBIDDEN"
    assert answer[1]["errors"][0]["field"] == "csrf"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "sign-everything"}, "action"),
        ({"action": "reject-revision", "agreement": "x"}, "agreement"),
        ({"action": "acknowledge-records", "batch": B1, "records": []}, "records"),
        (
            {
                "action": "acknowledge-enhancement",
                "enhancement": "00000000-0000-0000-0000-000000000001",
                "publicKey": "rsa:x",
            },
            "publicKey",
        ),
    ],
)
def test_a_bad_prepare_is_refused_naming_the_field(
    signing: SigningWorld, browsing: Browsing, body: dict[str, object], field: str
) -> None:
    page = browsing.page
    page.goto("/console/browser-key")
    answer = page.evaluate(
        """async (body) => {
          const csrf = document.querySelector('meta[name="csrf-token"]').content;
          const r = await fetch("/console/sign/prepare", {method: "POST",
            headers: {"content-type": "application/json", "x-csrf-token": csrf},
            body: JSON.stringify(body)});
          return [r.status, await r.json()];
        }""",
        {"publicKey": browsing.public_key, **body},
    )
    assert answer[0] == 400, answer
    assert answer[1]["errors"][0]["code"] == "VALIDATION_FAILED"
    assert answer[1]["errors"][0]["field"] == field


def _csrf(page: Page) -> str:
    page.goto("/console/browser-key")
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert token
    return token


def test_a_prepare_from_a_foreign_origin_is_refused(
    signing: SigningWorld, browsing: Browsing
) -> None:
    page = browsing.page
    response = page.request.post(
        "/console/sign/prepare",
        headers={"origin": "https://elsewhere.example", "x-csrf-token": _csrf(page)},
        data={"action": "acknowledge-enhancement", "enhancement": signing.claim},
    )
    assert response.status == 403
    assert response.json()["errors"][0] == {
        "code": "FORBIDDEN",
        "field": "origin",
        "message": "the request must come from this ledger's pages",
    }


def test_a_sign_request_over_the_body_limit_is_refused_and_nothing_stored(
    signing: SigningWorld, browsing: Browsing
) -> None:
    page = browsing.page
    before = _version(signing, signing.claim)
    padding = "x" * (64 * 1024)
    response = page.request.post(
        "/console/sign/submit",
        headers={"x-csrf-token": _csrf(page)},
        data={"envelope": {"payload": {"comment": padding}}, "signature": "x"},
    )
    assert response.status == 413
    refusal = response.json()["errors"][0]
    assert (refusal["code"], refusal["field"]) == ("LIMIT_EXCEEDED", "body")
    assert _version(signing, signing.claim) == before


def test_r6_a_wrong_pin_leaves_the_browser_key_sealed_and_sends_nothing(
    signing: SigningWorld, browsing: Browsing
) -> None:
    page = browsing.page
    _parameter_page(signing, page, PH)
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url))
    form = page.locator('form.sign-action[data-action="approve-revision"]')
    before = _version(signing, parameter_subject(signing.a1, PH))
    _sign(form, pin="0000-0000")
    outcome = form.locator("output.sign-outcome")
    expect(outcome).to_have_attribute("data-state", "refused")
    expect(outcome).to_contain_text("wrong PIN")
    assert not [url for url in sent if "/console/sign/" in url]
    assert _version(signing, parameter_subject(signing.a1, PH)) == before
    _sign(form, pin="")
    expect(outcome).to_contain_text("enter the browser key's PIN")


def test_r6_a_browser_key_needs_a_pin_of_six_characters_typed_twice(
    browser: Browser, signing: SigningWorld
) -> None:
    page = _context_page(browser, signing)
    try:
        response = open_link(page, signing.link(NORTHWIND))
        assert response is not None and response.status == 200, page.content()
        page.goto("/console/browser-key")
        for pin, again, said in (("12345", "12345", "at least 6"), (PIN, PIN + "x", "differ")):
            page.fill("#new-pin", pin)
            page.fill("#new-pin-again", again)
            page.click("#generate-key")
            expect(page.locator("#key-state")).to_contain_text(said)
            assert page.locator("#public-key").inner_text() == ""
    finally:
        page.context.close()
