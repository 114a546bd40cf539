"""The home page asks about its batches a group at a time: each group is one valid
operation within the API's cost limit, so no group is refused for its size."""

from __future__ import annotations

from graphql import parse, validate

from api.console.pages import ISSUES_PER_OPERATION, MAX_BATCHES
from api.console.queries import batch_issues
from api.cost import CostModel, document_cost
from api.limits import Limits
from api.schema import schema


def test_a_group_of_batches_is_one_valid_operation_within_the_cost_limit() -> None:
    limits = Limits()
    model = CostModel(limits.assumed_list_size, limits.max_page_size)
    document = parse(batch_issues(ISSUES_PER_OPERATION))
    assert validate(schema._schema, document) == []
    assert document_cost(schema._schema, document, model) <= limits.max_query_cost
    assert ISSUES_PER_OPERATION <= MAX_BATCHES


def test_each_batch_of_a_group_is_asked_under_its_own_names() -> None:
    text = batch_issues(3)
    for index in range(3):
        assert f"d{index}: batch(id: $b{index})" in text
        assert f"x{index}: batch(id: $b{index})" in text
    assert "$b3" not in text
