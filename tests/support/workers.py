"""Worker processes lost, as a crash or the kernel's OOM killer would lose them."""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor


def kill_workers(pool: ProcessPoolExecutor) -> None:
    """``kill -9`` every worker of ``pool`` and wait until the pool knows it is broken."""
    processes = list(pool._processes.values())  # type: ignore[attr-defined]
    assert processes, "the pool started no worker"
    for process in processes:
        process.kill()
    deadline = time.monotonic() + 30
    while not pool._broken:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the pool never noticed its workers were gone"
        time.sleep(0.01)
