"""The agreement terms' constants and their JSON Schema (draft 2020-12).

``validate_terms`` (:mod:`ledger.domain.agreements`) and the schema take their bounds,
choices and patterns from here, so the published schema (``docs/schema/AgreementTerms.json``,
served at ``/schema/AgreementTerms.json``, embedded in the ``AgreementProposed`` and
``AgreementAmended`` payload schemas) says what the ledger checks. The ledger checks more
than a schema can: parties admitted with the right role, owners that are the sponsor or the
CMO. Light: a client imports it without the database.
"""

from __future__ import annotations

from typing import Any

from ledger.domain.data_classes import (
    DEFAULT_CLASSES,
    DELIVERY_AFTER,
    EVERY_DAYS,
    FORMS,
    MONTHLY_ON_DAY,
    WITHIN_HOURS,
)

__all__ = [
    "CPK_THRESHOLD_MAX",
    "DEFAULT_CPK_THRESHOLD",
    "DEFAULT_REVIEW_CADENCE_MONTHS",
    "DEVIATION_DEADLINE_HOURS",
    "IP_RULES",
    "REVIEW_CADENCE_MONTHS",
    "TERMS_MEMBERS",
    "TERMS_SCHEMA_NAME",
    "UNREGISTERED",
    "terms_schema",
]

TERMS_SCHEMA_NAME = "AgreementTerms"
IP_RULES = ("sponsor", "cmo", "joint", "negotiated")
UNREGISTERED = ("refuse", "flag")
"""What a discrete result naming no registered parameter meets: refusal (the default), or
storage flagged as unregistered."""
DEFAULT_REVIEW_CADENCE_MONTHS = 6
REVIEW_CADENCE_MONTHS = (1, 60)
DEVIATION_DEADLINE_HOURS = (1, 720)
DEFAULT_CPK_THRESHOLD = "1.33"
"""Below this Cpk the CPV analysis of a baselined parameter raises a signal (R26)."""
CPK_THRESHOLD_MAX = 10
# A positive decimal string up to 10 (the ledger also checks the value's bounds).
CPK_THRESHOLD_PATTERN = r"^(10(\.0+)?|[0-9](\.[0-9]+)?)$"
TERMS_MEMBERS = (
    "sponsor",
    "cmo",
    "title",
    "products",
    "sites",
    "data_classes",
    "confidential_elements",
    "ip_rule",
    "review_cadence_months",
    "deviation_deadline_hours",
    "unregistered",
    "cpk_threshold",
)
_REQUIRED = (
    "sponsor",
    "cmo",
    "title",
    "products",
    "sites",
    "data_classes",
    "ip_rule",
    "deviation_deadline_hours",
)
# JSON Schema patterns are ECMA 262: ``$`` ends the string (no multiline flag).
_IDENTIFIER = "^[a-z][a-z0-9_]{0,62}$"


def _text(max_len: int, description: str) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_len, "description": description}


def _integer(bounds: tuple[int, int], description: str) -> dict[str, Any]:
    low, high = bounds
    return {"type": "integer", "minimum": low, "maximum": high, "description": description}


def _names(description: str, *, min_items: int = 1) -> dict[str, Any]:
    return {
        "type": "array",
        "items": {"type": "string", "minLength": 1, "maxLength": 200},
        "minItems": min_items,
        "uniqueItems": True,
        "description": description,
    }


def _object(properties: dict[str, Any], required: list[str], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        "description": description,
    }


def _deliveries() -> dict[str, Any]:
    return {
        "DeliveryAfter": _object(
            {
                "within_hours": _integer(WITHIN_HOURS, "hours after `after` the data is due"),
                "after": {"enum": list(DELIVERY_AFTER), "description": "what the hours count from"},
            },
            ["within_hours", "after"],
            "per batch: due within_hours after the batch ends, or after each record's "
            "detection (its start or sampling time)",
        ),
        "DeliveryEveryDays": _object(
            {"every_days": _integer(EVERY_DAYS, "length of each period in days")},
            ["every_days"],
            "periodic: one submission per period of every_days days, counted from when the "
            "terms came into force; due at the period's end",
        ),
        "DeliveryMonthly": _object(
            {"monthly_on_day": _integer(MONTHLY_ON_DAY, "day of the month (UTC)")},
            ["monthly_on_day"],
            "periodic: one submission per month, due by the end of that day (UTC)",
        ),
        "Delivery": {
            "oneOf": [
                {"$ref": "#/$defs/DeliveryAfter"},
                {"$ref": "#/$defs/DeliveryEveryDays"},
                {"$ref": "#/$defs/DeliveryMonthly"},
            ]
        },
    }


def _class_definitions() -> dict[str, Any]:
    data_class = _object(
        {
            "owner": _text(63, "the sponsor or the CMO: who owns and grants the class's data"),
            "form": {
                "enum": list(FORMS),
                "description": "the content shape of a submission; defaults to the class "
                f"name for {', '.join(DEFAULT_CLASSES)}, required for any other name",
            },
            "format": _object(
                {
                    "name": _text(100, "the format's name, which every submission states"),
                    "columns": _names("the record columns (or series columns)"),
                },
                ["name", "columns"],
                "the format submissions of the class are in",
            ),
            "delivery": {"$ref": "#/$defs/Delivery"},
        },
        ["owner", "format", "delivery"],
        "one class of data the agreement defines",
    )
    return {
        "DataClass": data_class,
        "NamedDataClass": {
            "allOf": [{"$ref": "#/$defs/DataClass"}],
            "required": ["form"],
            "description": "a class with a name of its own: it states its form",
        },
        **_deliveries(),
    }


def _data_classes() -> dict[str, Any]:
    defaults = "|".join(DEFAULT_CLASSES)
    return {
        "type": "object",
        "minProperties": 1,
        "propertyNames": {"pattern": _IDENTIFIER},
        "patternProperties": {f"^({defaults})$": {"$ref": "#/$defs/DataClass"}},
        "additionalProperties": {"$ref": "#/$defs/NamedDataClass"},
        "description": "the classes of data exchanged, by name (an identifier); at least one",
    }


def terms_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of an agreement's terms."""
    properties = {
        "sponsor": _text(63, "the sponsor, an admitted party with role sponsor"),
        "cmo": _text(63, "the CMO, an admitted party with role cmo"),
        "title": _text(300, "the agreement's title"),
        "products": _names("products made under the agreement"),
        "sites": _names("sites where they are made"),
        "data_classes": _data_classes(),
        "confidential_elements": {
            "type": "array",
            "items": {"type": "string", "pattern": _IDENTIFIER},
            "uniqueItems": True,
            "description": "record members that are the CMO's confidential elements",
        },
        "ip_rule": {"enum": list(IP_RULES), "description": "who owns process enhancements"},
        "review_cadence_months": _integer(
            REVIEW_CADENCE_MONTHS,
            f"months between periodic reviews (default {DEFAULT_REVIEW_CADENCE_MONTHS})",
        ),
        "deviation_deadline_hours": _integer(
            DEVIATION_DEADLINE_HOURS, "hours within which a deviation is reported"
        ),
        "unregistered": {
            "enum": list(UNREGISTERED),
            "description": "a discrete result naming no registered parameter: refused "
            "(default) or stored flagged",
        },
        "cpk_threshold": {
            "type": "string",
            "pattern": CPK_THRESHOLD_PATTERN,
            "description": "a decimal string above 0 and at most "
            f"{CPK_THRESHOLD_MAX}: a CPV analysis whose Cpk is below it raises a signal "
            f'(default "{DEFAULT_CPK_THRESHOLD}")',
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": TERMS_SCHEMA_NAME,
        **_object(
            properties,
            list(_REQUIRED),
            "The terms of a sponsor-CMO quality agreement (docs/agreements.md).",
        ),
        "$defs": _class_definitions(),
    }
