"""The steps of ``cmo-ledger demo`` (see :mod:`clients.demo`).

``run`` prepares the demo's directory, creates the ledger and the party keystores, serves
the API, tells the story through it, waits for a checkpoint covering it, exports the
regulator's evidence bundle (when the exporter is installed), verifies the ledger and
prints what to open.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

from nacl.signing import SigningKey
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from clients.client import LedgerClient
from clients.demo.server import DemoServer, running
from clients.demo.story import Story, StoryTeller
from clients.demo.world import PARTIES
from clients.errors import ServerRefused
from ledger.application import Ledger
from ledger.config import Settings
from ledger.domain.parties import NOTARY
from ledger.errors import ConfigurationError
from ledger.keys import encode_public_key
from ledger.keystore import create_keystore, generated_passphrase_file, kdf_limits_from_env
from ledger.log.verify import verify_ledger

__all__ = ["MARKER", "run"]

MARKER = "demo.json"
ORIGIN = "localhost/cmo-ledger-demo"
# The example queries: a wheel ships docs/queries inside the demo, a checkout has them in docs/.
_SHIPPED = Path(__file__).resolve().parent / "queries"
QUERIES = _SHIPPED if _SHIPPED.is_dir() else _SHIPPED.parents[2] / "docs" / "queries"
_CHECKPOINT_WAIT = 30.0
out = Console()


def run(
    directory: Path, *, fresh: bool, serve: bool, port: int, batches: int, run_minutes: int
) -> bool:
    """Tell the story in ``directory``; False when the ledger did not verify."""
    _prepare(directory, fresh)
    settings, passphrase = _settings(directory)
    notary_key = _create_ledger(settings, passphrase)
    keys = _party_keys(settings, passphrase)
    with running(settings, notary_key, port=port) as server:
        out.print(f"serving the ledger at [bold]{server.url}/graphql[/bold]")
        story = _tell(server.url, notary_key, keys, batches, run_minutes)
        (directory / MARKER).write_text(json.dumps(story.as_json(), indent=2) + "\n", "utf-8")
        _await_checkpoint(server.url, notary_key)
        bundle = _export_evidence(server.url, keys, story, directory)
        ok = _verify(settings)
        _print_guide(server, settings, story, bundle)
        if ok and serve:
            out.print("\n[bold]serving[/bold]: press Ctrl-C to stop")
            _serve_until_interrupted(server)
    return ok


def _prepare(directory: Path, fresh: bool) -> None:
    """An empty directory for the demo; with ``--fresh``, only an earlier demo's is emptied."""
    if not directory.exists() or not any(directory.iterdir()):
        directory.mkdir(parents=True, exist_ok=True)
        return
    if not fresh:
        raise ConfigurationError(
            f"{directory} is not empty: pass --fresh to replace an earlier demo, "
            "or choose another --dir",
            field="--dir",
        )
    if not (directory / MARKER).exists():
        raise ConfigurationError(
            f"{directory} holds no earlier demo ({MARKER} is missing): "
            "--fresh empties only a demo's directory; choose another --dir",
            field="--dir",
        )
    shutil.rmtree(directory)
    directory.mkdir(parents=True)


def _settings(directory: Path) -> tuple[Settings, str]:
    """The environment's settings for an embedded ledger in ``directory``, and the passphrase."""
    base = Settings.from_env()
    if base.passphrase:
        passphrase = base.passphrase
    else:
        passphrase, path = generated_passphrase_file(directory)
        out.print(f"keystores are protected by the passphrase in {path}")
    settings = replace(
        base,
        database_url=f"sqlite:///{directory.resolve() / 'ledger.db'}",
        data_dir=directory,
        passphrase=passphrase,
    )
    return settings, passphrase


def _kdf(settings: Settings) -> tuple[int, int]:
    return kdf_limits_from_env({"CMO_LEDGER_KDF_PROFILE": settings.kdf_profile})


def _create_ledger(settings: Settings, passphrase: str) -> SigningKey:
    key = SigningKey.generate()
    opslimit, memlimit = _kdf(settings)
    create_keystore(
        settings.notary_keystore,
        NOTARY,
        passphrase,
        signing_key=key,
        opslimit=opslimit,
        memlimit=memlimit,
    )
    Ledger.initialise(settings, ORIGIN, encode_public_key(key)).close()
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
    columns = (TextColumn("{task.description:<52}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=out) as progress:
        task = progress.add_task("starting", total=batches)

        def report(step: str, done: int) -> None:
            progress.update(task, description=step, completed=done)
            if not step.startswith("batch "):
                progress.console.print(f"  [green]✓[/green] {step}")

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
        path: Path = export_evidence(client, story.inspected_batch, directory / "evidence")
    return path


def _verify(settings: Settings) -> bool:
    ledger = Ledger.open(settings)
    try:
        report = verify_ledger(ledger, workers=1)
    finally:
        ledger.close()
    for problem in report.problems[:20]:
        out.print(f"  {problem}")
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
        ("verify again", f"cmo-ledger verify --database {settings.database_url}"),
    )
    out.print("\n[bold]What to open[/bold]")
    for name, text in lines:
        out.print(f"  {name + ':':<20}{text}", soft_wrap=True)


def _serve_until_interrupted(server: DemoServer) -> None:
    try:
        server.wait()
    except KeyboardInterrupt:
        out.print("stopping")
