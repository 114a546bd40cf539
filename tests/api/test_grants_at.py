"""Access as it was: which grants a party held in force at a valid time, as the ledger knew
them at a position."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ledger.timeutil import format_utc
from tests.conftest import BACKENDS
from tests.support.data_server import Served, shared_data_server

pytestmark = pytest.mark.xdist_group("data_queries")

NORTHWIND, HELIOS, AUDITOR = "northwind-bio", "helios-tx", "qa-auditor-llc"
GRANTS_AT = """
query($p: String!, $v: DateTime!, $k: Int) {
  grantsAt(party: $p, validAt: $v, knownAt: $k) { id grantee }
}
"""


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest) -> Served:
    return shared_data_server(request, request.param)


def held(served: Served, caller: str, valid_at: str, known_at: int | None = None) -> set[str]:
    data, errors = served.call(caller, GRANTS_AT, {"p": AUDITOR, "v": valid_at, "k": known_at})
    assert errors == [], errors
    found: list[dict[str, Any]] = data["grantsAt"]
    assert all(grant["grantee"] == AUDITOR for grant in found)
    return {grant["id"] for grant in found}


def test_grants_in_force_then_as_the_ledger_knew_them_then(served: Served) -> None:
    grants, positions = served.data.grants, served.data.positions
    before_expiry = format_utc(served.data.expires_at - timedelta(milliseconds=300))
    then = held(served, NORTHWIND, before_expiry, positions["auditor_active"])
    assert then == {grants["expired"], grants["revoked"]}
    assert held(served, NORTHWIND, before_expiry, positions["auditor_grants"]) == set()


def test_a_revocation_learnt_later_changes_the_answer_as_known_now(served: Served) -> None:
    before_expiry = format_utc(served.data.expires_at - timedelta(milliseconds=300))
    assert held(served, NORTHWIND, before_expiry) == {served.data.grants["expired"]}


def test_no_grant_of_an_agreement_the_caller_may_not_see_is_answered(served: Served) -> None:
    before_expiry = format_utc(served.data.expires_at - timedelta(milliseconds=300))
    assert held(served, HELIOS, before_expiry, served.data.positions["auditor_active"]) == set()


def test_a_known_at_beyond_the_head_is_refused(served: Served) -> None:
    _, errors = served.call(
        NORTHWIND, GRANTS_AT, {"p": AUDITOR, "v": "2024-01-01T00:00:00Z", "k": 10**9}
    )
    assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in errors] == [
        ("VALIDATION_FAILED", "knownAt")
    ]
