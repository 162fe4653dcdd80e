"""Stop signals: SIGTERM (systemd, ``docker stop``, ``timeout``, CI runners) and SIGHUP (a
closed terminal) stop a run the way Ctrl-C does, and the exit status says which signal:
128 + its number (130 SIGINT, 143 SIGTERM, 129 SIGHUP)."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived. Raised where the main thread was, like Ctrl-C, so every
    ``finally`` on the way out runs: temporary files go, locks are released."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


# The stop signal that came last. A library that waits in native code (Ray's ray.wait)
# may turn our ``Interrupted`` into a KeyboardInterrupt of its own on the way up;
# ``interrupted`` tells which signal that one really was.
_last: list[int] = []


def interrupted(exc: KeyboardInterrupt) -> Interrupted:
    """``exc`` as the ``Interrupted`` it stands for: itself, or the last stop signal
    (SIGINT when none of ours arrived: a Ctrl-C before our handlers)."""
    if isinstance(exc, Interrupted):
        return exc
    return Interrupted(_last[-1] if _last else signal.SIGINT)


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """Inside, a stop signal raises ``Interrupted``; the old handlers come back after.

    Signals a parent set to be ignored (``nohup``, ``&`` in a script) stay ignored. After
    the first signal the others are ignored, so that cleaning up is not itself cut short.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}

    def stop(signum: int, frame: object) -> None:
        _ignore_all()
        _last.append(signum)
        raise Interrupted(signum)

    for s, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(s, stop)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def worker_signals() -> None:
    """In a worker process of a batch: Ctrl-C, which a terminal sends to the whole process
    group, is the parent's to handle (it stops the workers with SIGTERM); SIGTERM and
    SIGHUP end the worker through SystemExit, so that its temporary files are removed and
    its locks released on the way out, with no traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def stop(signum: int, frame: object) -> None:
        _ignore_all()
        raise SystemExit(128 + signum)

    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, stop)


def _ignore_all() -> None:
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)


@contextmanager
def handlers_kept() -> Iterator[None]:
    """Inside, a library may set its own handlers for the stop signals (Ray does as it
    starts, and as it stops); ours are put back when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            if handler is not None:  # None: set outside Python, can't be put back
                signal.signal(s, handler)
