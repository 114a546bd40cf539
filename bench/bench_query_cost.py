"""What the cost estimate adds to validating an operation, same run.

Validates the heaviest document each client sends (the costliest by the estimate) and
the probe's exponential document, with graphql-core's standard rules alone (the
baseline) and with the cost rule added, uncached (the schema's validation cache answers
a repeated document without either). Prints each as microseconds per validation and the
ratio to the baseline. Run it alone with ``python -m bench.bench_query_cost``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from graphql import DocumentNode, GraphQLSchema, parse, specified_rules, validate
from graphql.validation import ASTValidationRule

import bench
from api.cost import CostModel, document_cost, query_cost_rule
from api.limits import Limits
from api.schema import schema

__all__ = ["main"]

ROUNDS = {"small": 300, "full": 3000}
EXPONENTIAL = (
    "{ agreements { batches { agreement { batches { agreement { batches { agreement "
    "{ batches { agreement { id } } } } } } } } } }"
)


def _client_documents() -> list[str]:
    from clients import client
    from ledger.evidence import export

    return [
        value
        for module in (client, export)
        for value in vars(module).values()
        if isinstance(value, str) and value.lstrip().startswith(("query", "{", "mutation"))
    ]


def _per_validation(
    graphql_schema: GraphQLSchema,
    document: DocumentNode,
    rules: Sequence[type[ASTValidationRule]],
    rounds: int,
) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        validate(graphql_schema, document, rules)
    return (time.perf_counter() - started) / rounds


def _heaviest(documents: list[str], cost_of: Callable[[str], int]) -> str:
    return max(documents, key=cost_of)


def main() -> None:
    limits = Limits()
    graphql_schema = schema._schema
    model = CostModel(limits.assumed_list_size, limits.max_page_size)
    cost_rule = query_cost_rule(model, limits.max_query_cost)
    baseline_rules = list(specified_rules)
    with_cost = [*baseline_rules, cost_rule]
    rounds = ROUNDS[bench.scale()]
    documents = _client_documents()

    def cost_of(text: str) -> int:
        return document_cost(graphql_schema, parse(text), model)

    for name, text in [("heaviest client query", _heaviest(documents, cost_of)),
                       ("exponential probe (refused)", EXPONENTIAL)]:  # fmt: skip
        document = parse(text)
        base = _per_validation(graphql_schema, document, baseline_rules, rounds)
        costed = _per_validation(graphql_schema, document, with_cost, rounds)
        print(
            f"{name} (cost {cost_of(text):,}): validation {base * 1e6:,.0f} us, with the cost rule "
            f"{costed * 1e6:,.0f} us ({costed / base:.2f}x the standard rules alone)"
        )


if __name__ == "__main__":
    main()
