"""Peak memory of a bench process."""

from __future__ import annotations

import resource

__all__ = ["peak_rss_mib"]


def peak_rss_mib() -> float:
    """This process's peak resident memory, MiB.

    ``ru_maxrss`` keeps, across fork and exec, the peak of the process that started this
    one (``python -m bench`` runs the benches one after another in one process); the
    kernel's ``VmHWM`` counts this program's own pages only.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
