"""Canonical bytes (RFC 8785, JSON Canonicalization Scheme) and the JSON value domain.

Everything signed or hashed by the ledger goes through :func:`canonical_bytes`.
Envelope payloads are limited to JSON that every implementation reads the same way:
objects with string keys, arrays, strings, booleans, null and integers within
±(2**53 - 1). Decimals travel as strings, so no float ever needs canonicalising.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

import rfc8785

from ledger.errors import LimitExceeded, ValidationFailed

__all__ = ["MAX_DEPTH", "MAX_SAFE_INTEGER", "canonical_bytes", "check_json_value", "sha256_hex"]

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 32


def canonical_bytes(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 encoding of a JSON value.

    Inside the ledger's value domain (no floats, no object key outside the Basic
    Multilingual Plane, no lone surrogates) RFC 8785 and ``json.dumps`` with sorted keys
    produce the same bytes, and the latter is several times faster; the property tests
    in ``tests/foundation/test_envelopes.py`` hold the two equal. Anything else goes
    through the ``rfc8785`` package.
    """
    if _in_fast_domain(value):
        try:
            return _FAST.encode(value).encode("utf-8")
        except UnicodeEncodeError:
            pass
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise ValidationFailed(f"value cannot be canonicalised: {exc}") from exc


_FAST = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))
_NON_BMP = re.compile("[\U00010000-\U0010ffff]")


def _in_fast_domain(value: Any) -> bool:
    # Sorting by code point equals sorting by UTF-16 code unit only within the BMP.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str) or _NON_BMP.search(key):
                    return False
                if isinstance(child, (dict, list, float)):
                    stack.append(child)
        elif isinstance(item, list):
            stack.extend(child for child in item if isinstance(child, (dict, list, float)))
        elif isinstance(item, float):
            return False
    return True


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


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
