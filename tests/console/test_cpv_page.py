"""The console's CPV page in a real browser: the sponsor opens it from the parameter's
history and sees the control chart with the Nelson rule 1 point marked and listed, the
capability table, the log position and the inputs digest; a stranger, and a grantee who may
not read the discrete results, get 403 with no data."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from clients.cli.login import sign_in_link
from ledger.clock import FakeClock
from ledger.domain.subjects import baseline_subject
from ledger.timeutil import format_utc, now_utc
from tests.conftest import BACKENDS, fresh_world
from tests.console.conftest import (
    CONTOSO,
    FABRIKAM,
    HELIOS,
    NORTHWIND,
    SCREENSHOTS,
    _built_once_per_backend,
    open_link,
)
from tests.support.agreements import grant, propose_and_sign
from tests.support.batches import define_parameter, register_batch, submit_data
from tests.support.server import Server, running_server
from tests.support.world import World, agreement_terms

pytestmark = pytest.mark.xdist_group("console")

DO = "dissolved oxygen"
BASELINE = "PPQ"
BATCHES = 12
IN_BASELINE = 8
OUTLIER = "58.5"
"""The last batch's value: far beyond the baseline's upper control limit (Nelson rule 1)."""


@dataclass
class CpvWorld:
    """Agreement A1 in force, DO defined, batches CPV-001..CPV-012 with one DO result each
    (the last far out), baseline PPQ of the first eight; Fabrikam holds a grant of the
    continuous data only."""

    server: Server
    world: World
    a1: str
    title: str
    backend: str
    batches: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def link(self, who: str) -> str:
        actor = self.world[who]
        return sign_in_link(self.url, actor.party_id, actor.key).url

    def path(self, baseline: str = BASELINE, **extra: Any) -> str:
        query = "".join(f"&{k}={v}" for k, v in extra.items())
        return (
            f"/console/agreements/{self.a1}/parameters/{quote(DO, safe='')}/cpv"
            f"?baseline={baseline}{query}"
        )


def _cpv_world(
    request: pytest.FixtureRequest, tmp: pytest.TempPathFactory, stack: ExitStack, backend: str
) -> CpvWorld:
    directory = tmp.mktemp(f"console-cpv-{backend}")
    world = stack.enter_context(fresh_world(backend, request, directory))
    ledger, notary, settings = world.ledger, world.notary, world.ledger.settings
    a1 = propose_and_sign(world)
    define_parameter(world, a1, DO)
    rng = random.Random(12)
    batches, values = [], []
    for number in range(1, BATCHES + 1):
        name = f"CPV-{number:03d}"
        register_batch(world, a1, name, started_at=now_utc())
        value = OUTLIER if number == BATCHES else f"{rng.gauss(40.0, 1.0):.1f}"
        record = {
            "id": "DO-001",
            "parameter": DO,
            "value": value,
            "unit": "%",
            "sampled_at": format_utc(now_utc()),
            "method": "in-process control",
        }
        submit_data(world, name, "discrete", [record])
        batches.append(name)
        values.append(value)
    payload = {
        "agreement": str(a1),
        "parameter": DO,
        "name": BASELINE,
        "batches": batches[:IN_BASELINE],
    }
    world[CONTOSO].submit(
        ledger,
        "BaselineDefined",
        baseline_subject(str(a1), DO, BASELINE),
        payload,
        meaning="authored",
        reason="process performance qualification campaign",
    )
    grant(world, a1, NORTHWIND, FABRIKAM, data_classes=["continuous"])
    server = stack.enter_context(
        running_server(settings, notary.key, clock=FakeClock(ticking=True))
    )
    title = str(agreement_terms()["title"])
    return CpvWorld(server, world, str(a1), title, backend, batches, values)


@pytest.fixture(scope="module")
def cpv_worlds(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], CpvWorld]]:
    yield from _built_once_per_backend(request, tmp_path_factory, _cpv_world)


@pytest.fixture(scope="module", params=BACKENDS)
def cpv(request: pytest.FixtureRequest, cpv_worlds: Callable[[str], CpvWorld]) -> CpvWorld:
    """The CPV world on one backend (SQLite, PostgreSQL)."""
    return cpv_worlds(str(request.param))


@pytest.fixture
def cpv_page(browser: Browser, cpv: CpvWorld) -> Iterator[Page]:
    """A fresh browser context on the CPV world; requests to any other host are aborted."""
    local = urlsplit(cpv.url).netloc
    context = browser.new_context(base_url=cpv.url)

    def only_local(route: Route) -> None:
        target = urlsplit(route.request.url)
        if target.scheme in ("data", "blob") or target.netloc == local:
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_local)
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


def _signed_in(cpv: CpvWorld, page: Page, party: str, status: int = 200) -> None:
    response = open_link(page, cpv.link(party))
    assert response is not None and response.status == status, page.content()


def test_the_sponsor_sees_the_chart_with_the_rule_1_point_and_the_capability(
    cpv: CpvWorld, cpv_page: Page
) -> None:
    page = cpv_page
    _signed_in(cpv, page, NORTHWIND)
    page.goto(f"/console/agreements/{cpv.a1}/parameters/{quote(DO, safe='')}")
    page.fill("#cpv-form input[name=baseline]", BASELINE)
    with page.expect_navigation() as opened:
        page.click("#cpv-open")
    response = opened.value
    assert response is not None and response.status == 200, page.content()
    assert response.headers["cache-control"] == "no-store"
    assert "<script" not in response.text()
    expect(page.locator("h1")).to_contain_text(DO)
    chart = page.locator("#location-chart")
    expect(chart.locator(".point")).to_have_count(BATCHES)
    flagged = chart.locator(".point.violation")
    expect(flagged).to_have_count(1)
    assert flagged.get_attribute("data-batch") == cpv.batches[-1]
    for kind in ("centre", "lower", "upper"):
        expect(chart.locator(f"line.control.{kind}")).to_have_count(1)
    # The outlier lies above the upper control limit (SVG y grows downwards).
    upper = float(chart.locator("line.control.upper").get_attribute("y1") or "nan")
    assert float(flagged.get_attribute("y") or "nan") < upper
    expect(page.locator("#dispersion-chart .point")).to_have_count(BATCHES - 1)
    rules = page.locator("#violations tr.violation")
    first = rules.filter(has_text="Nelson 1")
    expect(first).to_have_count(1)
    assert "beyond" in first.locator("td.name").inner_text().lower()
    assert first.locator("td.batches").inner_text() == cpv.batches[-1]
    study = page.locator("#capability table.study")
    expect(study).to_have_count(1)
    for index in ("cp", "cpk", "pp", "ppk"):
        cell = study.locator(f"tr.{index} td").inner_text()
        assert "…" in cell and "95 %" in cell, (index, cell)
    assert "30" in study.locator("caption").inner_text()  # LSL of the action limits
    assert study.locator("tr.normality td").inner_text()[:1].isdigit()
    assert "25" in study.locator("tr.warnings").inner_text()  # fewer than 25 values
    known_at = page.locator("#known-at").inner_text()
    assert known_at.isdigit() and int(known_at) > 0
    digest = page.locator("#inputs-digest").inner_text()
    assert len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)
    points = page.locator("#points tr.point")
    expect(points).to_have_count(BATCHES)
    assert OUTLIER in points.last.inner_text()
    # The same question at the position shown answers the same digest.
    page.goto(cpv.path(knownAt=known_at))
    expect(page.locator("#inputs-digest")).to_have_text(digest)
    if cpv.backend == "sqlite":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.set_viewport_size({"width": 1200, "height": 1400})
        page.screenshot(path=str(SCREENSHOTS / "cpv.png"), full_page=True)


@pytest.mark.parametrize("party", [HELIOS, FABRIKAM])
def test_a_party_that_may_not_read_the_results_gets_403_with_no_data(
    cpv: CpvWorld, cpv_page: Page, party: str
) -> None:
    page = cpv_page
    _signed_in(cpv, page, party, 200 if party == FABRIKAM else 403)
    response = page.goto(cpv.path())
    assert response is not None and response.status == 403
    body = response.text()
    assert party in body
    if party == FABRIKAM:
        assert "FORBIDDEN" in body
    for secret in (OUTLIER, *cpv.values, "inputs-digest", "location-chart", "Nelson"):
        assert secret not in body, secret


def test_an_unknown_baseline_or_a_bad_position_is_refused(cpv: CpvWorld, cpv_page: Page) -> None:
    page = cpv_page
    _signed_in(cpv, page, NORTHWIND)
    response = page.goto(cpv.path("no-such-baseline"))
    assert response is not None and response.status == 404, response.text()
    response = page.goto(cpv.path(knownAt="x"))
    assert response is not None and response.status == 400
    response = page.goto(cpv.path(""))
    assert response is not None and response.status == 400
