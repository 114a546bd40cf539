"""Per-batch summaries of continuous tags, the inputs of a continuous parameter's CPV chart.

``proj_series_summaries``: one row per batch and tag: the data class its chunks were sent
as, the first and last point's time, count, mean, min, max, the time its points spent
beyond the action limits in force at the batch's valid time (``startedAt``) and that
limits version, and the SHA-256 of the current chunks summarised (JSON list, sorted).
The statistics are :mod:`ledger.cpv.summary`'s.

Each chunk is summarised once, from the event that carries it, when it arrives (its
content is never copied here): against the limits version in force at the batch's valid
time as the ledger knew it then, never re-evaluated, as ``proj_chunk_excursions`` are.
A correction (``DataCorrected`` with ``supersedes_chunks``) drops the superseded chunks'
stats and adds its own, giving the tag a new summary version at that position, so
``as_of(knownAt)`` reads the summary as it stood. The view keeps each chunk's stats in
its state, which is why a correction needs no chunk content but its own, and a running
:class:`~ledger.cpv.summary.Aggregate` per tag, so a chunk that sorts after the tag's
others (the usual arrival) is added without going over them; a correction, or a chunk
that sorts earlier, combines the tag's current chunks again.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from hashlib import sha256
from typing import Any

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Text

from ledger.application import Ledger
from ledger.cpv.readers import Chunk, ChunkReaders, Reading
from ledger.cpv.summary import Aggregate, ChunkStats, chunk_stats
from ledger.domain.limits import (
    BOUNDS,
    LimitsVersion,
    bounds,
    changed_limits,
    in_force_at,
    tag_for,
)
from ledger.domain.validity import effective_from
from projections.data import batch_names
from projections.temporal import Row, temporal_table
from projections.times import utc
from projections.view import Fact, Page, View, dumps, handles, state_table

__all__ = ["SUMMARIES", "SummariesView"]

metadata = MetaData()

SUMMARIES = temporal_table(
    "proj_series_summaries",
    metadata,
    [Column("batch", String(64), nullable=False), Column("tag", String(200), nullable=False)],
    Column("agreement", String(36), nullable=False),
    Column("data_class", String(63), nullable=False),
    Column("first", String(30), nullable=False),
    Column("last", String(30), nullable=False),
    Column("count", Integer, nullable=False),
    Column("mean", String(64), nullable=False),
    Column("min", String(64), nullable=False),
    Column("max", String(64), nullable=False),
    Column("time_outside_limits_ms", BigInteger),
    Column("limits_version", Integer),
    Column("chunks", Text, nullable=False),
    Index("ix_proj_series_summaries_agreement", "agreement", "tag", "valid_from"),
)

STATE = state_table("proj_summaries_state", metadata)
_DEFINED, _REVISED = "ParameterDefined", ("ParameterRevisionApproved", "ParameterRetired")
_AHEAD = ("BatchRegistered", _DEFINED, "ParameterRevisionProposed", *_REVISED)
"""The events whose handlers change which limits a chunk is judged against."""
_KEY_LENGTH = 200


def _limits_key(agreement: str, name: str) -> str:
    return f"limits:{agreement}/{name}"


def _batch_of(registered: Fact) -> list[str]:
    payload = registered.payload
    return [payload["batch"], payload["agreement"], utc(payload["started_at"])]


def _tag_key(batch: str, tag: str) -> str:
    key = f"tag:{batch}/{tag}"
    # State keys hold 200 characters; a tag may have as many on its own.
    return key if len(key) <= _KEY_LENGTH else f"tag:{batch}/#{sha256(tag.encode()).hexdigest()}"


class SummariesView(View):
    """Per-batch summaries of continuous tags (see the module docstring)."""

    name = "summaries"
    version = 2
    tables = (SUMMARIES,)
    state = STATE
    read_aside_from = 64
    """Chunks ahead in one page of a replay from which worker processes read them."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(ledger)
        self._readers: ChunkReaders | None = None
        self._reading: Reading | None = None
        self._facts: Sequence[Fact] = ()
        self._positions: list[int] = []

    def keep_state(self, keep: bool) -> None:
        super().keep_state(keep)
        # A replay reads every chunk of the log: worth worker processes, for its length.
        if keep and self._readers is None:
            self._readers = ChunkReaders().start()
        elif not keep and self._readers is not None:
            self._forget_reading()
            self._readers.close()
            self._readers = None

    def prepare(self, page: Page, facts: Sequence[Fact]) -> None:
        self._forget_reading()
        self._facts, self._positions = facts, [fact.position for fact in facts]
        # One read of the summaries the page may replace, not one per batch and tag; a
        # page without chunks reads none.
        chunked = [f for f in facts if f.type == "BatchRegistered" or "series" in f.payload]
        names = batch_names(page, chunked, ("DataSubmitted", "DataCorrected"))
        page.versions(SUMMARIES).prefetch(names)

    def _forget_reading(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
            self._reading = None

    @handles("BatchRegistered")
    def _registered(self, page: Page, fact: Fact) -> None:
        page.state.remember(f"subject:{fact.subject}", _batch_of(fact))

    @handles(_DEFINED)
    def _parameter_defined(self, page: Page, fact: Fact) -> None:
        payload = fact.payload
        agreement, name = payload["agreement"], payload["name"]
        page.state.remember(f"parameter:{fact.subject}", [agreement, name])
        current = bounds(payload)
        version = {"version": 1, "effective_from": effective_from(payload, fact.recorded_at)}
        page.state.set(
            _limits_key(agreement, name), {"current": current, "versions": [version | current]}
        )
        names = page.state.get(f"parameters:{agreement}") or []
        page.state.set(f"parameters:{agreement}", sorted({*names, name}))

    @handles("ParameterRevisionProposed")
    def _revision_proposed(self, page: Page, fact: Fact) -> None:
        revision = fact.payload["revision"]
        page.state.set(f"revision:{fact.subject}/{revision}", fact.payload["changes"])

    @handles(*_REVISED)
    def _parameter_changed(self, page: Page, fact: Fact) -> None:
        known = page.state.fact(f"parameter:{fact.subject}")
        key = None if known is None else _limits_key(known[0], known[1])
        tracked = None if key is None else page.state.get(key)
        if key is None or tracked is None:
            return
        versions: list[Row] = tracked["versions"]
        when = effective_from(fact.payload, fact.recorded_at)
        if versions and versions[-1].get("effective_to") is None:
            versions[-1]["effective_to"] = when
        if fact.type == "ParameterRevisionApproved":
            changes = page.state.get(f"revision:{fact.subject}/{fact.payload['revision']}") or {}
            limits = changed_limits(changes)
            current = {**tracked["current"], **{k: v for k, v in limits.items() if k in BOUNDS}}
            tracked["current"] = current
            versions.append({"version": len(versions) + 1, "effective_from": when, **current})
        page.state.set(key, tracked)

    @handles("DataSubmitted")
    def _submitted(self, page: Page, fact: Fact) -> None:
        batch = page.state.fact(f"subject:{fact.subject}")
        if batch is None or "series" not in fact.payload:
            return
        self._add(page, fact, batch, fact.payload["kind"], fact.payload["series"], set())

    @handles("DataCorrected")
    def _corrected(self, page: Page, fact: Fact) -> None:
        batch = page.state.fact(f"subject:{fact.subject}")
        if batch is None or "supersedes_chunks" not in fact.payload:
            return
        touched: set[str] = set()
        data_class = "continuous"
        for digest in fact.payload["supersedes_chunks"]:
            where = page.state.get(f"chunk:{batch[0]}/{digest}")
            if where is None:
                continue
            tag, data_class = where[0], where[1]
            key = _tag_key(batch[0], tag)
            tracked = page.state.get(key)
            tracked["chunks"] = [c for c in tracked["chunks"] if c != digest]
            tracked["aggregate"] = None  # combined again from the chunks left
            page.state.set(key, tracked)
            touched.add(tag)
        self._add(page, fact, batch, data_class, fact.payload["series"], touched)

    def _add(
        self,
        page: Page,
        fact: Fact,
        batch: list[str],
        data_class: str,
        series: list[dict[str, Any]],
        touched: set[str],
    ) -> None:
        name, agreement, started_at = batch
        for entry in series:
            tag = entry["tag"]
            version = self._version(page, agreement, tag, started_at)
            key = _tag_key(name, tag)
            tracked = page.state.get(key) or {
                "data_class": data_class,
                "chunks": [],
                "aggregate": None,
            }
            aggregate = None if tracked["aggregate"] is None else Aggregate.of(tracked["aggregate"])
            for chunk in entry["chunks"]:
                stats = self._stats(page, fact, chunk, version)
                tracked["chunks"].append(stats.sha256)
                page.state.set(f"chunk:{name}/{stats.sha256}", [tag, data_class, stats.as_json()])
                if not tracked["chunks"][:-1]:
                    aggregate = Aggregate.start(stats)
                elif aggregate is not None and not aggregate.add(stats):
                    aggregate = None
            tracked["aggregate"] = None if aggregate is None else aggregate.as_json()
            page.state.set(key, tracked)
            touched.add(tag)
        for tag in sorted(touched):
            self._summarise(page, fact, batch, tag)

    def _stats(
        self, page: Page, fact: Fact, chunk: dict[str, Any], version: LimitsVersion | None
    ) -> ChunkStats:
        if self._reading is None and self._readers is not None:
            self._reading = self._read_ahead(page, self._readers, fact)
        read = None if self._reading is None else self._reading.get(chunk["sha256"], version)
        return read or chunk_stats(chunk["sha256"], chunk["content"], version)

    def _read_ahead(self, page: Page, readers: ChunkReaders, start: Fact) -> Reading:
        """Start reading the chunks of the page from ``start`` on, each judged against the
        limits version its handler will find.

        The handlers that change which version that is (batches registered, limits
        defined or revised) run ahead on a scratch of the state, so the versions asked
        are the handlers' own. Should one differ all the same, :meth:`Reading.get` finds
        no stats for it and the chunk is read in process.
        """
        ahead = page.scratch()
        handlers = self._handlers
        chunks: list[Chunk] = []
        for fact in self._facts[bisect_left(self._positions, start.position) :]:
            if fact.type in _AHEAD:
                handlers[fact.type](self, ahead, fact)
                continue
            batch = ahead.state.fact(f"subject:{fact.subject}")
            if batch is None or "series" not in fact.payload:
                continue
            for entry in fact.payload["series"]:
                version = self._version(ahead, batch[1], entry["tag"], batch[2])
                chunks.extend((c["sha256"], c["content"], version) for c in entry["chunks"])
        return readers.read(chunks) if len(chunks) >= self.read_aside_from else Reading([])

    def _version(
        self, page: Page, agreement: str, tag: str, started_at: str
    ) -> LimitsVersion | None:
        """The limits in force at the batch's valid time of the parameter ``tag`` measures,
        as known now."""
        names = page.state.get(f"parameters:{agreement}") or []
        name = next((n for n in names if tag_for(n, [tag]) == tag), None)
        tracked = None if name is None else page.state.get(_limits_key(agreement, name))
        if tracked is None:
            return None
        return in_force_at([LimitsVersion.of(v) for v in tracked["versions"]], started_at)

    def _summarise(self, page: Page, fact: Fact, batch: list[str], tag: str) -> None:
        tracked = page.state.get(_tag_key(batch[0], tag))
        key = (batch[0], tag)
        if not tracked or not tracked["chunks"]:
            page.versions(SUMMARIES).end(key, fact.position)
            return
        if tracked["aggregate"] is None:
            tracked["aggregate"] = self._combined(page, batch[0], tracked["chunks"]).as_json()
            page.state.set(_tag_key(batch[0], tag), tracked)
        summary = Aggregate.of(tracked["aggregate"]).summary(tracked["chunks"])
        page.versions(SUMMARIES).put(
            key,
            fact.position,
            {
                "agreement": batch[1],
                "data_class": tracked["data_class"],
                "first": summary.first,
                "last": summary.last,
                "count": summary.count,
                "mean": summary.mean,
                "min": summary.min,
                "max": summary.max,
                "time_outside_limits_ms": summary.time_outside_limits_ms,
                "limits_version": summary.limits_version,
                "chunks": dumps(list(summary.chunks)),
            },
        )

    def _combined(self, page: Page, batch: str, digests: list[str]) -> Aggregate:
        """The aggregate of a tag's current chunks, from the stats kept of each."""
        keys = [f"chunk:{batch}/{digest}" for digest in digests]
        page.state.prefetch(keys)
        return Aggregate.over([ChunkStats.of(page.state.get(key)[2]) for key in keys])
