"""The steps of ``cmo-ledger demo`` (see :mod:`clients.demo`).

``run`` works out where the demo writes (the settings' database URL and data directory
when set) and says so, prepares the demo's directory, creates the ledger and the party
keystores, serves the API, tells the story through it, waits for a checkpoint covering
it, exports the regulator's evidence bundle (when the exporter is installed), verifies
the ledger and prints what to open.

The demo only ever starts a new ledger: a database named by ``CMO_LEDGER_DATABASE_URL``
must not hold one yet (a SQLite file outside the demo's directory must not exist), since
``--fresh`` empties the demo's directory and nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from nacl.signing import SigningKey
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import create_engine, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from clients.client import LedgerClient
from clients.demo import DATA_DIR_VARIABLE, demo_directory
from clients.demo.server import DemoServer, running
from clients.demo.story import Story, StoryTeller
from clients.demo.world import PARTIES
from clients.errors import ServerRefused
from ledger.application import Ledger
from ledger.config import PREFIX, Settings
from ledger.domain.parties import NOTARY
from ledger.errors import ConfigurationError
from ledger.keys import encode_public_key
from ledger.keystore import create_keystore, generated_passphrase_file, kdf_limits_from_env
from ledger.log.meta import meta_table
from ledger.log.verify import verify_ledger

__all__ = ["MARKER", "Placement", "placement", "run"]

MARKER = "demo.json"
ORIGIN = "localhost/cmo-ledger-demo"
# The example queries: a wheel ships docs/queries inside the demo, a checkout has them in docs/.
_SHIPPED = Path(__file__).resolve().parent / "queries"
QUERIES = _SHIPPED if _SHIPPED.is_dir() else _SHIPPED.parents[2] / "docs" / "queries"
_CHECKPOINT_WAIT = 30.0
DATABASE_VARIABLE = PREFIX + "DATABASE_URL"
out = Console()


@dataclass(frozen=True)
class Placement:
    """Where the demo writes, and which option or setting chose each place."""

    directory: Path
    directory_from: str
    database_url: str
    database_from: str

    @property
    def sqlite_file(self) -> Path | None:
        """The database file of a SQLite ledger, else ``None``."""
        return Settings(database_url=self.database_url).sqlite_path()

    def in_directory(self, path: Path) -> bool:
        return path.resolve().is_relative_to(self.directory.resolve())


def placement(directory: Path | None, environ: Mapping[str, str] | None = None) -> Placement:
    """Where the demo writes: ``directory`` (else the data directory setting, else
    ``./.cmo-ledger-demo``) and the database URL setting (else ``ledger.db`` there)."""
    env = os.environ if environ is None else environ
    folder, folder_from = demo_directory(directory, env)
    base = Settings.from_env(env)  # refuses a malformed URL, naming the variable
    if env.get(DATABASE_VARIABLE):
        return Placement(folder, folder_from, base.database_url, DATABASE_VARIABLE)
    url = f"sqlite:///{folder.resolve() / 'ledger.db'}"
    return Placement(folder, folder_from, url, "the default, in the demo's directory")


def run(
    directory: Path | None,
    *,
    fresh: bool,
    serve: bool,
    port: int,
    batches: int,
    run_minutes: int,
) -> bool:
    """Tell the story in ``directory`` (``None``: as the settings say); False when the
    ledger did not verify."""
    where = placement(directory)
    _check_database(where, fresh)
    _prepare(where, fresh)
    _say_where(where)
    folder = where.directory
    settings, passphrase = _settings(where)
    notary_key = _create_ledger(settings, passphrase)
    keys = _party_keys(settings, passphrase)
    with running(settings, notary_key, port=port) as server:
        out.print(f"serving the ledger at [bold]{escape(server.url)}/graphql[/bold]")
        story = _tell(server.url, notary_key, keys, batches, run_minutes)
        (folder / MARKER).write_text(json.dumps(story.as_json(), indent=2) + "\n", "utf-8")
        _await_checkpoint(server.url, notary_key)
        bundle = _export_evidence(server.url, keys, story, folder)
        ok = _verify(settings)
        _print_guide(server, settings, story, bundle)
        if ok and serve:
            out.print("\n[bold]serving[/bold]: press Ctrl-C to stop")
            _serve_until_interrupted(server)
    return ok


def _prepare(where: Placement, fresh: bool) -> None:
    """An empty directory for the demo; with ``--fresh``, only an earlier demo's is emptied."""
    directory = where.directory
    if not directory.exists() or not any(directory.iterdir()):
        directory.mkdir(parents=True, exist_ok=True)
        return
    # A refusal names what chose the directory, so that the user knows what to change.
    chosen = DATA_DIR_VARIABLE if where.directory_from == DATA_DIR_VARIABLE else "--dir"
    other = f"set {chosen} to another directory" if chosen != "--dir" else "choose another --dir"
    if not fresh:
        raise ConfigurationError(
            f"{directory} is not empty: pass --fresh to replace an earlier demo, or {other}",
            field=chosen,
        )
    if not (directory / MARKER).exists():
        raise ConfigurationError(
            f"{directory} holds no earlier demo ({MARKER} is missing): "
            f"--fresh empties only a demo's directory; {other}",
            field=chosen,
        )
    shutil.rmtree(directory)
    directory.mkdir(parents=True)


def _check_database(where: Placement, fresh: bool) -> None:
    """Refuse, before anything is written or emptied, a database that holds a ledger."""
    if where.database_from != DATABASE_VARIABLE:
        return
    path = where.sqlite_file
    if path is not None and where.in_directory(path):
        return  # the demo's directory is empty, or --fresh empties it
    if path is not None and path.exists():
        raise ConfigurationError(
            f"{path} exists: the demo starts a new ledger and never overwrites a file "
            f"(--fresh empties only the demo's directory); remove it, name a new file, or "
            f"unset {DATABASE_VARIABLE} to keep the ledger in {where.directory}/ledger.db",
            field=DATABASE_VARIABLE,
        )
    if path is None and _holds_ledger(where.database_url):
        raise ConfigurationError(
            f"{_shown(where.database_url)} already holds a ledger: the demo starts a new "
            f"one and never empties a database{' (not even with --fresh)' if fresh else ''}; "
            f"drop and create it again, name another, or unset {DATABASE_VARIABLE}",
            field=DATABASE_VARIABLE,
        )


def _holds_ledger(url: str) -> bool:
    """True when the database at ``url`` holds a ledger's identity; it is only read."""
    engine = create_engine(Settings(database_url=url).eventsourcing_env()["SQLALCHEMY_URL"])
    try:
        if not inspect(engine).has_table(meta_table.name):
            return False
        with engine.connect() as conn:
            found = conn.execute(select(meta_table.c.value).where(meta_table.c.name == "origin"))
            return found.first() is not None
    except SQLAlchemyError as exc:
        raise ConfigurationError(
            f"cannot read {_shown(url)} ({type(exc).__name__}): check that the database "
            f"exists and is reachable, or unset {DATABASE_VARIABLE}",
            field=DATABASE_VARIABLE,
        ) from None
    finally:
        engine.dispose()


def _shown(url: str) -> str:
    """A database URL fit to print: its password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def _say_where(where: Placement) -> None:
    """Print where the demo writes, and what chose each place."""
    database, directory = _shown(where.database_url), where.directory.resolve()
    out.print(
        f"the demo's ledger: {escape(database)} ({escape(where.database_from)})", soft_wrap=True
    )
    out.print(
        f"the demo's directory: {escape(str(directory))} ({escape(where.directory_from)}): "
        f"keystores, passphrase, story ids ({MARKER}) and the evidence bundle",
        soft_wrap=True,
    )


def _settings(where: Placement) -> tuple[Settings, str]:
    """The environment's settings for the demo's ledger, and the keystores' passphrase."""
    base = Settings.from_env()
    if base.passphrase:
        passphrase = base.passphrase
    else:
        passphrase, path = generated_passphrase_file(where.directory)
        out.print(f"keystores are protected by the passphrase in {escape(str(path))}")
    settings = replace(
        base,
        database_url=where.database_url,
        data_dir=where.directory,
        passphrase=passphrase,
    )
    return settings, passphrase


def _kdf(settings: Settings) -> tuple[int, int]:
    return kdf_limits_from_env({"CMO_LEDGER_KDF_PROFILE": settings.kdf_profile})


def _create_ledger(settings: Settings, passphrase: str) -> SigningKey:
    key = SigningKey.generate()
    # The ledger first: a database another process filled since the check is refused
    # before the notary's keystore is written.
    Ledger.initialise(settings, ORIGIN, encode_public_key(key)).close()
    opslimit, memlimit = _kdf(settings)
    create_keystore(
        settings.notary_keystore,
        NOTARY,
        passphrase,
        signing_key=key,
        opslimit=opslimit,
        memlimit=memlimit,
    )
    return key


def _party_keys(settings: Settings, passphrase: str) -> dict[str, SigningKey]:
    """A new key per party, each kept in ``keys/<party>.key`` for the command line."""
    opslimit, memlimit = _kdf(settings)
    folder = settings.data_dir / "keys"
    folder.mkdir(exist_ok=True)
    keys = {}
    for party in PARTIES:
        keys[party] = SigningKey.generate()
        create_keystore(
            folder / f"{party}.key",
            party,
            passphrase,
            signing_key=keys[party],
            opslimit=opslimit,
            memlimit=memlimit,
        )
    return keys


def _tell(
    url: str, notary_key: SigningKey, keys: dict[str, SigningKey], batches: int, minutes: int
) -> Story:
    columns = (
        TextColumn("{task.description:<52}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
    )
    with Progress(*columns, TimeElapsedColumn(), console=out) as progress:
        task = progress.add_task("starting", total=batches)

        def report(step: str, done: int) -> None:
            progress.update(task, description=step, completed=done)
            if not step.startswith("batch "):
                progress.console.print(f"  [green]✓[/green] {escape(step)}")

        teller = StoryTeller(
            url, notary_key, keys, batches=batches, run_minutes=minutes, progress=report
        )
        try:
            return teller.tell()
        finally:
            teller.close()


def _await_checkpoint(url: str, notary_key: SigningKey) -> None:
    """Wait until a signed checkpoint covers every event (the notary signs them each second)."""
    query = "{ ledger { treeSize } }"
    deadline = time.monotonic() + _CHECKPOINT_WAIT
    with LedgerClient(url, NOTARY, notary_key) as notary:
        while time.monotonic() < deadline:
            size = notary.graphql(query)["ledger"]["treeSize"]
            try:
                signed = notary.graphql("{ checkpoint { treeSize } }")["checkpoint"]["treeSize"]
            except ServerRefused:
                signed = -1
            if signed == size and size > 0:
                return
            time.sleep(0.2)
    out.print("[yellow]no checkpoint covers the whole log yet: verify may report it[/yellow]")


def _export_evidence(
    url: str, keys: dict[str, SigningKey], story: Story, directory: Path
) -> Path | None:
    """The regulator's evidence bundle for the inspected batch, when the exporter exists."""
    try:
        from clients.evidence import export_evidence
    except ImportError:
        return None
    regulator = "agency-inspectorate"
    with LedgerClient(url, regulator, keys[regulator]) as client:
        path: Path = export_evidence(
            client, story.inspected_batch, directory / "evidence", key=keys[regulator]
        )
    return path


def _verify(settings: Settings) -> bool:
    ledger = Ledger.open(settings)
    try:
        report = verify_ledger(ledger, workers=1)
    finally:
        ledger.close()
    for problem in report.problems[:20]:
        out.print(f"  {escape(str(problem))}")
    if report.ok:
        out.print(
            f"[green]verified[/green]: {report.events} events and "
            f"{report.checkpoints} checkpoints (signatures, keys, chains, tree)"
        )
    else:
        out.print(f"[red]verification FAILED[/red]: {len(report.errors)} problems")
    return report.ok


def _print_guide(server: DemoServer, settings: Settings, story: Story, bundle: Path | None) -> None:
    directory, url = settings.data_dir, server.url
    lines = [
        ("GraphiQL", f"{url}/graphql (unsigned: the `ledger` field only)"),
        ("checkpoint", f"{url}/checkpoint"),
        ("example queries", f"{QUERIES}/*.graphql (docs/demo.md)"),
        (
            "run one as a party",
            f"python -m clients.demo.query {QUERIES / 'trace_batch.graphql'} "
            f"--as agency-inspectorate --var batch={story.inspected_batch} "
            f"--dir {directory} --url {url}",
        ),
        ("party keystores", f"{directory / 'keys'}/<party>.key (cmo-ledger ... --key)"),
        ("story ids", str(directory / MARKER)),
    ]
    if bundle is not None:
        lines.append(("evidence bundle", f"{bundle} (cmo-ledger verify-bundle {bundle})"))
    lines.append(
        ("verify again", f"cmo-ledger verify --database {_shown(settings.database_url)}"),
    )
    out.print("\n[bold]What to open[/bold]")
    for name, text in lines:
        out.print(f"  {escape(name + ':'):<20}{escape(text)}", soft_wrap=True)


def _serve_until_interrupted(server: DemoServer) -> None:
    try:
        server.wait()
    except KeyboardInterrupt:
        out.print("stopping")
