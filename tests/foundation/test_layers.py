"""The layers hold: the client side of the wire loads neither the server nor the database
stack (checked in a fresh interpreter, where nothing else was imported first)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("eventsourcing", "sqlalchemy", "psycopg", "api", "projections", "ledger.application")


@pytest.mark.parametrize(
    "module",
    ["clients.client", "clients.offline", "clients.bundle", "clients.importers", "clients"],
)
def test_the_client_side_loads_no_server_and_no_database_stack(module: str) -> None:
    probe = (
        f"import sys, {module}\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} "
        f"or m in {HEAVY!r})\n"
        "print(','.join(loaded))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_the_client_package_exports_resolve_without_the_server() -> None:
    probe = (
        "import sys, clients\n"
        "from clients import LedgerClient, PartyAuth, VerificationError\n"
        "print('api' in sys.modules, 'eventsourcing' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
