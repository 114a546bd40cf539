"""Party-facing commands: ``party admit``, ``key add|revoke``, ``agreement ...``, ``grant``,
``revoke`` and ``witness cosign``; :func:`register` adds them and the other families
(``clients.cli.data``, ``clients.cli.reviews``, ``clients.cli.queries``) to ``cmo-ledger``.

Each talks to a server (``--url``) as the party of a keystore (``--key``), prints a table
or ``--json``, and exits 1 with one line saying why when anything is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from clients.cli import data as cli_data
from clients.cli import queries as cli_queries
from clients.cli import reviews as cli_reviews
from clients.cli.common import (
    DEFAULT_URL,
    CsvOption,
    JsonOption,
    KeyOption,
    UrlOption,
    commands,
    connect,
    console,
    one_format,
    read_json,
    show,
    show_submitted,
    split_values,
)
from clients.cli.completion import complete_agreement, complete_batch, complete_parameter
from clients.cli.questions import naming_options
from clients.client import LedgerClient
from clients.errors import ClientError
from ledger.timeutil import canonical_time

__all__ = ["register", "show_keys_in_force"]

party_app = typer.Typer(help="Admit parties (the notary).", no_args_is_help=True)
key_app = typer.Typer(help="Add or revoke your keys.", no_args_is_help=True)
agreement_app = typer.Typer(help="Quality agreements: propose, sign, amend, show.")
witness_app = typer.Typer(help="Witness the ledger's checkpoints.", no_args_is_help=True)
agreement_app.info.no_args_is_help = True


@party_app.command("admit")
@commands
def party_admit(
    key: KeyOption,
    party: Annotated[str, typer.Option(help="The new party's id, e.g. contoso-cmo")],
    legal_name: Annotated[str, typer.Option(help="Its legal name")],
    role: Annotated[str, typer.Option(help="sponsor, cmo, regulator or auditor")],
    public_key: Annotated[str, typer.Option(help="Its first key, ed25519:<base64>")],
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Admit an organisation with its role and first key (notary keystore)."""
    with connect(url, key) as client:
        show_submitted(client.admit_party(party, legal_name, role, public_key), as_json=as_json)


@key_app.command("add")
@commands
def key_add(
    key: KeyOption,
    public_key: Annotated[str, typer.Option(help="The key to add, ed25519:<base64>")],
    purpose: Annotated[str, typer.Option(help="party or source-system")] = "party",
    source: Annotated[str | None, typer.Option(help="The source system it vouches for")] = None,
    expires_at: Annotated[
        str | None,
        typer.Option(help="When it expires, RFC 3339 (default: two years after it is added)"),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Add a party key or a source-system key; rotate a key by adding the next one before
    the current one expires."""
    with connect(url, key) as client:
        until = _time(expires_at, "--expires-at")
        added = client.add_key(public_key, purpose=purpose, source=source, expires_at=until)
        show_submitted(added, as_json=as_json)


@key_app.command("revoke")
@commands
def key_revoke(
    key: KeyOption,
    key_id: Annotated[str, typer.Argument(help="Id of the key to revoke (32 hex)")],
    reason: Annotated[str, typer.Option(help="Why the key is revoked")],
    compromised_since: Annotated[
        str | None, typer.Option(help="Flag signatures from this RFC 3339 time on")
    ] = None,
    party: Annotated[str | None, typer.Option(help="Another party's key (notary)")] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Revoke a key; signatures at or after --compromised-since are flagged."""
    with connect(url, key) as client:
        since = _time(compromised_since, "--compromised-since")
        stored = client.revoke_key(key_id, reason=reason, compromised_since=since, party=party)
        show_submitted(stored, as_json=as_json)


def _time(value: str | None, option: str) -> str | None:
    """A time given on the command line, as the ledger stores it (refused naming ``option``)."""
    return None if value is None else canonical_time(value, field=option)


def _terms(path: Path) -> dict[str, Any]:
    terms = read_json(path, "terms")
    if not isinstance(terms, dict):
        raise ClientError(f"{path} must hold the terms as a JSON object", field=str(path))
    return terms


TermsArgument = Annotated[Path, typer.Argument(help="The terms, a JSON file (docs/agreements.md)")]
AgreementArgument = Annotated[
    str, typer.Argument(help="The agreement's id", autocompletion=complete_agreement)
]


@agreement_app.command("propose")
@commands
def agreement_propose(
    key: KeyOption,
    terms: TermsArgument,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Propose an agreement; its id is the subject printed."""
    with connect(url, key) as client:
        show_submitted(client.propose_agreement(_terms(terms)), as_json=as_json)


@agreement_app.command("sign")
@commands
def agreement_sign(
    key: KeyOption,
    agreement: AgreementArgument,
    amendment: Annotated[
        bool, typer.Option("--amendment", help="Sign the pending amendment instead")
    ] = False,
    effective_from: Annotated[
        str | None,
        typer.Option(
            help="In force from this earlier time (RFC 3339): an agreement signed on paper "
            "before it was recorded here; give --reason"
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="Why the terms are in force from --effective-from")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Sign the other party's proposal (or, with --amendment, its pending amendment)."""
    since = _time(effective_from, "--effective-from")
    if amendment and since is not None:
        raise ClientError(
            "an amendment is in force from its signature: leave out --effective-from",
            field="--effective-from",
        )
    with connect(url, key) as client:
        if amendment:
            stored = client.sign_amendment(agreement)
        else:
            stored = client.sign_agreement(agreement, effective_from=since, reason=reason)
        show_submitted(stored, as_json=as_json)


@agreement_app.command("amend")
@commands
def agreement_amend(
    key: KeyOption,
    agreement: AgreementArgument,
    reason: Annotated[str, typer.Option(help="Why the terms change, or why you reject them")],
    terms: OptionalTermsArgument = None,
    reject: RejectOption = False,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Propose new terms (the full terms); they take effect when the other party signs.
    An amendment may add data classes or retire some (data delivered under a retired class
    stays readable). With --reject (and no FILE), reject the other party's pending
    amendment, or withdraw your own."""
    one_format(as_json=as_json, as_csv=as_csv)
    proposed = _amendment(terms, reject=reject)
    with connect(url, key) as client, naming_options(_AGREEMENT_FIELDS):
        if proposed is None:
            stored = client.reject_amendment(agreement, reason=reason)
        else:
            stored = client.amend_agreement(agreement, proposed, reason=reason)
        show_submitted(stored, as_json=as_json, as_csv=as_csv)


@agreement_app.command("show")
@commands
def agreement_show(
    key: KeyOption,
    agreement: AgreementArgument,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Show an agreement: its status, the terms in force and its amendments."""
    with connect(url, key) as client:
        found = client.agreement(agreement)
    if as_json:
        show(found, as_json=True)
        return
    summary = {k: v for k, v in found.items() if k not in ("terms", "amendments")}
    show(summary, as_json=False, title="agreement")
    show(found["amendments"], as_json=False, title="amendments")


@commands
def grant(
    key: KeyOption,
    agreement: AgreementArgument,
    grantee: Annotated[str, typer.Option(help="The party given access")],
    purpose: Annotated[str, typer.Option(help="Why it may see the data")],
    data_class: Annotated[
        list[str],
        typer.Option("--class", help="A data class the agreement defines, e.g. discrete (repeat)"),
    ],
    valid_until: Annotated[
        str | None, typer.Option(help="RFC 3339 end (required for regulators and auditors)")
    ] = None,
    batch: Annotated[
        list[str] | None,
        typer.Option(help="Only these batches (repeat)", autocompletion=complete_batch),
    ] = None,
    parameter: Annotated[
        list[str] | None,
        typer.Option(help="Only these parameters (repeat)", autocompletion=complete_parameter),
    ] = None,
    confidential: Annotated[
        bool, typer.Option("--confidential", help="Open only the confidential elements")
    ] = False,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Open data of an agreement to a party; the grant's id is the subject printed."""
    scope: dict[str, Any] = {"valid_until": _time(valid_until, "--valid-until")}
    if batch:
        scope["batches"] = split_values(batch)
    if parameter:
        scope["parameters"] = split_values(parameter)
    if confidential:
        scope["include_confidential"] = True
    with connect(url, key) as client:
        stored = client.grant_access(
            agreement, grantee, split_values(data_class), purpose=purpose, **scope
        )
        show_submitted(stored, as_json=as_json)


@commands
def revoke(
    key: KeyOption,
    grant_id: Annotated[str, typer.Argument(help="The grant's id")],
    reason: Annotated[str, typer.Option(help="Why access ends")],
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Close a grant from now on."""
    with connect(url, key) as client:
        show_submitted(client.revoke_access(grant_id, reason=reason), as_json=as_json)


@witness_app.command("cosign")
@commands
def witness_cosign(
    key: KeyOption,
    state: Annotated[Path, typer.Option(help="This witness's state file (created if missing)")],
    size: Annotated[int | None, typer.Option(help="Tree size (default: latest)")] = None,
    notary_key: Annotated[
        str | None, typer.Option(help="Pin the notary's key (ed25519:... or a vkey)")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Check the checkpoint extends the last one you cosigned, then cosign it."""
    with connect(url, key, notary_key=notary_key) as client:
        cosigned = client.cosign_checkpoint(size, state_file=state)
    row = {
        "tree_size": cosigned.tree_size,
        "root_hash": cosigned.root_hash,
        "cosignatures": [c["witness"] for c in cosigned.cosignatures],
    }
    show(row, as_json=as_json, title="cosigned")


def register(app: typer.Typer) -> None:
    """Add the party-facing commands to ``app``."""
    app.add_typer(party_app, name="party")
    app.add_typer(key_app, name="key")
    app.add_typer(agreement_app, name="agreement")
    app.command("grant")(grant)
    app.command("revoke")(revoke)
    app.add_typer(witness_app, name="witness")
    cli_data.register(app)
    cli_reviews.register(app)
    cli_queries.register(app)


OptionalTermsArgument = Annotated[
    Path | None,
    typer.Argument(
        metavar="FILE", help="The new terms, a JSON file (docs/agreements.md); none with --reject"
    ),
]
RejectOption = Annotated[
    bool,
    typer.Option(
        "--reject", help="Reject the pending amendment (its proposer: withdraw it) instead"
    ),
]
_AGREEMENT_FIELDS = {"subject": "AGREEMENT"}


def _amendment(terms: Path | None, *, reject: bool) -> dict[str, Any] | None:
    """The terms an ``agreement amend`` proposes; ``None`` for ``--reject``."""
    if reject and terms is not None:
        raise ClientError(
            f"--reject answers the pending amendment: leave out the terms file {terms}",
            field="--reject",
        )
    if not reject and terms is None:
        raise ClientError("give the new terms as FILE, or --reject", field="FILE")
    return None if terms is None else _terms(terms)


@agreement_app.command("terminate")
@commands
def agreement_terminate(
    key: KeyOption,
    agreement: AgreementArgument,
    reason: Annotated[str, typer.Option(help="Why the agreement ends")],
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """End an agreement (or withdraw your proposal): nothing more is recorded under it, and
    its history stays readable."""
    one_format(as_json=as_json, as_csv=as_csv)
    with connect(url, key) as client, naming_options(_AGREEMENT_FIELDS):
        stored = client.terminate_agreement(agreement, reason=reason)
        show_submitted(stored, as_json=as_json, as_csv=as_csv)


BROWSER_KEY_REASON = "browser key: made and kept by a web browser (WebCrypto, non-extractable)"
"""The reason a ``key enrol-browser`` carries: the ``KeyAdded`` notes a browser key."""


@key_app.command("enrol-browser")
@commands
def key_enrol_browser(
    key: KeyOption,
    public_key: Annotated[
        str, typer.Option(help="The browser key the console shows, ed25519:<base64>")
    ],
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Enrol the console's browser key: a party key (KeyAdded) noted as a browser key."""
    from ledger.domain.subjects import party_subject
    from ledger.errors import ValidationFailed
    from ledger.keys import decode_public_key

    try:
        decode_public_key(public_key, field="--public-key")
    except ValidationFailed as error:
        raise ClientError(error.message, field="--public-key") from None
    with connect(url, key) as client:
        payload = {"public_key": public_key, "purpose": "party"}
        subject = party_subject(client.party)
        stored = client.submit(
            "KeyAdded", subject, payload, meaning="authored", reason=BROWSER_KEY_REASON
        )
        show_submitted(stored, as_json=as_json)


KEYS_IN_FORCE = (
    "query Whoami { me { keyId keys { id purpose expiresAt } keysExpiringSoon { id expiresAt } } }"
)


def show_keys_in_force(client: LedgerClient) -> None:
    """Print each key of the client's party in force and when it expires, then a rotation
    line for each one the ledger says expires soon."""
    me = client.graphql(KEYS_IN_FORCE)["me"]
    out = console()
    for key in me["keys"]:
        this = " (this keystore)" if key["id"] == me["keyId"] else ""
        out.print(f"key {key['id']}{this}: {key['purpose']} key, expires {key['expiresAt']}")
    for key in me["keysExpiringSoon"]:
        out.print(
            f"rotate before {key['expiresAt']}: key {key['id']} expires then; add the next "
            "key now, signed with a current one (`cmo-ledger key add`)"
        )
