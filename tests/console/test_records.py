"""The console's record pages in a real browser: a batch's record (timeline, data,
corrections, chart with limit lines, grants, proof), refused with no data to a stranger
and to a grantee of another batch; a parameter's history; the grants as of a time."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

from ledger.timeutil import format_utc
from tests.console.conftest import (
    AUDITOR,
    B0,
    B1,
    CONTOSO,
    FABRIKAM,
    HELIOS,
    NORTHWIND,
    REGULATOR,
    SCREENSHOTS,
    TEMP,
    TEMP_MINUTES,
    RecordWorld,
    open_link,
)

pytestmark = pytest.mark.xdist_group("console")


def _signed_in(record: RecordWorld, page: Page, party: str, status: int = 200) -> None:
    response = open_link(page, record.link(party))
    assert response is not None and response.status == status, page.content()


def test_r5_the_batch_timeline_shows_the_printed_name_of_the_person_who_signed(
    record: RecordWorld, record_page: Page
) -> None:
    page = record_page
    _signed_in(record, page, REGULATOR)
    response = page.goto(f"/console/batches/{B0}")
    assert response is not None and response.status == 200, page.content()
    types = page.locator("#timeline td.type").all_inner_texts()
    assert types, "the batch has signed events"
    reviewed = page.locator("#timeline tbody tr").nth(types.index("AuditTrailReviewed"))
    assert reviewed.locator("td.signer .person").inner_text() == "Jane Smith"
    assert reviewed.locator("td.meaning").inner_text() == "reviewed"
    registered = page.locator("#timeline tbody tr").nth(types.index("BatchRegistered"))
    assert registered.locator("td.signer .person").count() == 0


def _parameter_path(record: RecordWorld, name: str) -> str:
    return f"/console/agreements/{record.a1}/parameters/{quote(name, safe='')}"


@pytest.mark.parametrize("party", [NORTHWIND, REGULATOR])
def test_the_batch_record_shows_the_timeline_and_the_chart_with_limit_lines(
    record: RecordWorld, record_page: Page, party: str
) -> None:
    page = record_page
    _signed_in(record, page, party)
    response = page.goto(f"/console/batches/{B1}")
    assert response is not None and response.status == 200, page.content()
    assert response.headers["cache-control"] == "no-store"
    events = page.locator("#timeline tbody tr")
    types = page.locator("#timeline td.type").all_inner_texts()
    assert types, "the batch has signed events"
    assert types[0] == "BatchRegistered" and "DataCorrected" in types
    corrected = events.nth(types.index("DataCorrected"))
    assert CONTOSO in corrected.locator("td.signer").inner_text()
    assert corrected.locator("td.meaning").inner_text() == "corrected"
    assert "transcription error" in corrected.inner_text()
    # The titer below its action limit, then corrected: struck, with the reason.
    results = page.locator("#results tbody tr").all_inner_texts()
    assert results, "the batch has discrete results"
    assert any("2.9" in row and "action" in row and "transcription error" in row for row in results)
    assert any("4.58" in row and "within" in row for row in results)
    corrections = page.locator("#corrections tbody tr")
    assert corrections.count() == 1
    assert corrections.locator("td.original").inner_text().startswith("2.9")
    assert corrections.locator("td.corrected").inner_text().startswith("4.58")
    # BR1.TEMP: downsampled under 2,000 points, with each version's limits drawn.
    temp = page.locator('figure.chart[data-tag="BR1.TEMP"]')
    expect(temp).to_have_count(1)
    assert TEMP in temp.locator("figcaption").inner_text()
    caption = temp.locator(".downsampled").inner_text()
    assert "Downsampled" in caption and str(TEMP_MINUTES) in caption
    drawn = temp.locator("polyline.series").get_attribute("points") or ""
    assert 100 < len(drawn.split()) <= 2000
    assert temp.locator("line.limit.action").count() >= 2  # low and high
    alert = temp.locator("line.limit.alert title").all_text_contents()
    assert alert, "alert limits are drawn"
    assert any("v1" in t for t in alert) and any("v2" in t for t in alert)
    assert (
        page.locator('figure.chart[data-tag="BR1.PH"] .downsampled')
        .inner_text()
        .startswith("All 600")
    )
    grantees = page.locator("#grants td.grantee").all_inner_texts()
    assert REGULATOR in grantees and FABRIKAM not in grantees
    expect(page.locator("#proof-state")).to_contain_text("Verified")
    if record.backend == "sqlite" and party == NORTHWIND:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": 1200, "height": 900})
        page.screenshot(path=str(SCREENSHOTS / "batch-record.png"))
        temp.screenshot(path=str(SCREENSHOTS / "batch-chart.png"))


@pytest.mark.parametrize("party", [HELIOS, AUDITOR, FABRIKAM])
def test_a_stranger_or_a_grantee_of_another_batch_gets_403_with_no_data(
    record: RecordWorld, record_page: Page, party: str
) -> None:
    page = record_page
    _signed_in(record, page, party, 200 if party == FABRIKAM else 403)
    secrets = (record.title, "contoso-site-a", "BR1.TEMP", "DataSubmitted", "4.58", "E-001")
    for path in (
        f"/console/batches/{B1}",
        _parameter_path(record, TEMP) if party != FABRIKAM else f"/console/batches/{B1}",
    ):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
        body = response.text()
        assert party in body
        for secret in secrets:
            assert secret not in body, (path, secret)
    if party == FABRIKAM:  # its grant opens B0, which it does read
        response = page.goto(f"/console/batches/{B0}")
        assert response is not None and response.status == 200
    else:
        for path in ("/console/grants", "/console/verify"):
            response = page.goto(path)
            assert response is not None and response.status == 403, path
            assert record.a1 not in response.text()


def test_the_home_page_and_the_audit_trail_link_the_batch_record(
    record: RecordWorld, record_page: Page
) -> None:
    page = record_page
    _signed_in(record, page, CONTOSO)
    links = page.locator("#agreements a.batch")
    assert sorted(links.all_inner_texts()) == sorted([B0, B1])
    page.locator("#agreements a.batch", has_text=B1).click()
    expect(page.locator("h1")).to_have_text(f"Batch {B1}")
    page.goto(f"/console/audit?batch={B1}")
    rows = page.locator("#trail a.batch")
    assert rows.count() > 0
    rows.first.click()
    expect(page.locator("h1")).to_have_text(f"Batch {B1}")


def test_parameter_history_lists_versions_with_proposer_and_approver(
    record: RecordWorld, record_page: Page
) -> None:
    page = record_page
    _signed_in(record, page, REGULATOR)
    page.goto(f"/console/batches/{B1}")
    page.locator("#limits a.parameter", has_text=TEMP).first.click()
    expect(page.locator("h1")).to_have_text(f"Parameter {TEMP}")
    assert page.url.endswith(_parameter_path(record, TEMP))
    versions = page.locator("#versions tr.version")
    assert versions.count() == 2
    first, second = versions.nth(0), versions.nth(1)
    assert first.locator("td").first.inner_text() == "v1"
    assert NORTHWIND in first.locator("td.proposed").inner_text()
    assert "retroactive" in first.inner_text()
    proposed = second.locator("td.proposed").inner_text()
    approved = second.locator("td.approved").inner_text()
    assert CONTOSO in proposed and "authored" in proposed and "six-month review" in proposed
    assert NORTHWIND in approved and "approved" in approved and "review meeting" in approved
    assert "36.7 to 37.3" in second.inner_text()
    if record.backend == "sqlite":
        page.set_viewport_size({"width": 1200, "height": 700})
        page.screenshot(path=str(SCREENSHOTS / "parameter-history.png"))


def test_grants_as_of_a_date_before_the_grant_show_none_and_after_show_it(
    record: RecordWorld, record_page: Page
) -> None:
    page = record_page
    _signed_in(record, page, NORTHWIND)
    page.goto("/console/grants")
    grantees = page.locator("#grant-list td.grantee").all_inner_texts()
    assert sorted(grantees) == sorted([REGULATOR, FABRIKAM])
    before = format_utc(record.fabrikam_granted - timedelta(days=1))
    page.fill("input[name=party]", FABRIKAM)
    page.fill("input[name=at]", before)
    page.click("#apply")
    expect(page.locator("#empty")).to_be_visible()
    assert page.locator("#grant-list").count() == 0
    after = format_utc(record.fabrikam_granted + timedelta(minutes=5))
    page.fill("input[name=at]", after)
    page.click("#apply")
    rows = page.locator("#grant-list tr.grant")
    expect(rows).to_have_count(1)
    assert rows.first.locator("td.grantee").inner_text() == FABRIKAM
    assert B0 in rows.first.inner_text()
    if record.backend == "sqlite":
        page.goto("/console/grants")
        page.set_viewport_size({"width": 1200, "height": 600})
        page.screenshot(path=str(SCREENSHOTS / "grants.png"))


def test_the_record_pages_carry_the_security_headers_and_no_inline_script(
    record: RecordWorld, record_page: Page
) -> None:
    page = record_page
    _signed_in(record, page, NORTHWIND)
    paths = [
        f"/console/batches/{B1}",
        _parameter_path(record, TEMP),
        "/console/grants",
        "/console/verify?leaf=0",
    ]
    for path in paths:
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        headers, html = response.headers, response.text()
        assert "script-src 'self';" in headers["content-security-policy"], path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["cache-control"] == "no-store", path
        scripts = re.findall(r"<script[^>]*>", html)
        modules = r'type="module" src="/console/static/(verify|sign)\.js"'
        assert all(re.search(modules, s) for s in scripts), path
        assert not re.search(r"<[^>]+\son[a-z]+=", html, re.IGNORECASE), path
