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


CLIENTS_PUBLIC = {
    "ClientError",
    "Draft",
    "ImportRefused",
    "InclusionProof",
    "LedgerClient",
    "NotCheckpointed",
    "PartyAuth",
    "ProofFailed",
    "ServerRefused",
    "Submitted",
    "TransportFailure",
    "VerificationError",
    "VerifiedCheckpoint",
    "VersionConflict",
}


def test_the_clients_public_api_is_exactly_the_pinned_names() -> None:
    import clients

    assert set(clients.__all__) == CLIENTS_PUBLIC
    for name in CLIENTS_PUBLIC:
        assert getattr(clients, name).__name__ == name


def test_every_client_error_is_a_client_error_with_a_code() -> None:
    import clients

    # ServerRefused is left out: each one carries the code the server sent.
    errors = [clients.NotCheckpointed, clients.ProofFailed, clients.TransportFailure]
    errors.append(clients.VersionConflict)
    for cls in errors:
        assert issubclass(cls, clients.ClientError) and cls.code != clients.ClientError.code
    assert issubclass(clients.ServerRefused, clients.ClientError)
