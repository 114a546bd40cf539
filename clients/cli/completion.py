"""Shell completion from the server: agreement ids, batch names and parameter names.

``cmo-ledger --install-completion`` installs completion for the current shell. The values
are asked of the server named by ``CMO_LEDGER_URL`` as the party of the keystore
``CMO_LEDGER_KEY``, unlocked with ``CMO_LEDGER_PASSPHRASE`` (a completion never prompts);
without them, or on any error, nothing is offered and nothing is printed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated

import typer

from clients.client import LedgerClient
from ledger.config import Settings
from ledger.keystore import load_keystore

__all__ = [
    "AgreementArgumentCompleted",
    "AgreementOption",
    "BatchOption",
    "ParameterOption",
    "complete_agreement",
    "complete_batch",
    "complete_parameter",
]

_TIMEOUT = 5.0  # seconds: a shell waits for the answer

AGREEMENT_IDS = "{ agreements { id } }"
BATCH_NAMES = "{ agreements { batches { id } } }"
PARAMETER_NAMES = "query($a: ID!) { parameters(agreementId: $a) { name } }"
BATCH_AGREEMENT = "query($b: String!) { batch(id: $b) { agreementId } }"


def _client() -> LedgerClient | None:
    settings = Settings.from_env()
    if settings.key is None or not settings.passphrase:
        return None
    keystore, key = load_keystore(settings.key, settings.passphrase)
    return LedgerClient(settings.url, keystore.party, key, timeout=_TIMEOUT)


def _offer(incomplete: str, fetch: Callable[[LedgerClient], Iterable[str]]) -> list[str]:
    """The values ``fetch`` reads from the server that start with ``incomplete``, sorted;
    ``[]`` on any error (a completion must never print or fail)."""
    try:
        client = _client()
        if client is None:
            return []
        with client:
            values = set(fetch(client))
    except Exception:
        return []
    return sorted(value for value in values if value.startswith(incomplete))


def _agreement_ids(client: LedgerClient) -> list[str]:
    return [str(a["id"]) for a in client.graphql(AGREEMENT_IDS)["agreements"]]


def _batch_names(client: LedgerClient) -> list[str]:
    agreements = client.graphql(BATCH_NAMES)["agreements"]
    return [str(b["id"]) for a in agreements for b in a["batches"]]


def _parameter_names(
    agreement: str | None, batch: str | None
) -> Callable[[LedgerClient], list[str]]:
    def fetch(client: LedgerClient) -> list[str]:
        if agreement:
            agreements = [agreement]
        elif batch:
            agreements = [client.graphql(BATCH_AGREEMENT, {"b": batch})["batch"]["agreementId"]]
        else:
            agreements = _agreement_ids(client)
        names: list[str] = []
        for agreement_id in agreements:
            found = client.graphql(PARAMETER_NAMES, {"a": agreement_id})["parameters"] or []
            names.extend(str(p["name"]) for p in found)
        return names

    return fetch


def complete_agreement(incomplete: str = "") -> list[str]:
    """The ids of the agreements the caller may see."""
    return _offer(incomplete, _agreement_ids)


def complete_batch(incomplete: str = "") -> list[str]:
    """The names of the batches the caller may see."""
    return _offer(incomplete, _batch_names)


def complete_parameter(ctx: typer.Context | None = None, incomplete: str = "") -> list[str]:
    """Parameter names: of the agreement (or the batch's agreement) already on the command
    line, else of every agreement the caller may see."""
    params = getattr(ctx, "params", None) or {}
    agreement, batch = params.get("agreement"), params.get("batch")
    fetch = _parameter_names(str(agreement) if agreement else None, str(batch) if batch else None)
    return _offer(incomplete, fetch)


AgreementOption = Annotated[
    str | None,
    typer.Option("--agreement", help="Only this agreement", autocompletion=complete_agreement),
]
AgreementArgumentCompleted = Annotated[
    str, typer.Argument(help="The agreement's id", autocompletion=complete_agreement)
]
BatchOption = Annotated[
    str | None, typer.Option("--batch", help="Only this batch", autocompletion=complete_batch)
]
ParameterOption = Annotated[
    str | None,
    typer.Option("--parameter", help="Only this parameter", autocompletion=complete_parameter),
]
