"""Background threads that show their names to the OS (`top -H`, `ps -L`, /proc/<pid>/task/*/comm).

Python 3.11 names threads only for Python; the kernel still calls them all after the process. A
server with a redirect loop, click and event writers, pollers and a webhook sender is easier to
operate (and to measure) when per-thread CPU says which is which.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable

_PR_SET_NAME = 15
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    _prctl = _libc.prctl
except (OSError, AttributeError):  # not Linux: names stay Python-only
    _prctl = None


def set_os_thread_name(name: str) -> None:
    """Name the calling thread for the kernel (at most 15 bytes are kept)."""
    if _prctl is not None:
        _prctl(_PR_SET_NAME, ctypes.c_char_p(name.encode("ascii", "replace")[:15]), 0, 0, 0)


def start_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """A started daemon thread named `name` for Python and the OS."""

    def run() -> None:
        set_os_thread_name(name)
        target()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
