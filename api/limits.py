"""The API's limits: each refusal answers ``LIMIT_EXCEEDED``.

=====================  =====================================  ====================================
``Settings`` field     limit                                  default
=====================  =====================================  ====================================
``max_query_depth``    nesting depth of a GraphQL operation   10
``max_aliases``        aliases in one document                15
``max_tokens``         lexical tokens in one document         2000
``max_page_size``      items one list field returns           500
``max_body_bytes``     HTTP request body                      64 MiB
``max_subscriptions``  operations running on one websocket    10
``request_max_age``    seconds a request signature is fresh   300
``max_query_cost``     estimated cost of one operation        50000 (see :mod:`api.cost`)
``assumed_list_size``  items a list counts in that estimate   25
``query_time_budget``  seconds one operation may run          30
=====================  =====================================  ====================================

Each is set by the variable ``CMO_LEDGER_`` + the field name in capitals (for example
``CMO_LEDGER_MAX_QUERY_DEPTH``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ledger.config import Settings
from ledger.errors import LimitExceeded, ValidationFailed

__all__ = ["Limits"]

#: The defaults are the settings' own (each written once, in ``ledger.config``).
_DEFAULT = Settings()


@dataclass(frozen=True, slots=True)
class Limits:
    """Every limit the API enforces."""

    max_query_depth: int = _DEFAULT.max_query_depth
    max_aliases: int = _DEFAULT.max_aliases
    max_tokens: int = _DEFAULT.max_tokens
    max_page_size: int = _DEFAULT.max_page_size
    max_body_bytes: int = _DEFAULT.max_body_bytes
    max_subscriptions: int = _DEFAULT.max_subscriptions
    request_max_age: float = _DEFAULT.request_max_age
    max_query_cost: int = _DEFAULT.max_query_cost
    assumed_list_size: int = _DEFAULT.assumed_list_size
    query_time_budget: float = _DEFAULT.query_time_budget

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """The limits ``settings`` carries."""
        return cls(**{field.name: getattr(settings, field.name) for field in fields(cls)})

    def page_size(self, first: int, *, field: str = "first") -> int:
        """``first`` once checked against ``max_page_size`` (``LIMIT_EXCEEDED`` above it)."""
        if first < 1:
            raise ValidationFailed("ask for at least one item", field=field)
        if first > self.max_page_size:
            raise LimitExceeded(
                f"at most {self.max_page_size} items per page: page with a smaller {field}",
                field=field,
            )
        return first
