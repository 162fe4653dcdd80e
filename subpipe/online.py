"""Whether model hubs can be reached: asked once per run, within a few seconds."""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
from urllib.parse import urlparse

log = logging.getLogger(__name__)

HUB = "huggingface.co"
WHISPER_DOWNLOADS = "openaipublic.azureedge.net"


def offline(host: str = HUB) -> bool:
    """True when told so (SUBPIPE_OFFLINE, HF_HUB_OFFLINE) or when ``host`` can't be reached.

    Asking first keeps an offline machine from sitting in the hub client's retries for
    minutes (seen: over three, for one MarianMT model) before the fallback is taken.
    """
    if any(os.environ.get(v, "") not in ("", "0") for v in ("SUBPIPE_OFFLINE", "HF_HUB_OFFLINE")):
        return True
    if host == HUB and os.environ.get("HF_ENDPOINT"):
        host = urlparse(os.environ["HF_ENDPOINT"]).hostname or HUB
    return not _reachable(host)


@functools.lru_cache(maxsize=None)
def _reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``host`` opens within ``timeout`` seconds (asked once)."""
    answer: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            answer.append(True)
        except OSError:
            answer.append(False)

    # The name lookup has no timeout of its own: bound the whole attempt from outside.
    probe = threading.Thread(target=connect, daemon=True)
    probe.start()
    probe.join(timeout)
    reachable = bool(answer and answer[0])
    if not reachable:
        log.info("%s cannot be reached: working offline", host)
    return reachable
