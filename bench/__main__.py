"""Run every benchmark: ``python -m bench`` (scale via ``CMO_BENCH_SCALE``)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback

import bench


def main() -> int:
    """Import each ``bench.bench_*`` module and call its ``main()``; 1 if any failed."""
    failed = []
    names = sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_")
    )
    for name in names:
        print(f"== {name} (scale {bench.scale()})", flush=True)
        try:
            importlib.import_module(f"bench.{name}").main()
        except Exception:
            traceback.print_exc()
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
