"""The subjects a batch names are looked up together: registering many new subjects at once
asks the store about them in one query, a subject the batch itself creates is then updated
in the same batch, and a subject already stored is never taken for a new one."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.domain.subjects import batch_subject
from ledger.errors import VersionConflict
from ledger.log.envelope import event_hash
from ledger.timeutil import format_utc, now_utc
from tests.support.agreements import propose_and_sign
from tests.support.batches import data_payload, discrete_records
from tests.support.statements import counted, selects
from tests.support.world import World

CMO = "contoso-cmo"
Item = tuple[dict[str, Any], str]


def _registration(world: World, agreement: uuid.UUID, batch: str) -> Item:
    cmo = world[CMO]
    payload = {
        "agreement": str(agreement),
        "batch": batch,
        "product": "NWB-101",
        "site": "contoso-site-a",
        "started_at": format_utc(now_utc() - timedelta(days=14)),
    }
    envelope = cmo.envelope(
        "BatchRegistered", batch_subject(batch), payload, version=1, prev=None, meaning="authored"
    )
    return envelope, cmo.sign(envelope)


def _registered_with_data(world: World, agreement: uuid.UUID, batch: str) -> list[Item]:
    """A new batch's registration and its first data, chained on it."""
    cmo = world[CMO]
    registered = _registration(world, agreement, batch)
    envelope = cmo.envelope(
        "DataSubmitted",
        batch_subject(batch),
        data_payload("discrete", discrete_records(batch)),
        version=2,
        prev=event_hash(*registered),
        meaning="submitted",
    )
    return [registered, (envelope, cmo.sign(envelope))]


def _batches(world: World, agreement: uuid.UUID, prefix: str, count: int) -> list[Item]:
    return [
        item
        for index in range(count)
        for item in _registered_with_data(world, agreement, f"{prefix}-{index:03d}")
    ]


def test_registering_more_subjects_at_once_runs_no_more_reads(world: World) -> None:
    agreement = propose_and_sign(world)
    world.ledger.append_many(_batches(world, agreement, "WARM", 1))  # the rules' state
    reads: dict[int, list[str]] = {}
    for count in (2, 12):
        items = _batches(world, agreement, f"B{count}", count)
        with counted(world.ledger) as statements:
            appended = world.ledger.append_many(items)
        assert [a.version for a in appended] == [1, 2] * count
        reads[count] = selects(statements)
    assert len(reads[12]) == len(reads[2]), reads


def test_a_subject_registered_and_updated_in_one_batch_is_stored_at_both_versions(
    world: World,
) -> None:
    agreement = propose_and_sign(world)
    items = _batches(world, agreement, "TWICE", 3)
    appended = world.ledger.append_many(items)
    assert [(a.subject, a.version) for a in appended] == [
        (batch_subject(f"TWICE-{index:03d}"), version) for index in range(3) for version in (1, 2)
    ]
    assert all(a.recorded_at == appended[0].recorded_at for a in appended)
    assert world.ledger.next_version(batch_subject("TWICE-002"))[0] == 3


def test_a_subject_another_ledger_stored_is_not_taken_for_a_new_one(world: World) -> None:
    agreement = propose_and_sign(world)
    first = world.ledger
    second = Ledger.open(first.settings)  # another process: nothing of the log cached yet
    try:
        stored = _registration(world, agreement, "STORED")
        first.append(*stored)
        fresh = _registration(world, agreement, "FRESH")
        head = first.head()
        with pytest.raises(VersionConflict) as refused:
            second.append_many([fresh, stored])
        assert refused.value.field == "envelopes[1].version"
        assert first.head() == head
        # The refusal left no belief behind: the new subject is still new.
        assert second.append(*fresh).version == 1
    finally:
        second.close()


def test_the_store_says_which_of_many_subjects_have_events(world: World) -> None:
    agreement = propose_and_sign(world)
    world.ledger.append_many(_batches(world, agreement, "KNOWN", 2))
    known = {batch_subject("KNOWN-000"), batch_subject("KNOWN-001")}
    unknown = {uuid.uuid4() for _ in range(1_500)}  # more than one query's list
    storage = world.ledger.storage
    assert storage.subjects_with_events(known | unknown) == known
    assert storage.subjects_with_events({batch_subject("KNOWN-001")}) == {
        batch_subject("KNOWN-001")
    }
    assert storage.subjects_with_events(unknown) == set()
    assert storage.subjects_with_events(set()) == set()
