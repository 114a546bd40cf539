"""The console's pages in a real browser: each role's home page, a stranger's 403, the
audit trail's filters, keyset pages and exports, and the security headers."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest
from playwright.sync_api import Page

from api.console import pages
from api.console.security import SESSION_COOKIE
from tests.console.conftest import (
    AUDITOR,
    B1,
    CONTOSO,
    HELIOS,
    NORTHWIND,
    REGULATOR,
    SCREENSHOTS,
    ConsoleWorld,
    open_link,
)

pytestmark = pytest.mark.xdist_group("console")

_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)


def _signed_in(console: ConsoleWorld, page: Page, party: str) -> None:
    response = open_link(page, console.link(party))
    assert response is not None and response.status == 200, page.content()


@pytest.mark.parametrize("party", [NORTHWIND, CONTOSO, REGULATOR])
def test_each_roles_home_page_shows_its_agreements(
    console: ConsoleWorld, page: Page, party: str
) -> None:
    _signed_in(console, page, party)
    agreements = page.locator("#agreements tbody tr")
    assert agreements.count() == 1
    assert console.title in agreements.first.inner_text()
    # The regulator's 14-day grant expires within the 14-day horizon.
    grants = page.locator("#grants tbody tr").all_inner_texts()
    assert grants, "the regulator's grant is listed"
    assert any(REGULATOR in row for row in grants)


def test_the_home_page_lists_open_deviations_for_the_parties(
    console: ConsoleWorld, page: Page
) -> None:
    _signed_in(console, page, NORTHWIND)
    rows = page.locator("#deviations tbody tr").all_inner_texts()
    assert rows, "the batch's deviations are open"
    assert all(B1 in row for row in rows)
    assert any("deviation" in row and "E-001" in row for row in rows)
    if console.backend == "sqlite":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": 1200, "height": 900})
        page.screenshot(path=str(SCREENSHOTS / "home.png"), full_page=True)


@pytest.mark.parametrize("party", [HELIOS, AUDITOR])
def test_a_stranger_gets_403_with_no_data(console: ConsoleWorld, page: Page, party: str) -> None:
    signed_in = open_link(page, console.link(party))
    assert signed_in is not None and signed_in.status == 403
    for path in ("/console", "/console/audit", "/console/audit/export.csv"):
        response = page.goto(path) if path != "/console/audit/export.csv" else None
        if response is None:  # a download: read it over HTTP with the same cookie
            cookies = {c["name"]: c["value"] for c in page.context.cookies()}
            with httpx2.Client(base_url=console.url, cookies=cookies) as http:
                answer = http.get(path)
            status, body = answer.status_code, answer.text
        else:
            status, body = response.status, response.text()
        assert status == 403, path
        assert party in body  # it says who is refused
        for secret in (console.a1, console.title, B1, NORTHWIND, CONTOSO, "E-001", "deviation"):
            assert secret not in body, (path, secret)


def test_the_audit_trail_filters_by_type_and_pages_by_key(
    console: ConsoleWorld, page: Page
) -> None:
    _signed_in(console, page, CONTOSO)
    page.goto("/console/audit")
    page.fill("input[name=agreement]", console.a1)
    page.fill("input[name=first]", "2")
    with page.expect_navigation():  # read the rows once the next page has loaded
        page.click("#apply")
    positions: list[int] = []
    while True:
        cells = page.locator("#trail tbody tr td:first-child").all_inner_texts()
        assert 1 <= len(cells) <= 2
        positions.extend(int(cell) for cell in cells)
        if page.locator("#next-page").count() == 0:
            break
        with page.expect_navigation():
            page.click("#next-page")
    assert len(positions) >= 3  # proposed, signed, granted
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    page.goto("/console/audit?" + f"type=AgreementSigned&agreement={console.a1}")
    types = page.locator("#trail td.type").all_inner_texts()
    assert types, "the agreement was signed"
    assert set(types) == {"AgreementSigned"}
    if console.backend == "sqlite":
        page.goto("/console/audit")
        page.set_viewport_size({"width": 1200, "height": 700})
        page.screenshot(path=str(SCREENSHOTS / "audit-trail.png"))


def test_an_export_over_the_limit_is_refused_saying_how_to_narrow_it(
    console: ConsoleWorld, page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    _signed_in(console, page, NORTHWIND)
    page.goto(f"/console/audit?batch={B1}")
    shown = page.locator("#trail td.type").all_inner_texts()
    assert len(shown) > 1, "the batch has events"
    monkeypatch.setattr(pages, "EXPORT_MAX", len(shown) - 1)
    for suffix in ("csv", "json"):
        response = page.request.get(f"/console/audit/export.{suffix}?batch={B1}")
        assert response.status == 400, suffix
        assert f"over {len(shown) - 1} entries: narrow the filter" in response.text()
    monkeypatch.setattr(pages, "EXPORT_MAX", len(shown))
    assert page.request.get(f"/console/audit/export.json?batch={B1}").status == 200


def test_the_filtered_trail_exports_as_csv_and_json(console: ConsoleWorld, page: Page) -> None:
    _signed_in(console, page, NORTHWIND)
    page.goto(f"/console/audit?batch={B1}")
    shown = page.locator("#trail td.type").all_inner_texts()
    assert shown, "the batch has events"
    with page.expect_download() as csv_download:
        page.click("#export-csv")
    rows = list(csv.DictReader(io.StringIO(Path(csv_download.value.path()).read_text())))
    assert rows, "the export holds the batch's events"
    assert [row["type"] for row in rows] == shown
    assert {row["batch"] for row in rows} == {B1}
    with page.expect_download() as json_download:
        page.click("#export-json")
    document = json.loads(Path(json_download.value.path()).read_text())
    assert document["filter"] == {"batch": B1}
    assert document["entries"], "the export holds the batch's events"
    assert [entry["type"] for entry in document["entries"]] == shown
    assert [str(entry["position"]) for entry in document["entries"]] == [
        row["position"] for row in rows
    ]


def test_a_bad_filter_is_refused_naming_the_field(console: ConsoleWorld, page: Page) -> None:
    _signed_in(console, page, NORTHWIND)
    response = page.goto("/console/audit?from=yesterday")
    assert response is not None and response.status == 400
    assert "VALIDATION_FAILED (from)" in page.locator("#message").inner_text()
    response = page.goto("/console/audit?first=0")
    assert response is not None and response.status == 400
    assert "VALIDATION_FAILED (first)" in page.locator("#message").inner_text()


def test_a_filter_naming_an_agreement_of_others_is_forbidden(
    console: ConsoleWorld, page: Page
) -> None:
    # The regulator sees A1 through its grant; a made-up agreement is refused like any
    # other it may not see (the API's rule, not the console's).
    _signed_in(console, page, REGULATOR)
    response = page.goto("/console/audit?agreement=00000000-0000-4000-8000-000000000000")
    assert response is not None and response.status == 403
    assert "FORBIDDEN" in page.locator("#message").inner_text()


def test_csp_header_present_and_no_inline_script(console: ConsoleWorld, page: Page) -> None:
    anonymous = page.goto("/console")
    assert anonymous is not None and anonymous.status == 401
    seen = [("/console", anonymous.headers, anonymous.text())]
    _signed_in(console, page, NORTHWIND)
    for path in ("/console", "/console/audit", "/graphql"):
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        seen.append((path, response.headers, response.text()))
    for path, headers, html in seen:
        csp = headers["content-security-policy"]
        script_src = csp.split("script-src", 1)[1].split(";", 1)[0]
        assert script_src.strip() == "'self'", path
        assert "frame-ancestors 'none'" in csp, path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["cache-control"] == "no-store", path
        assert not _INLINE_SCRIPT.search(html), path
        assert not re.search(r"<[^>]+\son[a-z]+=", html, re.IGNORECASE), path  # no handlers
    page.goto("/console/audit")
    forms = page.locator("form[method=post]").all()
    assert forms, "the sign-out form"
    for form in forms:
        assert form.locator("input[name=csrf]").get_attribute("value")


def test_root_redirects_to_the_console(console: ConsoleWorld) -> None:
    with httpx2.Client(base_url=console.url) as http:
        response = http.get("/")
    assert response.status_code == 307
    assert urlsplit(response.headers["location"]).path == "/console"
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
