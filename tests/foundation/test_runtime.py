"""The process settings of long passes: the cycle collector's pauses."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from ledger.runtime import collector_paused


@pytest.fixture
def collector() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.enable()
    yield
    if not enabled:
        gc.disable()


def test_overlapping_pauses_keep_the_collector_off_until_the_last_ends(collector: None) -> None:
    first, second = collector_paused(), collector_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # the second pass still runs
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_pauses_in_many_threads_leave_the_collector_on(collector: None) -> None:
    started = threading.Barrier(8)
    seen: list[bool] = []

    def pass_over_the_log() -> None:
        with collector_paused():
            started.wait()  # every pause has begun before any ends
            seen.append(gc.isenabled())

    threads = [threading.Thread(target=pass_over_the_log) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [False] * 8
    assert gc.isenabled()


def test_a_collector_switched_off_before_stays_off(collector: None) -> None:
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_an_error_in_the_pass_ends_its_pause(collector: None) -> None:
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("a page failed")
    assert gc.isenabled()
