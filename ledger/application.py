"""The ledger application: one command path for every event type.

``Ledger.append`` (and ``append_many``, all or nothing) takes a signed envelope and:

1. checks its shape and size, and that it names this ledger;
2. finds the signer's key, valid now and at ``signed_at``, and verifies the signature;
3. checks the meaning and reason the event type allows;
4. checks ``version`` and ``prev`` against the subject's history;
5. applies the event type's domain rule, which takes the openings sent beside the
   envelope for its committed confidential elements (:mod:`ledger.domain.commitments`);
6. saves, with the server's ``recorded_at``, storing those openings (and deleting the
   ones a purge names) in the same transaction (:mod:`ledger.log.openings`).

Any refusal raises a ``LedgerError`` and stores nothing.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import (
    IntegrityError,
    Mapper,
    Notification,
    OperationalError,
    PersistenceError,
)
from eventsourcing.utils import Environment
from nacl.signing import VerifyKey
from sqlalchemy.engine import Engine

import ledger.domain.registry  # noqa: F401  (registers every event type)
from ledger.aggregate_cache import AggregateCache
from ledger.clock import SYSTEM, Clock
from ledger.config import Settings
from ledger.domain import persons
from ledger.domain.catalogue import (
    SCHEMA_VERSION,
    Command,
    EventSpec,
    LedgerState,
    SignedAggregate,
    lookup,
)
from ledger.domain.commitments import Openings
from ledger.domain.parties import NOTARY, Party
from ledger.domain.payloads import decode_payload
from ledger.domain.subjects import party_subject
from ledger.errors import (
    ConfigurationError,
    Forbidden,
    LedgerError,
    LimitExceeded,
    NotFound,
    Unavailable,
    UnknownSigner,
    ValidationFailed,
    VersionConflict,
)
from ledger.keys import decode_public_key
from ledger.log.envelope import Envelope, StoredEvent
from ledger.log.leaf import is_leaf
from ledger.log.mapper import LeafMapper
from ledger.log.meta import LedgerIdentity, read_identity, write_identity
from ledger.log.openings import create_openings, purge_openings, store_openings, truncate_wal
from ledger.log.signature_workers import SIGNATURES_AHEAD_FROM, Checks, SignatureWorkers
from ledger.log.storage import Storage
from ledger.timeutil import format_utc
from ledger.version import SOFTWARE_VERSION, WrittenBy
from ledger.wording import article

__all__ = ["AppendRequest", "Appended", "Ledger", "Recorded"]

_A = TypeVar("_A", bound=Aggregate)


@dataclass(frozen=True, slots=True)
class Appended:
    """What the ledger answers for an accepted envelope."""

    position: int
    subject: UUID
    version: int
    type: str
    recorded_at: str
    event_hash: str
    purged: tuple[str, ...] = ()
    written_by: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    """A stored event read back from the log."""

    position: int
    subject: UUID
    version: int
    topic: str
    event: StoredEvent


class Ledger(Application[UUID]):
    """The event-sourced ledger; open one with :meth:`open` or create with :meth:`initialise`."""

    name = "Ledger"

    def __init__(self, settings: Settings, clock: Clock = SYSTEM) -> None:
        self.clock = clock
        self.settings = settings
        _ensure_sqlite_dir(settings)
        super().__init__(env=settings.eventsourcing_env())
        self.storage = Storage(self.recorder)
        identity = read_identity(self.engine)
        create_openings(self.engine)
        self._identity = identity
        self._listeners: list[Callable[[int], None]] = []
        self._listeners_lock = threading.Lock()
        self._aggregates = AggregateCache()
        self._signature_workers = SignatureWorkers()

    def close(self) -> None:
        """Stop the signature workers, if started, and close the database."""
        self._signature_workers.close()
        super().close()

    def construct_mapper(self) -> Mapper[UUID]:
        """Signed events are stored as their Merkle leaf bytes (see ``ledger.log.mapper``),
        each recording :meth:`written_by`."""
        mapper = self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=LeafMapper
        )
        written_by = self.written_by()
        cast(LeafMapper, mapper).written_by = None if written_by is None else written_by.as_json()
        return mapper

    def written_by(self) -> WrittenBy | None:
        """The software and catalogue schema version new events record (R31)."""
        return WrittenBy(SOFTWARE_VERSION, SCHEMA_VERSION)

    def construct_env(self, name: str, env: Mapping[str, str] | None = None) -> Environment:
        """Only the mapping built from ``Settings``: stray process variables never leak in."""
        return Environment(name, dict(env or {}))

    @classmethod
    def open(cls, settings: Settings, clock: Clock = SYSTEM) -> Ledger:
        """Open an initialised ledger; refuse a database that holds none."""
        path = settings.sqlite_path()
        if path is not None and not path.exists():
            raise ConfigurationError(
                f"no ledger at {path}: run `cmo-ledger init --origin ORIGIN` first",
                field="CMO_LEDGER_DATABASE_URL",
            )
        ledger = cls(settings, clock)
        if ledger._identity is None:
            ledger.close()
            raise ConfigurationError(
                "the database holds no ledger: run `cmo-ledger init --origin ORIGIN` first",
                field="CMO_LEDGER_DATABASE_URL",
            )
        return ledger

    @classmethod
    def initialise(
        cls, settings: Settings, origin: str, notary_public_key: str, clock: Clock = SYSTEM
    ) -> Ledger:
        """Create the tables and record the ledger's origin and notary key."""
        _check_origin(origin)
        decode_public_key(notary_public_key, field="notary_public_key")
        ledger = cls(settings, clock)
        try:
            identity = LedgerIdentity(origin, notary_public_key, format_utc(clock.now()))
            write_identity(ledger.engine, identity)
        except BaseException:
            ledger.close()
            raise
        ledger._identity = identity
        return ledger

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine shared by events, views and the Merkle tables."""
        return self.storage.engine

    @property
    def identity(self) -> LedgerIdentity:
        """Origin and notary key of this ledger."""
        if self._identity is None:
            raise ConfigurationError("ledger not initialised", field="CMO_LEDGER_DATABASE_URL")
        return self._identity

    def add_listener(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(last_position)`` after every successful append."""
        with self._listeners_lock:
            self._listeners.append(listener)

    def append(
        self, envelope: Mapping[str, Any], signature: str, openings: Sequence[Any] | None = None
    ) -> Appended:
        """Verify, check and store one signed envelope (and the openings beside it)."""
        return self.append_many([(envelope, signature)], [openings])[0]

    def append_many(
        self,
        items: Sequence[tuple[Mapping[str, Any], str]],
        openings: Sequence[Sequence[Any] | None] | None = None,
    ) -> list[Appended]:
        """Verify, check and store envelopes in order: all of them or none.

        ``openings[i]`` lists the openings sent beside envelope ``i`` (JSON objects with
        ``record``, ``element``, ``salt``, ``value``), or is ``None``."""
        outcome = self.append_group([(items, openings)])[0]
        if isinstance(outcome, LedgerError):
            raise outcome
        return outcome

    def append_group(
        self, requests: Sequence[AppendRequest], *, tell: bool = True
    ) -> list[list[Appended] | LedgerError]:
        """Check each request as :meth:`append_many` would and store the accepted ones
        together, in order, in one transaction; with ``tell=False`` the caller tells the
        listeners (:meth:`tell_listeners`) when it sees fit.

        A refused request gets its own error in its place and stores nothing; the others
        are unaffected. A failed transaction (the database unavailable) stores none of them
        and raises. When the transaction is refused for one request's sake (another writer
        stored a version first, an opening already stored), each request is stored alone,
        so that only the one concerned fails."""
        outcomes: list[list[Appended] | LedgerError | None] = [None] * len(requests)
        sent: dict[int, list[Sequence[Any] | None]] = {}
        for index, (items, openings) in enumerate(requests):
            try:
                sent[index] = self._check_request(items, openings)
            except LedgerError as error:
                outcomes[index] = error
        cache = self._aggregates
        with cache.lock:
            cache.catch_up(self.storage.subjects_after, self.head)
            state, admitted = self._admit_group(requests, sent, outcomes)
            try:
                stored = self._store_group(admitted) if admitted else []
            except BaseException as error:
                # Aggregates the unsaved group changed in place are not current.
                cache.forget(state.touched())
                alone = len(admitted) == 1
                if alone or not isinstance(error, LedgerError) or isinstance(error, Unavailable):
                    raise
                stored = None  # refused for one request's sake: store each alone
        if stored is None:
            return self._append_each(requests, outcomes, admitted)
        for index, results in stored:
            outcomes[index] = results
        if stored and tell:
            self.tell_listeners(stored[-1][1][-1].position)
        return _settled(outcomes)

    def _check_request(
        self,
        items: Sequence[tuple[Mapping[str, Any], str]],
        openings: Sequence[Sequence[Any] | None] | None,
    ) -> list[Sequence[Any] | None]:
        if not items:
            raise ValidationFailed("nothing to append", field="envelopes")
        if len(items) > self.settings.max_batch:
            raise LimitExceeded(
                f"at most {self.settings.max_batch} envelopes per batch", field="envelopes"
            )
        sent = list(openings or [None] * len(items))
        if len(sent) != len(items):
            raise ValidationFailed("one list of openings per envelope", field="openings")
        return sent

    def _admit_group(
        self,
        requests: Sequence[AppendRequest],
        sent: Mapping[int, Sequence[Sequence[Any] | None]],
        outcomes: list[list[Appended] | LedgerError | None],
    ) -> tuple[_BatchState, list[tuple[int, _Admitted]]]:
        """The requests' admissions against one state, refusals put in ``outcomes``.

        A request refused after it changed aggregates in place (its second envelope, say)
        leaves them changed: the cache forgets what the group touched and the group is
        checked again without it. Any other failure (a read the database did not answer)
        fails the group, and the cache forgets what the requests before it changed."""
        now = self.clock.now()
        while True:
            state = _BatchState(self, self._aggregates)
            admitted: list[tuple[int, _Admitted]] = []
            try:
                for index in sent:
                    if outcomes[index] is not None:
                        continue
                    recorded = state.records
                    try:
                        items = requests[index][0]
                        admitted.append((index, self._admit_all(items, sent[index], state, now)))
                    except LedgerError as error:
                        outcomes[index] = error
                        if state.records != recorded:
                            break
                else:
                    return state, admitted
            except BaseException:
                self._aggregates.forget(state.touched())
                raise
            self._aggregates.forget(state.touched())

    def _store_group(
        self, admitted: Sequence[tuple[int, _Admitted]]
    ) -> list[tuple[int, list[Appended]]]:
        events = [event for _, one in admitted for event in one.events]
        commands = [command for _, one in admitted for command in one.commands]
        recordings = self._save_translated(events, commands)
        stored: list[tuple[int, list[Appended]]] = []
        start = 0
        for index, one in admitted:
            end = start + len(one.commands)
            stored.append((index, self._results(recordings[start:end], one)))
            start = end
        self._aggregates.stored([r.notification.id for r in recordings])
        return stored

    def _append_each(
        self,
        requests: Sequence[AppendRequest],
        outcomes: list[list[Appended] | LedgerError | None],
        admitted: Sequence[tuple[int, _Admitted]],
    ) -> list[list[Appended] | LedgerError]:
        for index, _ in admitted:
            try:
                outcomes[index] = self.append_many(*requests[index])
            except LedgerError as error:
                outcomes[index] = error
        return _settled(outcomes)

    def _admit_all(
        self,
        items: Sequence[tuple[Mapping[str, Any], str]],
        sent: Sequence[Sequence[Any] | None],
        state: _BatchState,
        now: datetime,
    ) -> _Admitted:
        admitted = _Admitted(now)
        state.expect(raw for raw, _ in items)
        ahead = self._check_ahead(items, state)
        for index, (raw, signature) in enumerate(items):
            try:
                offered = Openings.parse(sent[index])
                command, spec = self._admit(raw, signature, now, state, offered, ahead, index)
                state.records += 1
                aggregate = spec.record(command)
            except LedgerError as error:
                ahead.checks.cancel()
                _name_envelope(error, index, len(items))
                raise
            except BaseException:
                ahead.checks.cancel()
                raise
            state.changed(aggregate)
            admitted.events.extend(aggregate.collect_events())
            admitted.hashes.append(aggregate.last_event_hash or "")
            admitted.commands.append(command)
        return admitted

    def _results(self, recordings: Sequence[Any], admitted: _Admitted) -> list[Appended]:
        written_by = getattr(self.mapper, "written_by", None)
        return [
            Appended(
                position=recording.notification.id,
                subject=command.envelope.subject,
                version=command.envelope.version,
                type=command.envelope.type,
                recorded_at=command.recorded_at,
                event_hash=chain,
                purged=tuple(command.openings.purged),
                written_by=written_by,
            )
            for recording, chain, command in zip(
                recordings, admitted.hashes, admitted.commands, strict=True
            )
        ]

    def _check_ahead(
        self, items: Sequence[tuple[Mapping[str, Any], str]], state: _BatchState
    ) -> _Ahead:
        """For a large batch, each envelope parsed and its signature handed to workers with
        the key the state before the batch resolves; the rest is left to the checks in
        order, where each error belongs."""
        ahead = _Ahead()
        workers = self._signature_workers
        if len(items) < SIGNATURES_AHEAD_FROM or workers.workers < 2:
            return ahead
        indexes, signed = [], []
        for index, (raw, signature) in enumerate(items):
            try:
                envelope = ahead.parsed[index] = Envelope.parse(raw)
                key = self._signing_key(envelope, lookup(envelope.type), state)
                signed.append(envelope.signed_by(key, signature))
            except LedgerError:
                continue
            indexes.append(index)
        ahead.checks = workers.check(indexes, signed)
        return ahead

    def _admit(
        self,
        raw: Mapping[str, Any],
        signature: str,
        now: datetime,
        state: _BatchState,
        openings: Openings,
        ahead: _Ahead,
        index: int,
    ) -> tuple[Command, EventSpec]:
        envelope = ahead.parsed.get(index) or Envelope.parse(raw)
        if envelope.ledger != self.identity.origin:
            raise ValidationFailed(
                f"envelope is for ledger {envelope.ledger!r}, this is {self.identity.origin!r}",
                field="ledger",
            )
        spec = lookup(envelope.type)
        size = len(envelope.signing_bytes())
        if size > self.settings.max_envelope_bytes:
            raise LimitExceeded(
                f"envelope is {size} bytes; the limit is {self.settings.max_envelope_bytes}",
                field="payload",
            )
        self._check_clock(envelope, now)
        key = self._signing_key(envelope, spec, state)
        # Only an envelope handed to the workers has a verdict to compare (a single append
        # has none): the signed bytes are not gathered twice for the rest.
        checks = ahead.checks
        if not (
            checks.asked(index) and checks.verified(index, *envelope.signed_by(key, signature))
        ):
            envelope.verify(key, signature)
        if envelope.person is not None:
            persons.check_authority(state, envelope, envelope.person)
        spec.check_meaning_and_reason(envelope)
        subject = self._check_sequence(envelope, spec, state)
        command = Command(envelope, signature, format_utc(now), now, subject, state, openings)
        decode_payload(spec.type, envelope.payload)
        spec.rule(command)
        leftover = openings.leftover()
        if leftover:
            raise ValidationFailed(
                f"this {spec.type} commits no confidential element: send no openings",
                field=f"{openings.prefix}[{leftover[0][0]}]",
            )
        return command, spec

    def _check_clock(self, envelope: Envelope, now: datetime) -> None:
        skew = timedelta(seconds=self.settings.max_clock_skew)
        if envelope.signed_at > now + skew:
            raise ValidationFailed("signed_at is ahead of the ledger's clock", field="signed_at")
        if envelope.signed_at < now - timedelta(seconds=self.settings.max_signature_age):
            raise ValidationFailed(
                "signed_at is older than the accepted signature age: sign again",
                field="signed_at",
            )

    def _signing_key(self, envelope: Envelope, spec: EventSpec, state: _BatchState) -> VerifyKey:
        if envelope.signer == NOTARY:
            if envelope.person is not None:
                raise ValidationFailed("the notary signs without a person", field="person")
            if envelope.key != self.identity.notary_key_id:
                raise UnknownSigner("not the notary's key", field="key")
            return decode_public_key(self.identity.notary_public_key)
        party = state.party(envelope.signer)
        if party is None:
            raise UnknownSigner(f"no admitted party {envelope.signer!r}", field="signer")
        if envelope.person is not None:
            skew = self.settings.max_clock_skew
            text = persons.signing_key(state, envelope, envelope.person, skew)
            return decode_public_key(text)
        if spec.person_required:
            raise Forbidden(
                f"{envelope.type} is signed by a person of {envelope.signer}, not a party key: "
                "name the person (envelope member person) and sign with their key",
                field="person",
            )
        text = party.key_for_new_signature(
            envelope.key, envelope.signed_at, self.settings.max_clock_skew
        )
        record = party.keys[envelope.key]
        if record["purpose"] == "source-system" and not spec.source_keys:
            raise Forbidden(
                f"key {envelope.key} is a source-system key ({record['source']}); "
                f"sign {envelope.type} with a party key",
                field="key",
            )
        return decode_public_key(text)

    def _check_sequence(
        self, envelope: Envelope, spec: EventSpec, state: _BatchState
    ) -> SignedAggregate | None:
        current = state.find(envelope.subject, SignedAggregate)
        if current is not None and not isinstance(current, spec.aggregate):
            raise ValidationFailed(
                f"subject is {article(type(current).__name__)}, "
                f"not {article(spec.aggregate.__name__)}",
                field="subject",
            )
        expected_version = 1 if current is None else current.version + 1
        expected_prev = None if current is None else current.last_event_hash
        if spec.creates and current is not None:
            raise VersionConflict(
                f"subject already exists at version {current.version}", field="version"
            )
        if not spec.creates and current is None:
            raise NotFound(f"no subject {envelope.subject}", field="subject")
        if envelope.version != expected_version:
            raise VersionConflict(
                f"subject is at version {expected_version - 1}; sign version {expected_version}",
                field="version",
            )
        if envelope.prev != expected_prev:
            raise VersionConflict(
                "prev is not the event hash of the subject's last event: re-read and re-sign",
                field="prev",
            )
        return current

    def _save_translated(
        self, events: list[DomainEventProtocol[Any]], commands: Sequence[Command]
    ) -> list[Any]:
        purged = False
        try:
            with self.storage.transaction(commit=True) as session:
                for index, command in enumerate(commands):
                    envelope, kept = command.envelope, command.openings
                    try:
                        store_openings(session, str(envelope.subject), envelope.version, kept)
                    except LedgerError as error:
                        _name_envelope(error, index, len(commands))
                        raise
                    purged = purge_openings(session, kept.purged) > 0 or purged
                recordings = list(self.save(*events))
        except IntegrityError as exc:
            raise VersionConflict(
                "another writer stored this version first: re-read and re-sign", field="version"
            ) from exc
        except OperationalError as exc:
            raise Unavailable(f"the database is unavailable: {exc}") from exc
        except PersistenceError as exc:
            raise Unavailable(f"the database refused the write: {exc}") from exc
        if purged:
            truncate_wal(self.engine)
        return recordings

    def tell_listeners(self, position: int) -> None:
        """Call every listener with ``position``, the last of the events just stored."""
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(position)

    def get_aggregate(self, subject: UUID, kind: type[_A]) -> _A | None:
        """The current state of a subject, or ``None``."""
        try:
            aggregate: Any = self.repository.get(subject)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, kind) else None

    def next_version(self, subject: UUID) -> tuple[int, str | None]:
        """The ``version`` and ``prev`` a new envelope for ``subject`` must carry."""
        current = self.get_aggregate(subject, SignedAggregate)
        if current is None:
            return 1, None
        return current.version + 1, current.last_event_hash

    def party(self, party_id: str) -> Party | None:
        """An admitted party, or ``None``."""
        return self.get_aggregate(party_subject(party_id), Party)

    def head(self) -> int:
        """The position of the last stored event (0 for an empty log)."""
        return self.recorder.max_notification_id() or 0

    def read(self, after: int = 0, limit: int = 500, stop: int | None = None) -> list[Recorded]:
        """Stored events after position ``after``, in log order."""
        notifications = self.recorder.select_notifications(
            start=after, limit=limit, stop=stop, inclusive_of_start=False
        )
        return [self._recorded(n) for n in notifications]

    def read_at(self, positions: Sequence[int]) -> dict[int, Recorded]:
        """The stored events at ``positions`` (one query), by position."""
        if not positions:
            return {}
        with self.storage.transaction(commit=False) as session:
            rows = list(self.storage.events_in(session, list(positions)))
            notifications = [
                Notification(
                    id=row.id,
                    originator_id=row.originator_id,
                    originator_version=row.originator_version,
                    topic=row.topic,
                    state=bytes(row.state),
                )
                for row in rows
            ]
        return {n.id: self._recorded(n) for n in notifications}

    def iter_log(self, after: int = 0, page: int = 1000) -> Iterator[Recorded]:
        """Every stored event after ``after``, in log order."""
        while True:
            batch = self.read(after, page)
            if not batch:
                return
            yield from batch
            after = batch[-1].position

    def _recorded(self, notification: Any) -> Recorded:
        event = self.mapper.to_domain_event(notification)
        state = cast(LeafMapper, self.mapper).plain_state(notification.state)
        return Recorded(
            position=notification.id,
            subject=notification.originator_id,
            version=notification.originator_version,
            topic=notification.topic,
            event=StoredEvent(
                event.envelope,  # type: ignore[attr-defined]
                event.signature,  # type: ignore[attr-defined]
                event.recorded_at,  # type: ignore[attr-defined]
                state if is_leaf(state) else None,
                getattr(event, "written_by", None),
            ),
        )


AppendRequest = tuple[
    Sequence[tuple[Mapping[str, Any], str]], Sequence[Sequence[Any] | None] | None
]
"""One caller's envelopes (with signatures) and the openings beside each, as
:meth:`Ledger.append_many` takes them."""


@dataclass
class _Admitted:
    """One request's envelopes, checked and applied to their aggregates, not yet stored."""

    now: datetime
    events: list[DomainEventProtocol[Any]] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)


@dataclass
class _Ahead:
    """A request's envelopes parsed ahead, and its signatures checked ahead (by index)."""

    parsed: dict[int, Envelope] = field(default_factory=dict)
    checks: Checks = field(default_factory=Checks)


class _BatchState(LedgerState):
    """Aggregates as a batch sees them: its own earlier changes first, then the store.

    :attr:`records` counts the envelopes applied to aggregates (in place), so a caller
    knows whether a refusal left one changed."""

    def __init__(self, ledger: Ledger, cache: AggregateCache) -> None:
        self._ledger = ledger
        self._cache = cache
        self._seen: dict[UUID, SignedAggregate | None] = {}
        self._expected: set[UUID] = set()
        self._stored: dict[UUID, bool] = {}
        self.records = 0
        self.max_clock_skew = ledger.settings.max_clock_skew
        self.max_key_lifetime_days = ledger.settings.max_key_lifetime_days

    @property
    def notary_key_id(self) -> str:
        # Derived when a rule asks (decoding and hashing the key), not for every batch.
        return self._ledger.identity.notary_key_id

    def find(self, subject: UUID, kind: type[_A]) -> _A | None:
        if subject not in self._seen:
            self._seen[subject] = self._cache.get(subject, self._load)
            self._expected.discard(subject)
        found = self._seen[subject]
        return found if isinstance(found, kind) else None

    def expect(self, envelopes: Iterable[object]) -> None:
        """Note the subjects ``envelopes`` name, so that the first of them not cached has
        all of them asked about at once. An envelope whose subject is not a UUID is passed
        over: its own checks refuse it."""
        for raw in envelopes:
            text = raw.get("subject") if isinstance(raw, Mapping) else None
            if not isinstance(text, str):
                continue
            try:
                subject = UUID(text)
            except ValueError:
                continue
            if subject not in self._seen and subject not in self._stored:
                self._expected.add(subject)

    def _load(self, subject: UUID) -> SignedAggregate | None:
        # A subject not cached is most often a new one (a batch being registered): one
        # indexed query says so, without the library's replay through a session. The
        # subjects the batch names are asked about together; the answers hold while this
        # state lives, under the cache's lock (another writer's event in between fails
        # the save as a version conflict, as it would after a query apiece).
        storage = self._ledger.storage
        if subject in self._expected:
            found = storage.subjects_with_events(self._expected)
            self._stored.update((each, each in found) for each in self._expected)
            self._expected.clear()
        stored = self._stored.get(subject)
        if stored is None:
            stored = storage.has_events(subject)
        if not stored:
            return None
        return self._ledger.get_aggregate(subject, SignedAggregate)

    def touched(self) -> list[UUID]:
        """The subjects this batch read or changed."""
        return list(self._seen)

    def party(self, party_id: str) -> Party | None:
        return self.find(party_subject(party_id), Party)

    def changed(self, aggregate: SignedAggregate) -> None:
        self._seen[aggregate.id] = aggregate
        self._cache.put(aggregate.id, aggregate)


def _settled(
    outcomes: Sequence[list[Appended] | LedgerError | None],
) -> list[list[Appended] | LedgerError]:
    settled = [outcome for outcome in outcomes if outcome is not None]
    if len(settled) != len(outcomes):
        raise RuntimeError("a request of the group has no outcome")
    return settled


def _name_envelope(error: LedgerError, index: int, count: int) -> None:
    """Make ``error`` name envelope ``index`` of a batch of ``count`` (``envelopes[i].x``)."""
    if count > 1:
        error.field = f"envelopes[{index}].{error.field or 'envelope'}"


def _ensure_sqlite_dir(settings: Settings) -> None:
    path = settings.sqlite_path()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)


_ORIGIN = re.compile(r"^[\x21-\x2a\x2c-\x7e]{1,200}\Z")


def _check_origin(origin: str) -> None:
    # The origin is a checkpoint's first line and the notary's note key name, and
    # C2SP key names exclude spaces and "+".
    if not _ORIGIN.match(origin):
        raise ValidationFailed(
            "origin must be printable ASCII without spaces or '+', e.g. ledger.example.com/cmo",
            field="origin",
        )
