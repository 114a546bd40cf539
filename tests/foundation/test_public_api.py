"""The public API is pinned: adding or removing a name is a deliberate change."""

from __future__ import annotations

import ledger
import ledger.errors

PUBLIC = {
    "Appended",
    "BadSignature",
    "ConfigurationError",
    "Envelope",
    "Forbidden",
    "KeyRevoked",
    "Ledger",
    "LedgerError",
    "LimitExceeded",
    "NotFound",
    "Settings",
    "StoredEvent",
    "Unavailable",
    "UnknownSigner",
    "ValidationFailed",
    "VersionConflict",
    "event_hash",
    "key_id",
    "sign_envelope",
}


def test_the_public_api_is_exactly_the_pinned_names() -> None:
    assert set(ledger.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(ledger, name) is not None


def test_every_error_has_a_stable_distinct_code() -> None:
    classes = [getattr(ledger.errors, name) for name in ledger.errors.__all__]
    codes = [cls.code for cls in classes if cls is not ledger.errors.LedgerError]
    assert len(codes) == len(set(codes))
    assert {
        "BAD_SIGNATURE",
        "KEY_REVOKED",
        "UNKNOWN_SIGNER",
        "VERSION_CONFLICT",
        "FORBIDDEN",
        "VALIDATION_FAILED",
        "NOT_FOUND",
        "LIMIT_EXCEEDED",
    } <= set(codes)
    for cls in classes:
        assert issubclass(cls, ledger.LedgerError)
