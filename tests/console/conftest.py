"""Console fixtures: one served world per backend, one browser, a fresh context per test.

Each backend's world is built once per test module and closed after it (a world kept for
the session would hold its database connections while the rest of the suite runs); the
browser is launched once per worker. The world: the parties of WORLD.md; agreement A1
(Northwind <-> Contoso) in force; a 14-day grant of A1 to the regulator; batch
``NWB101-24-001`` with two deviations not yet acknowledged. Helios and the auditor are
strangers to it. The server runs on a ticking :class:`~ledger.clock.FakeClock`, so a test
moves time forward instead of sleeping.

The browser is Debian's ``chromium`` driven by Playwright; a machine without it fails
these tests (CI installs it, see ``.ci/run``), it does not skip them.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright
from playwright.sync_api import Response as PageResponse

from clients.cli.login import sign_in_link
from ledger.clock import FakeClock
from ledger.config import Settings
from ledger.domain.subjects import batch_subject
from ledger.keystore import create_keystore, kdf_limits_from_env
from ledger.timeutil import format_utc, now_utc
from tests.conftest import BACKENDS, fresh_world
from tests.support.agreements import grant, propose_and_sign, sign_retroactively
from tests.support.batches import (
    continuous_series,
    define_parameter,
    discrete_records,
    end_batch,
    event_records,
    register_batch,
    submit_data,
)
from tests.support.persons import ready_person
from tests.support.server import Server, running_server
from tests.support.world import (
    Actor,
    World,
    agreement_terms,
)

NORTHWIND, CONTOSO, REGULATOR = "northwind-bio", "contoso-cmo", "agency-inspectorate"
HELIOS, AUDITOR = "helios-tx", "qa-auditor-llc"
B1 = "NWB101-24-001"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"


@dataclass
class ConsoleWorld:
    """The served world and what the tests name."""

    server: Server
    world: World
    clock: FakeClock
    a1: str
    title: str
    backend: str
    blocked: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def actor(self, party_id: str) -> Actor:
        return self.world[party_id]

    def link(self, who: str | Actor) -> str:
        """A fresh sign-in link, made as ``cmo-ledger login`` makes it."""
        actor = self.world[who] if isinstance(who, str) else who
        return sign_in_link(self.url, actor.party_id, actor.key).url


class _Worlds:
    """The served world of each backend, built on first use and kept for the session, so
    the three modules share one world per backend (their tests assert only on what they
    add, and each test gets a browser context of its own)."""

    def __init__(
        self, request: pytest.FixtureRequest, tmp: pytest.TempPathFactory, stack: ExitStack
    ) -> None:
        self._request = request
        self._tmp = tmp
        self._stack = stack
        self._built: dict[str, ConsoleWorld] = {}

    def get(self, backend: str) -> ConsoleWorld:
        if backend not in self._built:
            self._built[backend] = self._build(backend)
        return self._built[backend]

    def _build(self, backend: str) -> ConsoleWorld:
        directory = self._tmp.mktemp(f"console-{backend}")
        world = self._stack.enter_context(fresh_world(backend, self._request, directory))
        notary, settings = world.notary, world.ledger.settings
        a1 = propose_and_sign(world)
        grant(world, a1, NORTHWIND, REGULATOR)
        register_batch(world, a1, B1)
        submit_data(world, B1, "event", event_records())
        clock = FakeClock(ticking=True)
        server = self._stack.enter_context(running_server(settings, notary.key, clock=clock))
        title = str(agreement_terms()["title"])
        return ConsoleWorld(server, world, clock, str(a1), title, backend)


@pytest.fixture(scope="module")
def console_worlds(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[_Worlds]:
    with ExitStack() as stack:
        yield _Worlds(request, tmp_path_factory, stack)


@pytest.fixture(scope="module", params=BACKENDS)
def console(request: pytest.FixtureRequest, console_worlds: _Worlds) -> ConsoleWorld:
    """The served world on one backend (SQLite, PostgreSQL)."""
    return console_worlds.get(str(request.param))


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "install Debian's chromium (apt-get install chromium): see .ci/run"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def _local_page(browser: Browser, url: str, blocked: list[str]) -> Iterator[Page]:
    """A fresh browser context on ``url`` whose requests to any other host are aborted and
    recorded in ``blocked``."""
    local = urlsplit(url).netloc
    blocked.clear()
    context = browser.new_context(base_url=url, accept_downloads=True)

    def only_local(route: Route) -> None:
        target = urlsplit(route.request.url)
        if target.scheme in ("data", "blob") or target.netloc == local:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, console: ConsoleWorld) -> Iterator[Page]:
    """A fresh browser context (no cookies) whose requests to any other host are aborted
    and recorded in ``console.blocked``."""
    yield from _local_page(browser, console.url, console.blocked)


# -- the batch record's world: batch record, parameter history, grants, verification ----


FABRIKAM = "fabrikam-cmo"
B0 = "NWB101-24-000"
TEMP = "culture temperature"
TITER = "titer at harvest"
TEMP_MINUTES = 3000
"""BR1.TEMP points of B1: more than the chart draws (2,000), so the page downsamples."""
MIGRATED = "migrated from the paper quality agreement QA-2023-07"


@dataclass
class RecordWorld(ConsoleWorld):
    """A served world of its own: A1 in force for 60 days (migrated), three parameters
    defined 30 days ago, the temperature's alert band revised 3 days ago (proposed by
    Contoso, approved by Northwind); batch B1 with events, discrete results (a titer
    below its action limit, then corrected) and BR1.TEMP (with an excursion) and BR1.PH;
    batch B0 with no data, ended, its audit trail reviewed by a person of Northwind. The
    regulator holds a 14-day grant of A1 (every batch), Fabrikam a grant of B0 only, given
    at ``fabrikam_granted``."""

    temperature: str = ""
    revision: str = ""
    fabrikam_granted: datetime = field(default_factory=now_utc)


def _define(world: World, a1: UUID, name: str, since: datetime) -> UUID:
    return define_parameter(world, a1, name, effective_from=format_utc(since), reason=MIGRATED)


def _revise_temperature(world: World, parameter: UUID, since: datetime) -> UUID:
    revision = uuid4()
    world[CONTOSO].submit(
        world.ledger,
        "ParameterRevisionProposed",
        parameter,
        {"revision": str(revision), "changes": {"alert": {"low": "36.7", "high": "37.3"}}},
        meaning="authored",
        reason="six-month review: alert band widened after 12 batches",
    )
    world[NORTHWIND].submit(
        world.ledger,
        "ParameterRevisionApproved",
        parameter,
        {"revision": str(revision), "effective_from": format_utc(since)},
        meaning="approved",
        reason="approved at the review meeting of three days ago",
    )
    return revision


def _review_audit_trail(world: World, batch: str) -> None:
    """Northwind's head of QA, a person, reviews the ended batch's audit trail (R5, R13)."""
    size = world.ledger.head()
    review = {
        "batch": batch,
        "checkpoint_size": size,
        "checkpoint_root": hashlib.sha256(f"root {size}".encode()).hexdigest(),
        "outcome": "no unexplained changes",
    }
    qa = ready_person(world, NORTHWIND, "j.smith")
    qa.submit(world.ledger, "AuditTrailReviewed", batch_subject(batch), review, meaning="reviewed")


def _record_world(
    request: pytest.FixtureRequest, tmp: pytest.TempPathFactory, stack: ExitStack, backend: str
) -> RecordWorld:
    directory = tmp.mktemp(f"console-record-{backend}")
    world = stack.enter_context(fresh_world(backend, request, directory))
    notary, settings = world.notary, world.ledger.settings
    now = now_utc()
    a1 = sign_retroactively(world, format_utc(now - timedelta(days=60)))
    temperature = _define(world, a1, TEMP, now - timedelta(days=30))
    _define(world, a1, "pH", now - timedelta(days=30))
    _define(world, a1, TITER, now - timedelta(days=30))
    revision = _revise_temperature(world, temperature, now - timedelta(days=3))
    grant(world, a1, NORTHWIND, REGULATOR)
    start = now - timedelta(days=4)
    register_batch(world, a1, B1, started_at=start)
    register_batch(world, a1, B0, started_at=start - timedelta(days=20))
    submit_data(world, B1, "event", event_records())
    records = discrete_records("S", sampled_at=now - timedelta(days=2))
    records[1]["value"] = "2.9"  # a titer below its action limit (3.0)
    submit_data(world, B1, "discrete", records)
    temp = continuous_series("BR1.TEMP", start, TEMP_MINUTES, excursion=(1500, 42))
    ph = continuous_series("BR1.PH", start, 600)
    submit_data(world, B1, "continuous", [temp, ph])
    world[CONTOSO].submit(
        world.ledger,
        "DataCorrected",
        batch_subject(B1),
        {
            "submission": str(uuid4()),
            "supersedes": ["S-002"],
            "records": [dict(records[1], value="4.58")],
        },
        meaning="corrected",
        reason="transcription error in the titer (2.9 entered for 4.58)",
    )
    end_batch(world, B1)
    end_batch(world, B0)
    _review_audit_trail(world, B0)
    granted = now_utc()
    grant(world, a1, NORTHWIND, FABRIKAM, batches=[B0])
    clock = FakeClock(ticking=True)
    server = stack.enter_context(running_server(settings, notary.key, clock=clock))
    title = str(agreement_terms()["title"])
    return RecordWorld(
        server,
        world,
        clock,
        str(a1),
        title,
        backend,
        temperature=str(temperature),
        revision=str(revision),
        fabrikam_granted=granted,
    )


_W = TypeVar("_W")


def _built_once_per_backend(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    build: Callable[[pytest.FixtureRequest, pytest.TempPathFactory, ExitStack, str], _W],
) -> Iterator[Callable[[str], _W]]:
    """A getter building one world per backend on first use, all closed at the end."""
    built: dict[str, _W] = {}
    with ExitStack() as stack:

        def get(backend: str) -> _W:
            if backend not in built:
                built[backend] = build(request, tmp_path_factory, stack, backend)
            return built[backend]

        yield get


@pytest.fixture(scope="module")
def record_worlds(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], RecordWorld]]:
    yield from _built_once_per_backend(request, tmp_path_factory, _record_world)


@pytest.fixture(scope="module", params=BACKENDS)
def record(
    request: pytest.FixtureRequest, record_worlds: Callable[[str], RecordWorld]
) -> RecordWorld:
    """The batch record's served world on one backend (SQLite, PostgreSQL)."""
    return record_worlds(str(request.param))


@pytest.fixture
def record_page(browser: Browser, record: RecordWorld) -> Iterator[Page]:
    """As ``page``, on the batch record's world."""
    yield from _local_page(browser, record.url, record.blocked)


# -- the confirm-sign-in step, and the signing world: a pending parameter revision, open
# deviations and an enhancement claim for the sponsor to sign in the browser, with a
# keystore per party for the real command line.


PASSPHRASE = "correct horse battery staple"
CLI_ENV = {"CMO_LEDGER_PASSPHRASE": PASSPHRASE, "CMO_LEDGER_KDF_PROFILE": "min"}
PH = "pH"
DO = "dissolved oxygen"


def open_link(page: Page, link: str) -> PageResponse | None:
    """Open a sign-in link as a person does: the link's page, then *Sign in* on its
    confirmation page (when the link is good; otherwise the refusal page's response)."""
    shown = page.goto(link)
    if shown is None or shown.status != 200 or page.locator("#confirm-sign-in").count() == 0:
        return shown
    with page.expect_navigation() as signed_in:
        page.click("#confirm-sign-in")
    return signed_in.value


@dataclass
class SigningWorld:
    """A1 in force; DO and pH each with a revision Contoso proposed, pending; batch B1
    with open deviations (E-001, E-003 an OOT); an enhancement Contoso claimed. Served on a
    ticking clock; ``keystores`` holds a keystore per party for ``cmo-ledger``."""

    server: Server
    world: World
    settings: Settings
    a1: str
    backend: str
    keystores: dict[str, Path]
    revisions: dict[str, str]
    claim: str

    @property
    def url(self) -> str:
        return self.server.url

    def link(self, who: str) -> str:
        actor = self.world[who]
        return sign_in_link(self.url, actor.party_id, actor.key).url

    def env(self, who: str) -> dict[str, str]:
        """The settings ``cmo-ledger`` reads, to act as ``who`` on this server."""
        return {
            **CLI_ENV,
            "CMO_LEDGER_URL": self.url,
            "CMO_LEDGER_KEY": str(self.keystores[who]),
        }


def _propose(world: World, parameter: UUID, changes: dict[str, object]) -> str:
    revision = uuid4()
    world[CONTOSO].submit(
        world.ledger,
        "ParameterRevisionProposed",
        parameter,
        {"revision": str(revision), "changes": changes},
        meaning="authored",
        reason="six-month review: limits revised",
    )
    return str(revision)


def _signing_world(
    request: pytest.FixtureRequest, tmp: pytest.TempPathFactory, stack: ExitStack, backend: str
) -> SigningWorld:
    directory = tmp.mktemp(f"console-signing-{backend}")
    world = stack.enter_context(fresh_world(backend, request, directory))
    ledger, notary, settings = world.ledger, world.notary, world.ledger.settings
    a1 = propose_and_sign(world)
    revisions = {}
    for name, changes in ((DO, {"alert": {"low": "35", "high": "55"}}), (PH, {"target": "7.0"})):
        revisions[name] = _propose(world, define_parameter(world, a1, name), changes)
    register_batch(world, a1, B1)
    submit_data(world, B1, "event", event_records())
    claim = uuid4()
    world[CONTOSO].submit(
        ledger,
        "EnhancementClaimed",
        claim,
        {
            "agreement": str(a1),
            "title": "Second glucose bolus on day 5",
            "summary": "A second glucose bolus on day 5 raises titer by about 12 %.",
            "commitment": "0" * 64,
            "parameter_versions": [],
            "evidence": [],
            "ownership_claimed": "cmo",
        },
        meaning="authored",
    )
    keys = tmp.mktemp(f"console-keys-{backend}")
    opslimit, memlimit = kdf_limits_from_env(CLI_ENV)
    keystores = {}
    for actor in world.actors.values():
        path = keys / f"{actor.party_id}.key"
        create_keystore(
            path,
            actor.party_id,
            PASSPHRASE,
            signing_key=actor.key,
            opslimit=opslimit,
            memlimit=memlimit,
        )
        keystores[actor.party_id] = path
    server = stack.enter_context(
        running_server(settings, notary.key, clock=FakeClock(ticking=True))
    )
    return SigningWorld(server, world, settings, str(a1), backend, keystores, revisions, str(claim))


@pytest.fixture(scope="module")
def signing_worlds(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], SigningWorld]]:
    yield from _built_once_per_backend(request, tmp_path_factory, _signing_world)


@pytest.fixture(scope="module", params=BACKENDS)
def signing(
    request: pytest.FixtureRequest, signing_worlds: Callable[[str], SigningWorld]
) -> SigningWorld:
    """The signing world on one backend (SQLite, PostgreSQL)."""
    return signing_worlds(str(request.param))
