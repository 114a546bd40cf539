# mypy: disable-error-code="untyped-decorator"
# (strawberry types field decorators that take arguments as returning Any)
"""Live events over ``graphql-transport-ws``: one tailer per process, fanned out.

:class:`EventFeed` is the process's only reader of new events. It wakes when this process
appends (a ledger listener) and otherwise polls the log's head, so events appended by
other worker processes arrive within ``poll_interval``. It reads each new page once and
offers it to every subscriber's bounded queue.

A subscription first replays the stored events after ``filter.after`` (a log position),
then switches to its queue, skipping what it already sent, so no event is lost or
repeated at the switch. A subscriber that falls more than ``queue_size`` events behind is
ended with ``LIMIT_EXCEEDED``; it resumes with ``after`` set to the last position it got.
Only events the caller may read (``api.permissions_hook.can_read_event``) are sent, judged
per event against the grants as the views stand at it. A revocation of the subscriber's
key, or a lock of its party by the security log, ends the subscription with
``UNAUTHENTICATED`` (and :mod:`api.view` closes the connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Iterator, Sequence
from dataclasses import dataclass

import strawberry

from api.access import can_read_subject
from api.context import Context
from api.log_fields import Info, LogEvent, leaf_indexes
from api.permissions_hook import can_read_event
from api.threads import in_thread
from ledger.application import Ledger, Recorded
from ledger.errors import Forbidden, LimitExceeded, ValidationFailed
from ledger.log.tree import MerkleTree

__all__ = [
    "LOCKOUT",
    "REVOCATION",
    "EventFeed",
    "EventFilter",
    "LogSubscription",
    "Subscriber",
    "revokes",
]

log = logging.getLogger(__name__)


REVOCATION = "KeyRevoked"
"""The event that ends every connection and subscription signed with the key it names."""
LOCKOUT = "SecurityAlert"
"""The notary's event of a party locked by the security log (:mod:`api.security_log`): its
connections and subscriptions end until the lock does."""
_ENDS_ACCESS = frozenset({REVOCATION, LOCKOUT})


@dataclass(frozen=True, slots=True)
class FeedItem:
    """A new event and its leaf index (``None`` when not yet in the tree)."""

    recorded: Recorded
    leaf_index: int | None


def revokes(items: Sequence[FeedItem]) -> bool:
    """Whether any of ``items`` revokes a key or locks a party."""
    return any(item.recorded.event.envelope["type"] in _ENDS_ACCESS for item in items)


class Subscriber:
    """One subscription's bounded queue."""

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[FeedItem] = asyncio.Queue(maxsize=size)
        self.overflowed = False

    def offer(self, item: FeedItem) -> None:
        """Queue ``item``; on a full queue, mark the subscriber as fallen behind."""
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True

    async def next_batch(self) -> list[FeedItem]:
        """Every queued item, waiting for at least one."""
        if self.overflowed and self.queue.empty():
            raise LimitExceeded(
                "this subscriber fell too far behind: subscribe again with "
                "filter.after = the last position received",
                field="filter.after",
            )
        batch = [await self.queue.get()]
        while not self.queue.empty():
            batch.append(self.queue.get_nowait())
        return batch


class EventFeed:
    """Tails the log once for the whole process and fans new events out."""

    def __init__(
        self,
        ledger: Ledger,
        tree: MerkleTree,
        *,
        poll_interval: float = 0.25,
        page_size: int = 500,
        queue_size: int = 5000,
    ) -> None:
        self._ledger = ledger
        self._tree = tree
        self.poll_interval = poll_interval
        self.page_size = page_size
        self.queue_size = queue_size
        self._subscribers: set[Subscriber] = set()
        self._revocation_watches: set[asyncio.Event] = set()
        self._registrations = 0
        self._last = 0
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._nudge: asyncio.Event | None = None

    @property
    def subscribers(self) -> int:
        """How many subscriptions are live."""
        return len(self._subscribers)

    async def start(self) -> None:
        """Start tailing (on the running event loop)."""
        self._loop = asyncio.get_running_loop()
        self._nudge = asyncio.Event()
        self._last = await in_thread(self._ledger.head)
        self._ledger.add_listener(self._appended)
        self._task = asyncio.create_task(self._run(), name="cmo-ledger-event-feed")

    async def stop(self) -> None:
        """Stop tailing."""
        task, self._task, self._loop = self._task, None, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def subscribe(self) -> Subscriber:
        """A new subscriber, receiving events from now on."""
        subscriber = Subscriber(self.queue_size)
        self._subscribers.add(subscriber)
        self._registrations += 1
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Stop feeding ``subscriber``."""
        self._subscribers.discard(subscriber)

    @contextlib.contextmanager
    def revocations(self) -> Iterator[asyncio.Event]:
        """An event set whenever the log records a key revocation, from now on: a
        connection clears it, then checks whether its own key was revoked. The feed scans
        each new page once for every connection."""
        watch = asyncio.Event()
        self._revocation_watches.add(watch)
        self._registrations += 1
        try:
            yield watch
        finally:
            self._revocation_watches.discard(watch)

    def _appended(self, position: int) -> None:
        # Called in the appending thread: hand the wake-up to the event loop.
        loop, nudge = self._loop, self._nudge
        if loop is not None and nudge is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(nudge.set)

    async def _run(self) -> None:
        assert self._nudge is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._nudge.wait(), self.poll_interval)
            self._nudge.clear()
            try:
                await self._pump()
            except Exception:
                log.exception("reading new events failed; retrying")

    async def _pump(self) -> None:
        while True:
            if not self._subscribers and not self._revocation_watches:
                await self._skip_to_head()
                return
            page = await in_thread(self._read, self._last)
            for item in page:
                for subscriber in list(self._subscribers):
                    subscriber.offer(item)
            if revokes(page):
                for watch in list(self._revocation_watches):
                    watch.set()
            if page:
                self._last = page[-1].recorded.position
            if len(page) < self.page_size:
                return

    async def _skip_to_head(self) -> None:
        # With nobody listening, nothing needs reading: just keep up with the head. A
        # subscriber that registers meanwhile may have replayed only up to an older head,
        # so then keep the old position and publish from there.
        registrations = self._registrations
        head = await in_thread(self._ledger.head)
        if registrations == self._registrations:
            self._last = head

    def _read(self, after: int) -> list[FeedItem]:
        return read_items(self._ledger, after, self.page_size)


def read_items(ledger: Ledger, after: int, limit: int) -> list[FeedItem]:
    """Stored events after position ``after``, with their leaf indexes."""
    events = ledger.read(after=after, limit=limit)
    leaves = leaf_indexes(ledger.engine, [e.position for e in events])
    return [FeedItem(e, leaves.get(e.position)) for e in events]


@strawberry.input(description="Which events a subscription sends.")
class EventFilter:
    after: int | None = strawberry.field(
        default=None,
        description="Resume after this log position (0: from the start); default: from now.",
    )
    types: list[str] | None = strawberry.field(default=None, description="Only these types.")
    subjects: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Only events of these subjects."
    )
    signers: list[str] | None = strawberry.field(default=None, description="Only these signers.")

    def matches(self, recorded: Recorded) -> bool:
        """Whether ``recorded`` passes the filter (visibility aside)."""
        envelope = recorded.event.envelope
        return (
            (self.types is None or envelope["type"] in self.types)
            and (self.subjects is None or envelope["subject"] in self.subjects)
            and (self.signers is None or envelope["signer"] in self.signers)
        )


def _visible(context: Context, wanted: EventFilter, items: Sequence[FeedItem]) -> list[LogEvent]:
    return [
        LogEvent.of(item.recorded, item.leaf_index)
        for item in items
        if wanted.matches(item.recorded) and can_read_event(context, item.recorded)
    ]


def _replay_page(
    context: Context, wanted: EventFilter, after: int, limit: int
) -> tuple[list[LogEvent], int]:
    items = read_items(context.ledger, after, limit)
    reached = items[-1].recorded.position if items else after
    return _visible(context, wanted, items), reached


async def _stream(context: Context, wanted: EventFilter) -> AsyncGenerator[LogEvent, None]:
    feed = context.services.feed
    subscriber = feed.subscribe()  # before the replay: nothing falls between the two
    try:
        last = wanted.after if wanted.after is not None else await in_thread(context.ledger.head)
        page = context.limits.max_page_size
        while True:
            events, reached = await in_thread(_replay_page, context, wanted, last, page)
            for event in events:
                yield event
            if reached == last:
                break
            last = reached
        while True:
            fresh = [i for i in await subscriber.next_batch() if i.recorded.position > last]
            if not fresh:
                continue
            if revokes(fresh):  # ends the subscription (UNAUTHENTICATED) if its key or party
                await in_thread(context.services.auth.recheck, context.require_party())
            for event in await in_thread(_visible, context, wanted, fresh):
                yield event
            last = fresh[-1].recorded.position
    finally:
        feed.unsubscribe(subscriber)


@strawberry.type
class LogSubscription:
    """Root subscriptions over the log."""

    @strawberry.subscription(
        description="Events the caller may read, in log order, live; resumable with after."
    )
    async def events(
        self, info: Info, filter: EventFilter | None = None
    ) -> AsyncGenerator[LogEvent, None]:
        # Checked before the stream starts, so a refusal is the operation's error.
        context = info.context
        context.require_party()
        wanted = filter or EventFilter()
        if wanted.after is not None and wanted.after < 0:
            raise ValidationFailed("after is a log position: 0 or more", field="filter.after")
        await in_thread(_check_subjects, context, wanted)
        return _stream(context, wanted)


def _check_subjects(context: Context, wanted: EventFilter) -> None:
    """Refuse a named subject the caller may not read, rather than stream it filtered out."""
    for index, subject in enumerate(wanted.subjects or []):
        if not can_read_subject(context, str(subject)):
            raise Forbidden(
                f"you may not read subject {subject} (or it does not exist)",
                field=f"filter.subjects[{index}]",
            )
