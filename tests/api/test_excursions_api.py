"""Discrete results are answered with their evaluation against the parameter registry."""

from __future__ import annotations

import pytest

from ledger.domain.limits import EVALUATIONS
from tests.conftest import BACKENDS
from tests.support.data_server import Served, shared_data_server
from tests.support.data_world import B1

pytestmark = pytest.mark.xdist_group("data_queries")

RESULTS = """
query($b: String!) {
  batch(id: $b) { discrete { id parameter parameterId limitsVersion evaluation } }
}
"""


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest) -> Served:
    return shared_data_server(request, request.param)


def test_every_result_carries_its_evaluation(served: Served) -> None:
    data, errors = served.call("northwind-bio", RESULTS, {"b": B1})
    assert errors == []
    records = data["batch"]["discrete"]
    assert records, "the batch has no discrete results"
    for record in records:
        assert record["evaluation"] in EVALUATIONS
        if record["evaluation"] == "unregistered":
            assert record["parameterId"] is None
            assert record["limitsVersion"] is None
