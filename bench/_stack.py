"""A throwaway embedded stack for a benchmark (its own home and ports)."""
from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from pathlib import Path

from harness.targets.embedded import stack as embedded


@contextlib.contextmanager
def bench_stack(port_base: int):
    home = Path(tempfile.mkdtemp(prefix="gameday-bench-", dir="/var/tmp"))
    home.chmod(0o755)
    try:
        t0 = time.monotonic()
        target = embedded.up(home, port_base, log=lambda m: None)
        target["_cold_up_s"] = time.monotonic() - t0
        yield target
    finally:
        embedded.down(home, port_base, log=lambda m: None)
        shutil.rmtree(home, ignore_errors=True)


def stats(values: list[float]) -> str:
    v = sorted(values)
    return f"min {v[0]:.3f}  median {v[len(v) // 2]:.3f}  max {v[-1]:.3f}  (n={len(v)})"
