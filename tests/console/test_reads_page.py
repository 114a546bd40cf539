"""The console's "who read my data" page (R11), in a real browser: a sponsor's look at the
batch record is a logged read (the console runs the same GraphQL operations), the CMO that
owns the data sees it listed, and the sponsor is refused the page with no data."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.console.conftest import B1, CONTOSO, NORTHWIND, RecordWorld, open_link

pytestmark = pytest.mark.xdist_group("console")


def _signed_in(record: RecordWorld, page: Page, party: str) -> None:
    response = open_link(page, record.link(party))
    assert response is not None and response.status == 200, page.content()


def test_r11_the_owner_sees_the_sponsors_console_read_of_its_batch(
    record: RecordWorld, record_page: Page
) -> None:
    page = record_page
    _signed_in(record, page, NORTHWIND)
    response = page.goto(f"/console/batches/{B1}")
    assert response is not None and response.status == 200, page.content()
    refused = page.goto("/console/reads")
    assert refused is not None and refused.status == 403
    assert page.locator("#read-list").count() == 0

    _signed_in(record, page, CONTOSO)
    response = page.goto(f"/console/reads?batch={B1}")
    assert response is not None and response.status == 200, page.content()
    rows = page.locator("#read-list tr.read")
    expect(rows.first).to_be_visible()
    readers = rows.locator("td.reader").all_inner_texts()
    assert NORTHWIND in readers
    assert set(rows.locator("td.batch").all_inner_texts()) == {B1}
    mine = rows.filter(has_text=NORTHWIND).filter(has_text="Query.traceBatch")
    expect(mine.first).to_be_visible()
