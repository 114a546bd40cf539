"""Times and keys read again and again give the same answer each time: the same instant,
the same key, and for bad text the same refusal, naming the field of each caller."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from nacl.signing import SigningKey

from ledger.errors import ValidationFailed
from ledger.keys import decode_public_key, encode_public_key, key_id
from ledger.log.meta import LedgerIdentity
from ledger.timeutil import format_utc, parse_time, parse_utc


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2026-03-03T09:15:00.123Z", datetime(2026, 3, 3, 9, 15, 0, 123000, tzinfo=UTC)),
        ("2026-03-03T09:15:00Z", datetime(2026, 3, 3, 9, 15, tzinfo=UTC)),
        ("2026-03-03T09:15:00.5+00:00", datetime(2026, 3, 3, 9, 15, 0, 500000, tzinfo=UTC)),
        ("2026-03-03T09:15:00.123456789Z", datetime(2026, 3, 3, 9, 15, 0, 123456, tzinfo=UTC)),
        ("2024-02-29T23:59:59.999Z", datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=UTC)),
    ],
)
def test_a_utc_time_read_twice_is_the_same_instant_in_utc(text: str, instant: datetime) -> None:
    for _ in range(2):
        parsed = parse_utc(text, field="signed_at")
        assert parsed == instant
        assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "wording"),
    [
        ("2026-02-30T09:15:00.000Z", "not a valid date or time"),
        ("2026-03-03T24:00:00.000Z", "not a valid date or time"),
        ("2026-03-03T09:15:60.000Z", "not a valid date or time"),
        ("2026-03-03T09:15:00.000+02:00", "time must be in UTC"),
        ("2026-03-03 09:15:00.000Z", "expected an RFC 3339 UTC time"),
        ("2026-03-03T09:15:00.000z", "expected an RFC 3339 UTC time"),
        ("2026-03-03T09:15:00.000", "expected an RFC 3339 UTC time"),
    ],
)
def test_a_refused_time_is_refused_each_time_naming_each_caller_s_field(
    text: str, wording: str
) -> None:
    for field in ("signed_at", "added_at", "signed_at"):
        with pytest.raises(ValidationFailed, match=wording) as refused:
            parse_utc(text, field=field)
        assert refused.value.field == field


def test_a_value_that_is_not_text_is_refused_as_a_time() -> None:
    for value in (None, 1_700_000_000, ["2026-03-03T09:15:00Z"]):
        with pytest.raises(ValidationFailed) as refused:
            parse_utc(value, field="signed_at")
        assert refused.value.field == "signed_at"


@pytest.mark.parametrize("minutes", [0, 120, -330, 1439, -1439])
def test_an_instant_at_any_offset_is_written_in_utc_to_the_millisecond(minutes: int) -> None:
    instant = datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    local = instant.astimezone(timezone(timedelta(minutes=minutes)))
    assert format_utc(local) == "2026-12-31T23:59:59.999Z"
    assert parse_utc(format_utc(local), field="at") == instant.replace(microsecond=999000)
    assert parse_time(format_utc(local), field="at") == instant.replace(microsecond=999000)


def test_a_naive_time_is_not_written() -> None:
    with pytest.raises(ValidationFailed) as refused:
        format_utc(datetime(2026, 3, 3, 9, 15))
    assert refused.value.field == "datetime"


def test_a_key_read_twice_is_the_same_key() -> None:
    text = encode_public_key(SigningKey.generate())
    first, second = decode_public_key(text), decode_public_key(text)
    assert first == second
    assert encode_public_key(second) == text


@pytest.mark.parametrize(
    ("text", "wording"),
    [
        ("ed25519:not base64!", "not valid base64"),
        ("ed25519:AAAA", "has 3 bytes, expected 32"),
        ("rsa:AAAA", "expected 'ed25519:"),
    ],
)
def test_a_refused_key_is_refused_each_time_naming_each_caller_s_field(
    text: str, wording: str
) -> None:
    for field in ("public_key", "notary_public_key", "public_key"):
        with pytest.raises(ValidationFailed, match=wording) as refused:
            decode_public_key(text, field=field)
        assert refused.value.field == field


def test_the_notary_key_id_is_the_id_of_the_identity_s_own_key() -> None:
    keys = [SigningKey.generate().verify_key for _ in range(2)]
    for key in keys:
        identity = LedgerIdentity("ledger.example.com/cmo", encode_public_key(key), "")
        assert identity.notary_key_id == key_id(key)
        assert identity.notary_key_id == key_id(key)
