"""Change control and CAPAs on the command line: ``changes`` and ``capas``.

Each prints a table, ``--json`` (schemas ``docs/schema/cli/changes.json`` and
``capas.json``) or ``--csv`` (the table's columns, one row per item of the JSON list). An
agreement or batch the caller may not see is refused naming ``--agreement`` or ``--batch``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from clients.cli.common import (
    DEFAULT_URL,
    CsvOption,
    JsonOption,
    KeyOption,
    UrlOption,
    commands,
    connect,
    one_format,
    show,
)
from clients.cli.completion import AgreementOption, BatchOption
from clients.cli.questions import naming_options

__all__ = ["CAPA_COLUMNS", "CHANGE_COLUMNS", "register"]

CHANGE_COLUMNS = [
    "changeId",
    "agreementId",
    "title",
    "ecImpact",
    "reportingCategory",
    "affectedParameters",
    "status",
    "proposedBy",
    "proposedAt",
    "decidedBy",
    "decidedAt",
    "implementedAt",
]
CAPA_COLUMNS = [
    "capaId",
    "agreementId",
    "batch",
    "records",
    "owner",
    "status",
    "openedBy",
    "openedAt",
    "closedAt",
    "effectivenessCheck",
]

OpenOption = Annotated[bool, typer.Option("--open", help="Only open ones")]


@commands
def changes(
    key: KeyOption,
    agreement: AgreementOption = None,
    open_only: OpenOption = False,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Change proposals: EC impact, reporting category, decision and implementation (R22)."""
    one_format(as_json=as_json, as_csv=as_csv)
    with connect(url, key) as client, naming_options():
        found = client.changes(agreement, open=True if open_only else None)
    title = "open changes" if open_only else "changes"
    show(found, as_json=as_json, as_csv=as_csv, title=title, columns=CHANGE_COLUMNS)


@commands
def capas(
    key: KeyOption,
    agreement: AgreementOption = None,
    batch: BatchOption = None,
    open_only: OpenOption = False,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """CAPAs: the batch records each addresses, its owner and its effectiveness check."""
    one_format(as_json=as_json, as_csv=as_csv)
    with (
        connect(url, key) as client,
        naming_options(),
    ):
        found = client.capas(agreement, batch=batch, open=True if open_only else None)
    title = "open CAPAs" if open_only else "CAPAs"
    show(found, as_json=as_json, as_csv=as_csv, title=title, columns=CAPA_COLUMNS)


def register(app: typer.Typer) -> None:
    """Add ``changes`` and ``capas`` to ``app``."""
    app.command("changes")(changes)
    app.command("capas")(capas)
