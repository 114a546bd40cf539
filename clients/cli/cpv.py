"""Continued process verification from the command line (R26).

``cpv`` charts a parameter's results against its baseline, as the ledger knew them at a log
position; ``baseline define|revise`` name the batches that set the control limits;
``baseline ack`` acknowledges a signal (``cpv-signals`` lists them)::

    cmo-ledger baseline define AGREEMENT "titer at harvest" PPQ --batch B1,B2,...,B20
    cmo-ledger cpv AGREEMENT "titer at harvest" --baseline PPQ --known-at 4711 --json
    cmo-ledger cpv AGREEMENT pH --baseline PPQ --statistic MEAN
    cmo-ledger baseline revise AGREEMENT "titer at harvest" PPQ --batch ... --reason R
    cmo-ledger cpv-signals AGREEMENT
    cmo-ledger baseline ack BASELINE_ID --digest DIGEST --comment "deviation DEV-31 opened"
"""

from __future__ import annotations

from typing import Annotated, Any

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
    show_submitted,
    split_values,
)
from clients.cli.completion import AgreementArgumentCompleted, complete_batch, complete_parameter
from ledger.timeutil import canonical_time

__all__ = ["POINT_COLUMNS", "register"]


baseline_app = typer.Typer(
    help="CPV baselines: the batches that set a parameter's control limits.",
    no_args_is_help=True,
)

AgreementArgument = AgreementArgumentCompleted
ParameterArgument = Annotated[
    str, typer.Argument(help="The parameter's name", autocompletion=complete_parameter)
]
NameArgument = Annotated[str, typer.Argument(help="The baseline's name, e.g. PPQ")]
BatchOption = Annotated[
    list[str],
    typer.Option(
        "--batch",
        help="A batch of the baseline (repeat, or comma-separated)",
        autocompletion=complete_batch,
    ),
]

POINT_COLUMNS = ("index", "batch", "validAt", "value", "dispersion", "limitsVersion", "rules")
"""The columns of ``cpv``'s table and CSV: one row per charted batch."""


def _points(analysis: dict[str, Any]) -> list[dict[str, Any]]:
    rules: dict[int, list[int]] = {}
    for violation in analysis["violations"]:
        for index in violation["indexes"]:
            rules.setdefault(index, []).append(violation["rule"])
    return [
        {
            **{name: point[name] for name in POINT_COLUMNS if name in point},
            "rules": ",".join(f"N{rule}" for rule in sorted(set(rules.get(point["index"], [])))),
        }
        for point in analysis["points"]
    ]


def _summary(analysis: dict[str, Any]) -> str:
    limits = analysis["location"]
    charted = analysis["parameter"]
    if analysis.get("statistic"):
        charted = f"the batch {analysis['statistic'].lower()} of {analysis['tag']} ({charted})"
    parts = [
        f"{analysis['chart']} of {charted} ({analysis['unit']}) at position "
        f"{analysis['knownAt']}, baseline {analysis['baseline']} v{analysis['baselineVersion']}",
        f"centre {limits['centre']:.6g}, LCL {limits['lower']:.6g}, UCL {limits['upper']:.6g}",
    ]
    for study in analysis["capability"]:
        cpk, interval = study["cpk"], study["cpk"]["interval"]
        parts.append(
            f"Cpk {cpk['value']:.3f} ({interval['lower']:.3f}..{interval['upper']:.3f}) "
            f"against limits v{study['limitsVersion']}"
        )
    parts.append(f"inputs digest {analysis['inputsDigest']}")
    return "; ".join(parts)


@commands
def cpv(
    key: KeyOption,
    agreement: AgreementArgument,
    parameter: ParameterArgument,
    baseline: Annotated[str, typer.Option("--baseline", help="The baseline's name")],
    valid_from: Annotated[
        str | None, typer.Option("--from", help="Only batches started at or after this time")
    ] = None,
    valid_to: Annotated[
        str | None, typer.Option("--to", help="Only batches started at or before this time")
    ] = None,
    known_at: Annotated[
        int | None,
        typer.Option("--known-at", help="The log position to answer as of (default: now)"),
    ] = None,
    statistic: Annotated[
        str | None,
        typer.Option(
            "--statistic",
            help="For a parameter measured by a continuous tag: the statistic of each "
            "batch's summary to chart (MEAN, MIN, MAX or TIME_OUTSIDE_LIMITS)",
        ),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """A parameter's control chart, Nelson rule violations and capability, as the ledger knew
    them at a position (--json: the whole analysis; --csv and the table: one row per batch)."""
    one_format(as_json=as_json, as_csv=as_csv)
    start = None if valid_from is None else canonical_time(valid_from, field="--from")
    end = None if valid_to is None else canonical_time(valid_to, field="--to")
    with connect(url, key) as client:
        analysis = client.cpv(
            agreement,
            parameter,
            baseline,
            valid_from=start,
            valid_to=end,
            known_at=known_at,
            statistic=None if statistic is None else statistic.upper(),
        )
    if as_json:
        show(analysis, as_json=True)
        return
    show(_points(analysis), as_json=False, as_csv=as_csv, title=_summary(analysis),
         columns=POINT_COLUMNS)  # fmt: skip


@commands
def cpv_signals(
    key: KeyOption,
    agreement: AgreementArgument,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Baselines whose current analysis shows a rule violation or a Cpk below the agreement's
    threshold, and whether each was acknowledged."""
    with connect(url, key) as client:
        signals = client.cpv_signals(agreement)
    columns = ["parameter", "baseline", "acknowledged", "cpk", "reasons", "inputsDigest"]
    show(signals, as_json=as_json, as_csv=as_csv, title="CPV signals", columns=columns)


@baseline_app.command("define")
@commands
def define(
    key: KeyOption,
    agreement: AgreementArgument,
    parameter: ParameterArgument,
    name: NameArgument,
    batch: BatchOption,
    reason: Annotated[str | None, typer.Option(help="Why these batches")] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Name the batches whose results set a parameter's control limits."""
    with connect(url, key) as client:
        stored = client.define_baseline(
            agreement, parameter, name, split_values(batch), reason=reason
        )
    show_submitted(stored, as_json=as_json)


@baseline_app.command("revise")
@commands
def revise(
    key: KeyOption,
    agreement: AgreementArgument,
    parameter: ParameterArgument,
    name: NameArgument,
    batch: BatchOption,
    reason: Annotated[str, typer.Option(help="Why the list changes (required)")],
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Replace a baseline's batch list; analyses as of earlier positions keep the old one."""
    with connect(url, key) as client:
        stored = client.revise_baseline(
            agreement, parameter, name, split_values(batch), reason=reason
        )
    show_submitted(stored, as_json=as_json)


@baseline_app.command("ack")
@commands
def acknowledge(
    key: KeyOption,
    baseline: Annotated[str, typer.Argument(help="The baseline's id (cpv-signals: baselineId)")],
    digest: Annotated[str, typer.Option("--digest", help="The signal's inputs digest")],
    comment: Annotated[str, typer.Option(help="What was done about it")],
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Acknowledge the CPV signal of the analysis with this inputs digest."""
    with connect(url, key) as client:
        stored = client.acknowledge_cpv_signal(baseline, digest, comment)
    show_submitted(stored, as_json=as_json)


def register(app: typer.Typer) -> None:
    """Add ``cpv``, ``cpv-signals`` and ``baseline`` to ``app``."""
    app.command("cpv")(cpv)
    app.command("cpv-signals")(cpv_signals)
    app.add_typer(baseline_app, name="baseline")
