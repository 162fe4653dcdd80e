"""For the tests that stop a subpipe process with a signal."""

from __future__ import annotations

import signal


def stop_signals_default() -> None:
    """In the child (``preexec_fn``): the stop signals as a terminal gives them. A test
    suite run under ``nohup`` or as a background job inherits SIGHUP or SIGINT ignored,
    and subpipe keeps a signal its parent ignored, by design; these tests send them."""
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)
