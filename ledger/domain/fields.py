"""Reading a payload field by field, so every refusal names ``payload.<field>``.

Domain rules read payloads only through :class:`Fields`; a rule never indexes a raw
dict, so a missing or mistyped field always becomes ``VALIDATION_FAILED`` with its path.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ledger.errors import ValidationFailed
from ledger.timeutil import parse_utc

__all__ = ["Fields"]

_DECIMAL = re.compile(r"^-?(0|[1-9]\d{0,17})(\.\d{1,12})?\Z", re.ASCII)


class Fields:
    """Typed access to a JSON object; ``path`` prefixes every error's field."""

    def __init__(self, data: object, path: str = "payload") -> None:
        if not isinstance(data, Mapping):
            raise ValidationFailed("expected a JSON object", field=path)
        self.data: Mapping[str, Any] = data
        self.path = path

    def field(self, name: str) -> str:
        """The dotted path of ``name``."""
        return f"{self.path}.{name}"

    def has(self, name: str) -> bool:
        """True when ``name`` is present and not null."""
        return self.data.get(name) is not None

    def only(self, *names: str) -> Fields:
        """Refuse members other than ``names``."""
        extra = sorted(set(self.data) - set(names))
        if extra:
            raise ValidationFailed("unknown field", field=self.field(extra[0]))
        return self

    def raw(self, name: str) -> Any:
        """The value, required."""
        if self.data.get(name) is None:
            raise ValidationFailed("required field is missing", field=self.field(name))
        return self.data[name]

    def text(self, name: str, *, max_len: int = 200, optional: bool = False) -> str:
        """A non-empty string of at most ``max_len`` characters."""
        if optional and not self.has(name):
            return ""
        value = self.raw(name)
        if not isinstance(value, str) or not value.strip() or len(value) > max_len:
            raise ValidationFailed(
                f"expected a non-empty string of at most {max_len} characters",
                field=self.field(name),
            )
        return value

    def choice(self, name: str, choices: Iterable[str]) -> str:
        """One of ``choices``."""
        allowed = tuple(choices)
        value = self.raw(name)
        if value not in allowed:
            raise ValidationFailed(f"expected one of {', '.join(allowed)}", field=self.field(name))
        return str(value)

    def integer(self, name: str, *, minimum: int = 0, maximum: int = 2**53 - 1) -> int:
        """An integer within bounds."""
        value = self.raw(name)
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise ValidationFailed(
                f"expected an integer from {minimum} to {maximum}", field=self.field(name)
            )
        return value

    def boolean(self, name: str, *, default: bool | None = None) -> bool:
        """A boolean; ``default`` when absent (required when no default)."""
        if default is not None and not self.has(name):
            return default
        value = self.raw(name)
        if not isinstance(value, bool):
            raise ValidationFailed("expected true or false", field=self.field(name))
        return value

    def time(self, name: str) -> datetime:
        """An RFC 3339 UTC time."""
        return parse_utc(self.raw(name), field=self.field(name))

    def optional_time(self, name: str) -> datetime | None:
        """An RFC 3339 UTC time or null."""
        return self.time(name) if self.has(name) else None

    def uuid(self, name: str) -> uuid.UUID:
        """A lowercase hyphenated UUID."""
        value = self.raw(name)
        try:
            parsed = uuid.UUID(value) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if parsed is None or str(parsed) != value:
            raise ValidationFailed("expected a lowercase hyphenated UUID", field=self.field(name))
        return parsed

    def decimal(self, name: str) -> Decimal:
        """A decimal sent as a string, e.g. ``"37.0"``."""
        value = self.raw(name)
        if not isinstance(value, str) or not _DECIMAL.match(value):
            raise ValidationFailed(
                'expected a decimal string such as "37.0"', field=self.field(name)
            )
        try:
            return Decimal(value)
        except InvalidOperation as exc:  # pragma: no cover - the pattern already excludes it
            raise ValidationFailed("not a decimal", field=self.field(name)) from exc

    def sha256(self, name: str) -> str:
        """A lowercase hex SHA-256 digest."""
        value = self.raw(name)
        if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{64}", value):
            raise ValidationFailed("expected a lowercase hex SHA-256", field=self.field(name))
        return value

    def items(self, name: str, *, max_items: int = 10_000, optional: bool = False) -> list[Any]:
        """A JSON array of at most ``max_items`` items."""
        if optional and not self.has(name):
            return []
        value = self.raw(name)
        if not isinstance(value, list) or len(value) > max_items:
            raise ValidationFailed(
                f"expected an array of at most {max_items} items", field=self.field(name)
            )
        return value

    def texts(self, name: str, *, max_items: int = 1000, optional: bool = False) -> list[str]:
        """An array of non-empty strings."""
        values = self.items(name, max_items=max_items, optional=optional)
        for index, value in enumerate(values):
            if not isinstance(value, str) or not value.strip() or len(value) > 200:
                raise ValidationFailed(
                    "expected a non-empty string", field=f"{self.field(name)}[{index}]"
                )
        return values

    def object(self, name: str, *, optional: bool = False) -> Fields:
        """A nested object, with paths continuing from this one."""
        if optional and not self.has(name):
            return Fields({}, self.field(name))
        return Fields(self.raw(name), self.field(name))

    def objects(self, name: str, *, max_items: int = 10_000) -> list[Fields]:
        """An array of objects."""
        return [
            Fields(item, f"{self.field(name)}[{index}]")
            for index, item in enumerate(self.items(name, max_items=max_items))
        ]
