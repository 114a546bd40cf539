"""What an operation may cost, estimated from its document before it runs.

Every field selected costs one unit for each time it resolves. A list field multiplies the
fields under it by the items it returns: the page asked for (a ``first`` or ``latest``
argument on the list or on the field that holds the page, its default when left out,
``max_page_size`` when it is a variable), else ``Limits.assumed_list_size``.
Introspection fields (``__schema``, ``__type``) cost nothing: the schema bounds them.

So ``{ agreements { batches { id } } }`` costs 1 + 25 + 25 x 25 = 651 with the defaults,
and each further list nested in it multiplies by 25: the operation over
``Limits.max_query_cost`` is refused before it runs, with ``LIMIT_EXCEEDED`` naming its
cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
)
from graphql.utilities import TypeInfo
from graphql.validation import ASTValidationRule, ValidationContext, ValidationRule

from api.validation import LimitExceededError

__all__ = [
    "PAGE_ARGUMENT",
    "PAGE_ARGUMENTS",
    "CostModel",
    "document_cost",
    "operation_cost",
    "query_cost_rule",
]

PAGE_ARGUMENT = "first"
"""The argument that bounds a page, on a list field or on the field holding the page."""
PAGE_ARGUMENTS = (PAGE_ARGUMENT, "latest")
"""Every argument that bounds how many items a list returns (``Agreement.batches(latest:)``)."""


@dataclass(frozen=True, slots=True)
class CostModel:
    """The estimate's parameters (``Limits`` carries them)."""

    assumed_list_size: int
    max_page_size: int


def operation_cost(
    context: ValidationContext, operation: OperationDefinitionNode, model: CostModel
) -> int:
    """The estimated cost of ``operation`` (see the module docstring)."""
    root = _root_type(context.schema, operation)
    if root is None:
        return 0
    return _Estimate(context, model).selections(operation.selection_set, root, 1, None)


def document_cost(schema: GraphQLSchema, document: DocumentNode, model: CostModel) -> int:
    """The estimated cost of every operation of ``document``, summed."""
    context = ValidationContext(schema, document, TypeInfo(schema), lambda _error: None)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    return sum(operation_cost(context, operation, model) for operation in operations)


def _root_type(schema: GraphQLSchema, operation: OperationDefinitionNode) -> Any:
    return schema.get_root_type(operation.operation)


class _Estimate:
    def __init__(self, context: ValidationContext, model: CostModel) -> None:
        self._context = context
        self._model = model
        self._spreading: set[str] = set()

    def selections(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLNamedType,
        times: int,
        page: int | None,
    ) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, times, page)
            elif isinstance(selection, InlineFragmentNode):
                total += self.fragment(selection.selection_set, selection, parent, times, page)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.spread(selection, parent, times, page)
        return total

    def fragment(
        self,
        selection_set: SelectionSetNode,
        fragment: Any,
        parent: GraphQLNamedType,
        times: int,
        page: int | None,
    ) -> int:
        condition = fragment.type_condition
        named = parent
        if condition is not None:
            named = self._context.schema.get_type(condition.name.value) or parent
        return self.selections(selection_set, named, times, page)

    def spread(
        self, spread: FragmentSpreadNode, parent: GraphQLNamedType, times: int, page: int | None
    ) -> int:
        name = spread.name.value
        definition = self._context.get_fragment(name)
        if definition is None or name in self._spreading:  # cycles are refused elsewhere
            return 0
        self._spreading.add(name)
        try:
            return self.fragment(definition.selection_set, definition, parent, times, page)
        finally:
            self._spreading.discard(name)

    def field(self, node: FieldNode, parent: GraphQLNamedType, times: int, page: int | None) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 0
        definition = _field(parent, name)
        if definition is None:
            return times  # an unknown field: the document is refused by another rule
        own_page = self._page(node, definition)
        page = own_page if own_page is not None else page
        inner = times
        if isinstance(get_nullable_type(definition.type), GraphQLList):
            inner = times * (page if page is not None else self._model.assumed_list_size)
            page = None
        named = get_named_type(definition.type)
        return times + self.selections(node.selection_set, named, inner, page)

    def _page(self, node: FieldNode, definition: GraphQLField) -> int | None:
        """The items the page argument asks for; ``None`` when the field has none, or when
        one left out defaults to null (the whole list: counted as the assumed size)."""
        for name in PAGE_ARGUMENTS:
            argument = definition.args.get(name)
            if argument is not None:
                return self._asked(node, name, argument.default_value)
        return None

    def _asked(self, node: FieldNode, name: str, default: Any) -> int | None:
        for given in node.arguments or ():
            if given.name.value != name:
                continue
            if isinstance(given.value, IntValueNode):
                return max(int(given.value.value), 0)
            if isinstance(given.value, VariableNode):
                return self._model.max_page_size
        if default is None:
            return None
        return default if isinstance(default, int) else self._model.max_page_size


def _field(parent: GraphQLNamedType, name: str) -> GraphQLField | None:
    if isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
        found: GraphQLField | None = parent.fields.get(name)
        return found
    return None


def query_cost_rule(model: CostModel, max_cost: int) -> type[ASTValidationRule]:
    """A validation rule refusing any operation estimated over ``max_cost``."""

    class QueryCost(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            cost = operation_cost(self.context, node, model)
            if cost > max_cost:
                self.report_error(
                    LimitExceededError(
                        f"this operation's estimated cost is {cost:,}, over the limit of "
                        f"{max_cost:,} (a list counts {model.assumed_list_size} items unless "
                        f"'{PAGE_ARGUMENT}' asks for fewer): select fewer nested lists",
                        node,
                    )
                )

    return QueryCost
