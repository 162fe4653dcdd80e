"""How many threads this process may use: the CPUs it may run on, and the share a batch
worker was given."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """The CPUs this process may run on (a container may report the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def omp_threads() -> int:
    """The threads a batch worker was given (``OMP_NUM_THREADS``), 0 when none were.

    CTranslate2's OpenMP reads that variable once, when the library loads, which in a
    worker may be before the worker is told its share (the spawn start imports subpipe
    first). Given here explicitly, the share holds, and a film's text is the same on
    every engine with the same share: the int8 kernels' sums depend on the thread count.
    """
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() else 0
