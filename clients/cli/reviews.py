"""Enhancement claims and periodic reviews, the steps that need both parties.

``claim`` commits to a confidential dossier (the salt goes to a file kept with it);
``claim ack|dispute`` answer a claim; ``claim disclose`` reveals the dossier. A resolution
and a review carry the counterparty's countersignature, made first and handed over as a
file::

    counterparty:  cmo-ledger claim countersign ENHANCEMENT --owner joint --out resolution.json
    other party:   cmo-ledger claim resolve --countersignature resolution.json

    counterparty:  cmo-ledger review countersign --agreement A --period-end ... --out review.json
    other party:   cmo-ledger review complete --countersignature review.json

The file holds ``{"type", "subject", "body", "countersignature"}``: what was countersigned
and the countersignature, so the submitting party can read what it is about to sign.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
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
    read_json,
    show,
    show_submitted,
    split_values,
)
from clients.cli.completion import complete_agreement
from clients.cli.questions import CLAIM_SHOW_COLUMNS, find_claim
from clients.client import commit_dossier, review_body
from clients.errors import ClientError
from ledger.timeutil import canonical_time

__all__ = ["register"]

claim_app = typer.Typer(
    help="Claim an enhancement (options below), or answer one (commands below).",
    invoke_without_command=True,
)
review_app = typer.Typer(help="Periodic reviews, signed by both parties.", no_args_is_help=True)

EnhancementArgument = Annotated[str, typer.Argument(help="The enhancement's id")]
OutOption = Annotated[Path, typer.Option("--out", help="Write the countersignature here")]
CountersignatureOption = Annotated[
    Path, typer.Option("--countersignature", help="The counterparty's countersignature file")
]


@claim_app.callback()
@commands
def claim(
    ctx: typer.Context,
    key: Annotated[
        Path | None,
        typer.Option("--key", help="Your party keystore", envvar="CMO_LEDGER_KEY"),
    ] = None,
    agreement: Annotated[
        str | None, typer.Option(help="The agreement's id", autocompletion=complete_agreement)
    ] = None,
    title: Annotated[str | None, typer.Option(help="The enhancement's title")] = None,
    summary: Annotated[str | None, typer.Option(help="A summary anyone may read")] = None,
    dossier: Annotated[Path | None, typer.Option(help="The confidential dossier file")] = None,
    ownership: Annotated[str | None, typer.Option(help="sponsor, cmo or joint")] = None,
    parameter: Annotated[
        list[str] | None, typer.Option(help="PARAMETER_ID:LIMITS_VERSION it builds on (repeat)")
    ] = None,
    evidence: Annotated[
        list[str] | None, typer.Option(help="BATCH:SUBMISSION_ID supporting it (repeat)")
    ] = None,
    salt_out: Annotated[
        Path | None, typer.Option(help="Where to keep the salt (default: DOSSIER.salt)")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Claim an enhancement, committing to its dossier without revealing it."""
    if ctx.invoked_subcommand is not None:
        return
    needed = {"--key": key, "--agreement": agreement, "--title": title}
    needed |= {"--summary": summary, "--dossier": dossier, "--ownership": ownership}
    missing = [name for name, value in needed.items() if value is None]
    if missing:
        raise ClientError(
            f"a claim needs {', '.join(missing)}: see `cmo-ledger claim --help`", field=missing[0]
        )
    assert key and agreement and title and summary and dossier and ownership
    commitment, salt = commit_dossier(dossier.read_bytes())
    salt_file = salt_out or dossier.with_name(dossier.name + ".salt")
    _keep_salt(salt_file, salt)
    with connect(url, key) as client:
        stored = client.claim_enhancement(
            agreement,
            title=title,
            summary=summary,
            commitment=commitment,
            ownership_claimed=ownership,
            parameter_versions=[_pair(p, "parameter", "version") for p in parameter or []],
            evidence=[_pair(e, "batch", "submission") for e in evidence or []],
        )
    row = {"enhancement": stored.subject, "position": stored.position, "salt_file": str(salt_file)}
    show({**row, "commitment": commitment}, as_json=as_json, title="claimed")


def _keep_salt(path: Path, salt: str) -> None:
    # Never overwrite: an earlier claim's salt is the only way to disclose its dossier.
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(salt + "\n")
    except FileExistsError:
        raise ClientError(
            f"{path} exists and may hold an earlier claim's salt: move it, or pass --salt-out",
            field="--salt-out",
        ) from None


def _pair(text: str, first: str, second: str) -> dict[str, Any]:
    left, sep, right = text.rpartition(":")
    if not sep or not left or not right:
        raise ClientError(f"expected {first.upper()}:{second.upper()}, not {text!r}", field=first)
    return {first: left, second: int(right) if second == "version" else right}


@claim_app.command("ack")
@commands
def claim_ack(
    key: KeyOption,
    enhancement: EnhancementArgument,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Accept the other party's claim as made."""
    with connect(url, key) as client:
        show_submitted(client.acknowledge_enhancement(enhancement), as_json=as_json)


@claim_app.command("dispute")
@commands
def claim_dispute(
    key: KeyOption,
    enhancement: EnhancementArgument,
    reason: Annotated[str, typer.Option(help="Why the claim is disputed")],
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Dispute the other party's claim."""
    with connect(url, key) as client:
        show_submitted(client.dispute_enhancement(enhancement, reason=reason), as_json=as_json)


@claim_app.command("countersign")
@commands
def claim_countersign(
    key: KeyOption,
    enhancement: EnhancementArgument,
    owner: Annotated[str, typer.Option(help="The owner both parties agreed: sponsor, cmo, joint")],
    out: OutOption,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Countersign the resolution the other party will submit (`claim resolve`)."""
    with connect(url, key) as client:
        countersignature = client.countersign_resolution(enhancement, owner)
    _write(out, "EnhancementResolved", enhancement, {"owner": owner}, countersignature)


@claim_app.command("resolve")
@commands
def claim_resolve(
    key: KeyOption,
    countersignature: CountersignatureOption,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Record the owner both parties agreed, with the other party's countersignature."""
    subject, body, cosig = _read(countersignature, "EnhancementResolved")
    with connect(url, key) as client:
        stored = client.resolve_enhancement(subject, str(body.get("owner")), cosig)
        show_submitted(stored, as_json=as_json)


@claim_app.command("disclose")
@commands
def claim_disclose(
    key: KeyOption,
    enhancement: EnhancementArgument,
    dossier: Annotated[Path, typer.Option(help="The dossier committed to")],
    salt_file: Annotated[
        Path | None, typer.Option(help="The salt file (default: DOSSIER.salt)")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Reveal the dossier: anyone can then check it against the claim's commitment."""
    salt = (salt_file or dossier.with_name(dossier.name + ".salt")).read_text("utf-8").strip()
    with connect(url, key) as client:
        show_submitted(
            client.disclose_enhancement(enhancement, dossier.read_bytes(), salt), as_json=as_json
        )


@review_app.command("countersign")
@commands
def review_countersign(
    key: KeyOption,
    agreement: Annotated[
        str, typer.Option(help="The agreement reviewed", autocompletion=complete_agreement)
    ],
    period_end: Annotated[str, typer.Option(help="End of the period reviewed, RFC 3339")],
    next_due: Annotated[str, typer.Option(help="When the next review is due, RFC 3339")],
    outcome: Annotated[str, typer.Option(help="What the review concluded")],
    out: OutOption,
    confirmed: Annotated[
        list[str] | None, typer.Option(help="Parameter ids confirmed (repeat)")
    ] = None,
    revised: Annotated[
        list[str] | None, typer.Option(help="Parameter ids revised (repeat)")
    ] = None,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Countersign a review the other party will submit (`review complete`)."""
    review_id = str(uuid.uuid4())
    body = review_body(
        agreement,
        period_end=canonical_time(period_end, field="--period-end"),
        outcome=outcome,
        next_due=canonical_time(next_due, field="--next-due"),
        parameters_confirmed=split_values(confirmed or []),
        parameters_revised=split_values(revised or []),
    )
    with connect(url, key) as client:
        countersignature = client.countersign_review(review_id, body)
    _write(out, "ReviewCompleted", review_id, body, countersignature)


@review_app.command("complete")
@commands
def review_complete(
    key: KeyOption,
    countersignature: CountersignatureOption,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Record a review, as countersigned by the other party."""
    subject, body, cosig = _read(countersignature, "ReviewCompleted")
    with connect(url, key) as client:
        show_submitted(client.complete_review(subject, body, cosig), as_json=as_json)


def _write(
    out: Path, type_: str, subject: str, body: dict[str, Any], countersignature: dict[str, str]
) -> None:
    document = {
        "type": type_,
        "subject": subject,
        "body": body,
        "countersignature": countersignature,
    }
    out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    typer.echo(f"countersignature for {type_} {subject} written to {out}")


def _read(path: Path, type_: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    document = read_json(path, "countersignature")
    if not isinstance(document, dict) or document.get("type") != type_:
        raise ClientError(
            f"{path} is not a countersignature for {type_}: ask the other party for one",
            field=str(path),
        )
    try:
        return str(document["subject"]), dict(document["body"]), dict(document["countersignature"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ClientError(
            f"{path} lacks subject, body or countersignature: ask for a new one", field=str(path)
        ) from exc


def register(app: typer.Typer) -> None:
    """Add ``claim`` and ``review`` to ``app``."""
    app.add_typer(claim_app, name="claim")
    app.add_typer(review_app, name="review")


@claim_app.command("show")
@commands
def claim_show(
    key: KeyOption,
    enhancement: EnhancementArgument,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """One claim: what was claimed, the answers, the owner, and whether the disclosed
    dossier matches the commitment."""
    one_format(as_json=as_json, as_csv=as_csv)
    with connect(url, key) as client:
        claim = find_claim(client, enhancement)
    if as_json:
        show(claim, as_json=True)
        return
    show(claim, as_json=False, as_csv=as_csv, title="claim", columns=CLAIM_SHOW_COLUMNS)
