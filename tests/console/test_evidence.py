"""The evidence bundle downloaded from the batch record: built by the server as the
session's party (what ``cmo-ledger export-evidence`` writes), its manifest signed in the
browser by the person's browser key; ``cmo-ledger verify-bundle`` passes on it, fails
when its report is rewritten and the manifest re-hashed, and a party who may not read the
batch is refused with no data."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, expect
from typer.testing import CliRunner

from clients.cli import app
from clients.cli.party import BROWSER_KEY_REASON
from ledger.domain.subjects import party_subject
from ledger.evidence.layout import MANIFEST, MANIFEST_SIG, REPORT, sha256_file
from tests.console.conftest import (
    B1,
    FABRIKAM,
    HELIOS,
    NORTHWIND,
    SCREENSHOTS,
    RecordWorld,
    open_link,
)

pytestmark = pytest.mark.xdist_group("console")

PIN = "2718-2818"
PREPARE = "/console/evidence/prepare"
CHECKPOINT_SIZE = "{ checkpoint { treeSize } }"


@dataclass
class Downloader:
    """A browser signed in as Northwind, its browser key enrolled and checkpointed."""

    page: Page
    public_key: str
    key_id: str


def _local_context_page(browser: Browser, url: str) -> Page:
    local = urlsplit(url).netloc
    context = browser.new_context(base_url=url, accept_downloads=True)

    def only_local(route: Route) -> None:
        if urlsplit(route.request.url).netloc == local:
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_local)
    return context.new_page()


def _checkpointed(record: RecordWorld, leaf: int) -> None:
    """Wait until the notary's signed checkpoint covers ``leaf`` (it signs every second)."""
    actor = record.actor(NORTHWIND)
    for _ in range(300):
        data, errors = record.server.call(actor, CHECKPOINT_SIZE)
        assert errors == [], errors
        if data["checkpoint"] and data["checkpoint"]["treeSize"] > leaf:
            return
        record.server.call(actor, "{ me { id } }")
    raise AssertionError(f"no checkpoint covers leaf {leaf}")


@pytest.fixture(scope="module")
def downloader(browser: Browser, record: RecordWorld) -> Iterator[Downloader]:
    page = _local_context_page(browser, record.url)
    try:
        response = open_link(page, record.link(NORTHWIND))
        assert response is not None and response.status == 200
        page.goto("/console/browser-key")
        page.fill("#new-pin", PIN)
        page.fill("#new-pin-again", PIN)
        page.click("#generate-key")
        expect(page.locator("#public-key")).to_contain_text("ed25519:")
        public_key = page.locator("#public-key").inner_text()
        # Enrolled as `cmo-ledger key enrol-browser` does: a KeyAdded by the party key.
        added = record.server.submit(
            record.actor(NORTHWIND),
            "KeyAdded",
            party_subject(NORTHWIND),
            {"public_key": public_key, "purpose": "party"},
            meaning="authored",
            reason=BROWSER_KEY_REASON,
        )
        _checkpointed(record, int(added["leafIndex"]))
        page.reload()
        expect(page.locator("#key-state")).to_have_text("enrolled")
        yield Downloader(page, public_key, page.locator("#key-id").inner_text())
    finally:
        page.context.close()


def _download(record: RecordWorld, downloader: Downloader, into: Path) -> Path:
    """Download B1's bundle from its record page and unpack it; the bundle's folder."""
    page = downloader.page
    page.goto(f"/console/batches/{B1}")
    form = page.locator("form.evidence-download")
    expect(form).to_be_visible()
    form.locator('[name="pin"]').fill(PIN)
    with page.expect_download() as started:
        form.locator('button[type="submit"]').click()
    archive = into / started.value.suggested_filename
    started.value.save_as(archive)
    expect(form.locator("output.sign-outcome")).to_have_attribute("data-state", "saved")
    with zipfile.ZipFile(archive) as opened:
        assert opened.testzip() is None
        opened.extractall(into)
    folder = into / archive.stem
    assert folder.is_dir(), sorted(p.name for p in into.iterdir())
    return folder


def _notary_key(record: RecordWorld) -> str:
    data, errors = record.server.call(record.actor(NORTHWIND), "{ ledger { notaryKey } }")
    assert errors == [], errors
    return str(data["ledger"]["notaryKey"])


def _verify_bundle(record: RecordWorld, folder: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["verify-bundle", str(folder), "--vkey", _notary_key(record)], env={}
    )
    return result.exit_code, str(result.stdout) + str(result.stderr or "")


def test_a_person_downloads_the_batch_bundle_signed_by_the_browser_key_and_it_verifies(
    record: RecordWorld, downloader: Downloader, tmp_path: Path
) -> None:
    folder = _download(record, downloader, tmp_path)
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    for expected in ("manifest.json", "manifest.sig", "checkpoint.txt", "report.html", "cpv.json"):
        assert expected in names, names
    assert any(name.startswith("events/") for name in names), names
    signed = json.loads((folder / MANIFEST_SIG).read_text("utf-8"))
    assert signed["party"] == NORTHWIND and signed["key_id"] == downloader.key_id
    assert json.loads((folder / MANIFEST).read_text("utf-8"))["exported_by"] == NORTHWIND
    status, output = _verify_bundle(record, folder)
    assert status == 0, output
    exporter = f"signed by its exporter {NORTHWIND} with key {downloader.key_id}"
    assert exporter in output, output
    if record.backend == "sqlite":
        page = downloader.page
        page.locator("#evidence").scroll_into_view_if_needed()
        page.set_viewport_size({"width": 1200, "height": 700})
        page.screenshot(path=str(SCREENSHOTS / "evidence-download.png"))


def test_a_downloaded_bundle_whose_report_is_rewritten_and_manifest_rehashed_fails(
    record: RecordWorld, downloader: Downloader, tmp_path: Path
) -> None:
    folder = _download(record, downloader, tmp_path)
    report = folder / REPORT
    report.write_text(report.read_text("utf-8").replace(B1, "NWB101-24-999"), "utf-8")
    manifest = json.loads((folder / MANIFEST).read_text("utf-8"))
    manifest["files"][REPORT] = sha256_file(report)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True), "utf-8")
    status, output = _verify_bundle(record, folder)
    assert status == 1, output
    assert "manifest.sig" in output, output


@pytest.mark.parametrize("party", [HELIOS, FABRIKAM])
def test_a_party_who_may_not_read_the_batch_is_refused_with_no_data(
    record: RecordWorld, record_page: Page, party: str, downloader: Downloader
) -> None:
    page = record_page
    open_link(page, record.link(party))
    page.goto("/console")
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert csrf
    answer = page.request.post(
        PREPARE,
        data=json.dumps({"batch": B1, "publicKey": downloader.public_key}),
        headers={"content-type": "application/json", "x-csrf-token": csrf},
    )
    assert answer.status == 403, answer.text()
    body = answer.json()
    assert [e["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert set(body) == {"errors"}
    assert answer.headers["cache-control"] == "no-store"


def test_the_download_is_refused_without_the_csrf_token_or_from_another_origin(
    record: RecordWorld, downloader: Downloader
) -> None:
    page = downloader.page
    page.goto(f"/console/batches/{B1}")
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert csrf
    body = json.dumps({"batch": B1, "publicKey": downloader.public_key})
    json_type = {"content-type": "application/json"}
    missing = page.request.post(PREPARE, data=body, headers=json_type)
    assert missing.status == 403 and missing.json()["errors"][0]["field"] == "csrf"
    foreign = page.request.post(
        PREPARE,
        data=body,
        headers={**json_type, "x-csrf-token": csrf, "origin": "https://evil.example"},
    )
    assert foreign.status == 403 and foreign.json()["errors"][0]["field"] == "origin"
    too_big = page.request.post(
        PREPARE,
        data=json.dumps({"batch": B1, "publicKey": downloader.public_key, "pad": "x" * 70000}),
        headers={**json_type, "x-csrf-token": csrf},
    )
    assert too_big.status == 413 and too_big.json()["errors"][0]["field"] == "body"
    unknown = page.request.post(
        PREPARE,
        data=json.dumps({"batch": B1, "publicKey": "ed25519:AAAA"}),
        headers={**json_type, "x-csrf-token": csrf},
    )
    assert unknown.status == 400 and unknown.json()["errors"][0]["field"] == "publicKey"


def test_the_batch_page_loads_the_download_from_static_scripts_only(
    record: RecordWorld, downloader: Downloader
) -> None:
    page = downloader.page
    response = page.goto(f"/console/batches/{B1}")
    assert response is not None and response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    inline = page.locator("script:not([src])")
    assert inline.count() == 0
