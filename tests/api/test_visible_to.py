"""Access as it was: ``visibleTo(party, agreementId, at, knownAt)`` answers what a party
could read of an agreement at a time, reproduced from the grants in force then, by the
same rules that answer the party's own queries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from ledger.timeutil import format_utc
from projections.audit import AUDIT
from tests.conftest import BACKENDS
from tests.support.data_server import Served, shared_data_server
from tests.support.data_world import B1, H1
from tests.support.server import codes

pytestmark = pytest.mark.xdist_group("data_queries")

NORTHWIND, HELIOS, CONTOSO = "northwind-bio", "helios-tx", "contoso-cmo"
FABRIKAM, REGULATOR, AUDITOR = "fabrikam-cmo", "agency-inspectorate", "qa-auditor-llc"
ROLES = (NORTHWIND, HELIOS, CONTOSO, FABRIKAM, REGULATOR, AUDITOR)

VISIBLE = """
query($p: String!, $a: ID!, $at: DateTime!, $k: Int) {
  visibleTo(party: $p, agreementId: $a, at: $at, knownAt: $k) {
    party role knownAt seesAgreement enhancements grants { id }
    batches { batch classes { dataClass access parameters windows confidential } }
  }
}
"""
OWN_DATA = {
    "discrete": "query($b: String!) { batch(id: $b) { discrete { id } } }",
    "event": "query($b: String!) { batch(id: $b) { events { id } } }",
}


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest) -> Served:
    return shared_data_server(request, request.param)


def visible(
    served: Served, asker: str, party: str, agreement: str, at: str, known_at: int | None = None
) -> tuple[Any, list[Any]]:
    variables = {"p": party, "a": agreement, "at": at, "k": known_at}
    return served.call(asker, VISIBLE, variables)


def now(served: Served) -> str:
    """The ledger's now (its clock answers the parties' own queries too)."""
    return format_utc(served.data.ledger.clock.now())


def access(answer: dict[str, Any], batch: str) -> dict[str, dict[str, Any]]:
    found = [b for b in answer["batches"] if b["batch"] == batch]
    assert found, f"{batch} is not among {[b['batch'] for b in answer['batches']]}"
    return {c["dataClass"]: c for c in found[0]["classes"]}


@pytest.mark.parametrize("party", ROLES)
def test_what_a_party_could_read_now_is_what_its_own_queries_answer(
    served: Served, party: str
) -> None:
    data, errors = visible(served, REGULATOR, party, served.data.a1, now(served))
    assert errors == []
    classes = access(data["visibleTo"], B1)
    for data_class, query in OWN_DATA.items():
        _, own_errors = served.call(party, query, {"b": B1})
        readable = classes[data_class]["access"] != "none"
        assert readable == (own_errors == []), (party, data_class, own_errors)


def test_a_grant_that_has_since_expired_is_shown_in_force_at_its_time(served: Served) -> None:
    a1 = served.data.a1
    during = format_utc(served.data.expires_at - timedelta(milliseconds=500))
    then, errors = visible(served, REGULATOR, AUDITOR, a1, during)
    assert errors == []
    assert then["visibleTo"]["role"] == "grantee"
    assert served.data.grants["expired"] in {g["id"] for g in then["visibleTo"]["grants"]}
    assert access(then["visibleTo"], B1)["discrete"]["access"] == "all"
    later, errors = visible(served, REGULATOR, AUDITOR, a1, now(served))
    assert errors == []
    assert later["visibleTo"]["role"] == "none"
    assert access(later["visibleTo"], B1)["discrete"]["access"] == "none"


def test_grants_recorded_after_known_at_open_nothing(served: Served) -> None:
    engine = served.server.services.ledger.engine
    query = sa.select(sa.func.min(AUDIT.c.position)).where(AUDIT.c.type == "AccessGranted")
    with engine.connect() as conn:
        first_grant = int(conn.execute(query).scalar_one())
    at = now(served)
    before, errors = visible(served, REGULATOR, FABRIKAM, served.data.a1, at, first_grant - 1)
    assert errors == []
    assert before["visibleTo"]["knownAt"] == first_grant - 1
    assert before["visibleTo"]["grants"] == []
    assert {c["access"] for c in access(before["visibleTo"], B1).values()} == {"none"}
    after, _ = visible(served, REGULATOR, FABRIKAM, served.data.a1, at)
    assert access(after["visibleTo"], B1)["discrete"]["access"] == "all"


def test_a_limited_grant_names_its_parameters_and_window(served: Served) -> None:
    data, errors = visible(served, HELIOS, REGULATOR, served.data.a2, now(served))
    assert errors == []
    discrete = access(data["visibleTo"], H1)["discrete"]
    assert discrete["access"] == "some"
    assert discrete["parameters"] == ["BR1.TEMP", "titer at harvest"]
    assert len(discrete["windows"]) == 1
    assert access(data["visibleTo"], H1)["event"]["access"] == "none"


@pytest.mark.parametrize(
    ("asker", "party", "code", "field"),
    [
        (HELIOS, NORTHWIND, "FORBIDDEN", "agreementId"),  # no party to A1, no oversight
        (FABRIKAM, NORTHWIND, "FORBIDDEN", "agreementId"),  # a grantee, but a CMO
        (AUDITOR, NORTHWIND, "FORBIDDEN", "agreementId"),  # its grants are not active
        (REGULATOR, "nobody-inc", "NOT_FOUND", "party"),
    ],
)
def test_only_the_parties_and_oversight_with_a_grant_may_ask(
    served: Served, asker: str, party: str, code: str, field: str
) -> None:
    data, errors = visible(served, asker, party, served.data.a1, now(served))
    assert data["visibleTo"] is None
    assert codes(errors) == [code]
    assert errors[0]["extensions"]["field"] == field


def test_known_at_beyond_the_head_is_refused(served: Served) -> None:
    _, errors = visible(served, NORTHWIND, FABRIKAM, served.data.a1, "2024-01-01T00:00:00Z", 10**9)
    assert codes(errors) == ["VALIDATION_FAILED"]
    assert errors[0]["extensions"]["field"] == "knownAt"
