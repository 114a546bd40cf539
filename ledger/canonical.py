"""Canonical bytes (RFC 8785, JSON Canonicalization Scheme) and the JSON value domain.

Everything signed or hashed by the ledger goes through :func:`canonical_bytes`.
Envelope payloads are limited to JSON that every implementation reads the same way:
objects with string keys, arrays, strings, booleans, null and integers within
±(2**53 - 1). Decimals travel as strings, so no float ever needs canonicalising.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, NoReturn, cast

import orjson
import rfc8785

from ledger.errors import LimitExceeded, ValidationFailed

__all__ = [
    "FOUR_BYTE_UTF8",
    "MAX_DEPTH",
    "MAX_SAFE_INTEGER",
    "CanonicalObject",
    "canonical_bytes",
    "check_json_value",
    "has_float",
]

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 32


class CanonicalObject(dict[str, Any]):
    """A JSON object that keeps its canonical bytes, taken once when it was made.

    :func:`canonical_bytes` answers :attr:`canonical` for it without encoding again. Its
    members cannot be set or removed, so the bytes stay those of the object.
    """

    __slots__ = ("canonical",)

    def __init__(self, members: Mapping[str, Any], canonical: bytes) -> None:
        super().__init__(members)
        self.canonical = canonical

    def __reduce__(self) -> tuple[Any, ...]:
        return (CanonicalObject, (dict(self), self.canonical))

    def _read_only(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("a canonical object's members are fixed")

    __setitem__ = __delitem__ = __ior__ = _read_only
    update = pop = popitem = clear = setdefault = _read_only  # type: ignore[assignment]


def canonical_bytes(value: Any, *, float_free: bool = False) -> bytes:
    """The RFC 8785 canonical UTF-8 encoding of a JSON value.

    Without floats and without characters outside the Basic Multilingual Plane (whose
    keys RFC 8785 sorts by UTF-16 code units), RFC 8785 equals orjson's sorted compact
    output, which is an order of magnitude faster; the property tests in
    ``tests/foundation/test_envelopes.py`` hold the two equal. Anything else goes
    through the ``rfc8785`` package.

    ``float_free=True`` skips the walk that looks for floats: only for a caller that
    already knows ``value`` holds none (a float would then be encoded as orjson does,
    not as RFC 8785 does).

    A :class:`CanonicalObject` is answered with the bytes it keeps.
    """
    if type(value) is CanonicalObject:
        return value.canonical
    if float_free or not has_float(value):
        try:
            encoded = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except (orjson.JSONEncodeError, TypeError):
            encoded = b""  # e.g. a lone surrogate or a big integer: let rfc8785 decide
        if encoded and (encoded.isascii() or not FOUR_BYTE_UTF8.search(encoded)):
            return encoded
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise ValidationFailed(f"value cannot be canonicalised: {exc}") from exc


def has_float(value: Any) -> bool:
    """True when ``value`` is or holds a float, at any depth."""
    kind = type(value)
    if kind is not dict and kind is not list:
        return kind is float
    stack = [value]
    while stack:
        item = stack.pop()
        children = item.values() if type(item) is dict else item
        # One pass in C over each container's members; only containers are walked further.
        kinds = set(map(type, children))
        if float in kinds:
            return True
        if dict in kinds or list in kinds:
            stack.extend([child for child in children if type(child) in _NESTED])
    return False


_NESTED = (dict, list)
#: A lead byte of 0xF0 or more starts a 4-byte UTF-8 sequence: a non-BMP character.
FOUR_BYTE_UTF8 = re.compile(b"[\xf0-\xff]")


def check_json_value(value: Any, *, field: str, depth: int = 0) -> None:
    """Refuse anything outside the ledger's JSON domain, naming the offending path."""
    if not _plainly_in_domain(value, depth):
        _check_node(value, field=field, depth=depth)


_PLAIN = frozenset({dict, list, str, int, bool, type(None)})
_STR = frozenset({str})


def _plainly_in_domain(value: Any, depth: int) -> bool:
    """True when ``value`` (at nesting ``depth``) is certainly in the domain: only plain
    JSON types, integers in range, no deeper than allowed, every string valid Unicode.

    False means look closer: :func:`_check_node` then finds the offending path (or, for
    what this quick walk is too strict about, such as a ``dict`` subclass, accepts it).
    Each container's members are typed in one pass in C, and no path is built.
    """
    if type(value) is not dict and type(value) is not list:
        return False  # a scalar: the exact check is as quick
    level = [value]
    while level:
        if depth >= MAX_DEPTH:
            return False  # members would sit at the limit or beyond: count exactly
        below: list[Any] = []
        for item in level:
            if type(item) is dict and not set(map(type, item)) <= _STR:
                return False
            members = list(item.values()) if type(item) is dict else cast(list[Any], item)
            kinds = set(map(type, members))
            if not kinds <= _PLAIN:
                return False
            if int in kinds and not all(
                -MAX_SAFE_INTEGER <= member <= MAX_SAFE_INTEGER
                for member in members
                if type(member) is int
            ):
                return False
            if dict in kinds or list in kinds:
                below.extend([member for member in members if type(member) in _NESTED])
        level = below
        depth += 1
    try:
        orjson.dumps(value)  # refuses a lone surrogate, in a key or a string
    except orjson.JSONEncodeError:
        return False
    return True


def _check_node(value: Any, *, field: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise LimitExceeded(f"nested deeper than {MAX_DEPTH} levels", field=field)
    if value is None or isinstance(value, (bool, str)):
        if isinstance(value, str):
            _check_string(value, field=field)
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValidationFailed("integer outside ±(2**53-1): send it as a string", field=field)
        return
    if isinstance(value, float):
        hint = "NaN and infinities are not JSON" if not math.isfinite(value) else ""
        raise ValidationFailed(
            hint or "numbers with a fraction must be sent as decimal strings", field=field
        )
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationFailed("object keys must be strings", field=field)
            _check_string(key, field=f"{field}.{key}")
            _check_node(item, field=f"{field}.{key}", depth=depth + 1)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_node(item, field=f"{field}[{index}]", depth=depth + 1)
        return
    raise ValidationFailed(f"{type(value).__name__} is not a JSON value", field=field)


def _check_string(value: str, *, field: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationFailed("string is not valid Unicode (lone surrogate)", field=field) from exc
