"""Canonical bytes (RFC 8785, JSON Canonicalization Scheme) and the JSON value domain.

Everything signed or hashed by the ledger goes through :func:`canonical_bytes`.
Envelope payloads are limited to JSON that every implementation reads the same way:
objects with string keys, arrays, strings, booleans, null and integers within
±(2**53 - 1). Decimals travel as strings, so no float ever needs canonicalising.
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson
import rfc8785

from ledger.errors import LimitExceeded, ValidationFailed

__all__ = [
    "FOUR_BYTE_UTF8",
    "MAX_DEPTH",
    "MAX_SAFE_INTEGER",
    "canonical_bytes",
    "check_json_value",
    "has_float",
]

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 32


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
    """
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
            check_json_value(item, field=f"{field}.{key}", depth=depth + 1)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            check_json_value(item, field=f"{field}[{index}]", depth=depth + 1)
        return
    raise ValidationFailed(f"{type(value).__name__} is not a JSON value", field=field)


def _check_string(value: str, *, field: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationFailed("string is not valid Unicode (lone surrogate)", field=field) from exc
