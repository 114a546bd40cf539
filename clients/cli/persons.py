"""``person admit|verify|accept-policy``: the persons who sign for a party (R4, R7).

Requests are signed with the party's keystore (``--key``); with ``--as`` and
``--person-keystore`` the envelope is the named person's electronic signature, made with
the person's own key (the keystore the person made with ``cmo-ledger keygen``, opened with
the same passphrase).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clients.cli.common import (
    DEFAULT_URL,
    JsonOption,
    KeyOption,
    UrlOption,
    commands,
    connect,
    show_submitted,
)
from clients.client import LedgerClient
from ledger.domain.payloads import (
    POLICY_STATEMENT,
    IdentityVerified,
    PersonAdmitted,
    SignaturePolicyAccepted,
    build,
)
from ledger.domain.subjects import person_subject

__all__ = ["person_app"]

person_app = typer.Typer(help="Persons who sign for your party.", no_args_is_help=True)

AsOption = Annotated[str | None, typer.Option("--as", help="Sign as this person of your party")]
PersonKeystoreOption = Annotated[
    Path | None,
    typer.Option("--person-keystore", help="The keystore of the person of --as"),
]


def _client(url: str, key: Path, person: str | None, keystore: Path | None) -> LedgerClient:
    return connect(url, key, person=person, person_keystore=keystore)


@person_app.command("admit")
@commands
def person_admit(
    key: KeyOption,
    person: Annotated[str, typer.Argument(help="The person's id, e.g. j.smith")],
    printed_name: Annotated[str, typer.Option(help="Their name as signatures show it")],
    job_function: Annotated[str, typer.Option(help="Their job function")],
    meaning: Annotated[
        list[str], typer.Option(help="A meaning they may sign with (repeat for more)")
    ],
    public_key: Annotated[str, typer.Option(help="The key they made, ed25519:<base64>")],
    as_person: AsOption = None,
    person_keystore: PersonKeystoreOption = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Admit a person who signs for your party, with the meanings they may sign with."""
    with _client(url, key, as_person, person_keystore) as client:
        payload = build(
            PersonAdmitted,
            party=client.party,
            person=person,
            printed_name=printed_name,
            job_function=job_function,
            meanings=meaning,
            public_key=public_key,
        )
        subject = person_subject(client.party, person)
        stored = client.submit("PersonAdmitted", subject, payload, meaning="approved")
        show_submitted(stored, as_json=as_json)


@person_app.command("verify")
@commands
def person_verify(
    key: KeyOption,
    party: Annotated[str, typer.Argument(help="The person's party")],
    person: Annotated[str, typer.Argument(help="The person's id")],
    document: Annotated[str, typer.Option(help="What was checked, e.g. passport")],
    key_id: Annotated[str, typer.Option(help="The key id the person showed they hold")],
    as_person: AsOption = None,
    person_keystore: PersonKeystoreOption = None,
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Record that a person's identity was checked (the notary, or another verified person
    of the same party with --as)."""
    with _client(url, key, as_person, person_keystore) as client:
        payload = build(IdentityVerified, person=person, document=document, key=key_id)
        subject = person_subject(party, person)
        stored = client.submit("IdentityVerified", subject, payload, meaning="verified")
        show_submitted(stored, as_json=as_json)


@person_app.command("accept-policy")
@commands
def person_accept_policy(
    key: KeyOption,
    as_person: Annotated[str, typer.Option("--as", help="You, a person of your party")],
    person_keystore: Annotated[Path, typer.Option("--person-keystore", help="Your own keystore")],
    url: UrlOption = DEFAULT_URL,
    as_json: JsonOption = False,
) -> None:
    """Sign the signature policy: your electronic signature is the legally binding
    equivalent of your handwritten signature."""
    with _client(url, key, as_person, person_keystore) as client:
        payload = build(SignaturePolicyAccepted, person=as_person, statement=POLICY_STATEMENT)
        subject = person_subject(client.party, as_person)
        stored = client.submit("SignaturePolicyAccepted", subject, payload, meaning="accepted")
        show_submitted(stored, as_json=as_json)
