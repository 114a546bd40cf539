"""The log in order: subjects' version chains, signers and their keys (KeyHistory rules)."""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from eventsourcing.utils import get_topic
from nacl.signing import VerifyKey

from ledger.domain.key_history import compromised, finding
from ledger.domain.parties import NOTARY
from ledger.errors import LedgerError
from ledger.keys import decode_public_key, key_id
from ledger.log.verify.findings import Findings
from ledger.log.verify.rows import (
    SIGNATURE_BAD,
    SIGNATURE_MALFORMED,
    SIGNATURE_OK,
    SIGNATURE_UNKNOWN_KEY,
    TIME,
    Checked,
    posix_time,
)
from ledger.timeutil import format_utc
from ledger.wording import article

if TYPE_CHECKING:
    from ledger.application import Ledger


# ---------------------------------------------------------------- the log's order


@dataclass
class Key:
    """A party key as the log has registered it so far."""

    party: str
    public_key: VerifyKey
    added_at: datetime
    position: int
    trusted: bool
    # The earliest signed_at (a POSIX timestamp) the clock skew allows for this key.
    earliest: float = float("-inf")
    revoked_at: datetime | None = None
    revoked_position: int | None = None
    compromised_since: datetime | None = None
    # When it signed, when the ledger recorded it, where and at which leaf, until revoked.
    signed: tuple[array[float], array[float], array[int], array[int]] = field(
        default_factory=lambda: (array("d"), array("d"), array("q"), array("q"))
    )


@dataclass(slots=True)
class _Subject:
    version: int
    event_hash: str
    aggregate: str
    party: str | None = None


@dataclass(frozen=True, slots=True)
class Spec:
    topic: str
    creates: bool
    aggregate: str


def specs() -> dict[str, Spec]:
    from ledger.domain.catalogue import registered_types

    return {
        spec.type: Spec(
            get_topic(getattr(spec.aggregate, spec.type)), spec.creates, spec.aggregate.__name__
        )
        for spec in registered_types()
    }


_NO_KEYS: Mapping[str, Key] = {}


class LogCheck:
    """Checks that need the log's order: chains, signers and their keys.

    Each event takes a short path when nothing about it is wrong; anything else goes
    through the checks that say what is wrong.
    """

    def __init__(self, ledger: Ledger, findings: Findings) -> None:
        identity = ledger.identity
        self.origin = identity.origin
        self.notary_key_id = identity.notary_key_id
        self.skew = timedelta(seconds=ledger.settings.max_clock_skew)
        self.specs = specs()
        self.found = findings
        self.subjects: dict[str, _Subject] = {}
        self.keys: dict[str, dict[str, Key]] = {}

    def events(self, chunk: Sequence[tuple[Any, ...]], first_index: int) -> None:
        """Check a chunk of :class:`Checked` tuples; ``first_index`` is its first leaf index."""
        error, specs, subjects = self.found.error, self.specs, self.subjects
        for index, row in enumerate(chunk, first_index):
            position, subject, _, errors, kind, _, version, prev, digest = row[:9]
            for message in errors:
                error(position, index, message)
            if kind is None:
                continue  # not an event: its one finding is all there is to say
            spec = specs.get(kind)
            current = subjects.get(subject)
            if (
                current is not None
                and spec is not None
                and version == current.version + 1
                and prev == current.event_hash
                and not spec.creates
                and spec.aggregate == current.aggregate
            ):
                current.version, current.event_hash = version, digest
            else:
                self._chain(Checked._make(row), index, spec)
            signer, key, _, signed_time, signature, recorded_at, payload = row[9:]
            if signature != SIGNATURE_OK or not self._valid_key(
                signer, key, signed_time, recorded_at, position, index
            ):
                self._signature(Checked._make(row), index)
            if payload is not None:
                self._key_history(Checked._make(row), index)

    def _valid_key(
        self,
        signer: str,
        key: str,
        signed_time: float | None,
        recorded_at: str,
        position: int,
        index: int,
    ) -> bool:
        """True, with the signature recorded, when the key was the signer's and valid."""
        if signer == NOTARY:
            return key == self.notary_key_id
        found = self.keys.get(signer, _NO_KEYS).get(key)
        if (
            found is None
            or not found.trusted
            or found.revoked_at is not None
            or signed_time is None
            or signed_time < found.earliest
        ):
            return False
        _remember(found, signed_time, recorded_at, position, index)
        return True

    def _chain(self, c: Checked, index: int, spec: Spec | None) -> None:
        error, position = self.found.error, c.position
        current = self.subjects.get(c.subject)
        if current is None:
            if c.envelope_version != 1 or c.prev is not None:
                error(
                    position,
                    index,
                    f"first event of subject {c.envelope_subject} has version "
                    f"{c.envelope_version} and prev {c.prev}; expected version 1 and no prev",
                )
            if spec is not None and not spec.creates:
                error(position, index, f"{c.type} cannot start a subject")
            aggregate = "?" if spec is None else spec.aggregate
            self.subjects[c.subject] = _Subject(c.envelope_version, c.event_hash, aggregate)
            return
        if c.envelope_version != current.version + 1:
            error(
                position,
                index,
                f"version {c.envelope_version} follows version {current.version} of subject "
                f"{c.envelope_subject}",
            )
        if c.prev != current.event_hash:
            error(
                position,
                index,
                f"prev is not the hash of version {current.version} of {c.envelope_subject}",
            )
        if spec is not None and (spec.creates or spec.aggregate != current.aggregate):
            kind = article(current.aggregate)
            error(position, index, f"{c.type} does not apply to {kind} subject")
        current.version, current.event_hash = c.envelope_version, c.event_hash

    def _signature(self, c: Checked, index: int) -> None:
        error, position = self.found.error, c.position
        if c.signature == SIGNATURE_MALFORMED:
            error(position, index, "signature is not base64 of 64 bytes")
        elif c.signature == SIGNATURE_BAD:
            error(position, index, f"signature does not verify with key {c.key}")
        elif c.signature == SIGNATURE_UNKNOWN_KEY:
            error(position, index, f"key {c.key} was never registered on this ledger")
        if c.signer == NOTARY:
            if c.key != self.notary_key_id:
                error(position, index, f"key {c.key} is not the notary's key")
            return
        key = self.keys.get(c.signer, {}).get(c.key)
        if key is None:
            self._unknown_key(c, index)
            return
        if c.signed_time is None:
            error(position, index, f"signed_at {c.signed_at!r} is not an RFC 3339 UTC time")
            return
        self._key_valid(c, index, key, c.signed_time)

    def _unknown_key(self, c: Checked, index: int) -> None:
        if c.signer not in self.keys:
            self.found.error(c.position, index, f"signer {c.signer!r} is not an admitted party")
            return
        owners = [party for party, keys in self.keys.items() if c.key in keys]
        whose = f" (it is a key of {owners[0]})" if owners else ""
        self.found.error(c.position, index, f"key {c.key} is not a key of {c.signer}{whose}")

    def _key_valid(self, c: Checked, index: int, key: Key, signed_time: float) -> None:
        error, position = self.found.error, c.position
        if not key.trusted:
            error(
                position,
                index,
                f"key {c.key} was registered by the event at position {key.position}, "
                "which fails verification",
            )
        if key.revoked_at is not None:
            error(
                position,
                index,
                f"key {c.key} of {c.signer} was revoked at position {key.revoked_position}",
            )
            return
        if signed_time < key.earliest:
            error(position, index, f"signed at {c.signed_at}, before key {c.key} was added")
        _remember(key, signed_time, c.recorded_at, position, index)

    def _key_history(self, c: Checked, index: int) -> None:
        payload = c.payload or {}
        at = parse_time(c.recorded_at)
        if at is None:
            self.found.error(c.position, index, f"recorded_at {c.recorded_at!r} is not UTC")
            return
        trusted = c.position not in self.found.failed
        try:
            if c.type in ("PartyAdmitted", "PersonAdmitted"):
                party = str(payload["party"])
                self.subjects[c.subject].party = party
                self.keys.setdefault(party, {})
                self._add_key(party, payload["public_key"], at, c.position, trusted)
                return
            party_of = self.subjects[c.subject].party
            if party_of is None:
                return  # already reported: not a party subject
            if c.type in ("KeyAdded", "PersonKeyAdded"):
                self._add_key(party_of, payload["public_key"], at, c.position, trusted)
            else:
                self._revoke(party_of, payload, at, c.position, index)
        except (KeyError, TypeError, LedgerError) as exc:
            self.found.error(c.position, index, f"{c.type} payload cannot be applied: {exc}")

    def _add_key(self, party: str, public_key: Any, at: datetime, position: int, ok: bool) -> None:
        verify_key = decode_public_key(public_key)
        try:
            # Timestamps order exactly as the datetimes do (microseconds stay distinct).
            earliest = (at - self.skew).timestamp()
        except OverflowError:
            earliest = float("-inf")  # no time can be earlier than that
        key = Key(party, verify_key, at, position, ok, earliest)
        self.keys[party][key_id(verify_key)] = key

    def _revoke(
        self, party: str, payload: Mapping[str, Any], at: datetime, position: int, index: int
    ) -> None:
        kid = str(payload["key"])
        key = self.keys[party].get(kid)
        if key is None:
            self.found.error(position, index, f"KeyRevoked names key {kid}, not a key of {party}")
            return
        raw_since = payload.get("compromised_since")
        since = at if raw_since is None else parse_time(raw_since)
        if since is None:
            self.found.error(position, index, f"compromised_since {raw_since!r} is not UTC")
            since = at
        key.revoked_at, key.revoked_position, key.compromised_since = at, position, since
        limit = since.timestamp()
        said = finding(party, kid, format_utc(since))
        for signed_at, recorded, signed_position, signed_index in zip(*key.signed, strict=True):
            if compromised(signed_at, recorded, limit):
                self.found.compromised(
                    signed_position, signed_index, f"{said} (revoked at position {position})"
                )
        key.signed = (array("d"), array("d"), array("q"), array("q"))


def _remember(key: Key, signed_time: float, recorded_at: str, position: int, index: int) -> None:
    """Keep what a later revocation needs to judge this signature by the compromise rule."""
    times, recorded, positions, indexes = key.signed
    times.append(signed_time)
    recorded.append(posix_time(recorded_at) or float("inf"))
    positions.append(position)
    indexes.append(index)


def parse_time(text: object) -> datetime | None:
    """An RFC 3339 UTC time, or ``None``."""
    if not isinstance(text, str) or not TIME.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return None
