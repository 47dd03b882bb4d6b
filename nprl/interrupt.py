"""Ctrl-C during training: finish the current update, checkpoint, then stop.

A KeyboardInterrupt raised mid-update could leave the parameters at a line-search trial
point and the envs a few steps past the counters, so a checkpoint written then would not
continue the run exactly. Instead SIGINT only sets a flag that the training loop reads
between updates. A second Ctrl-C stops at once (without a new checkpoint: the last one
stays intact), so a stuck update can still be killed from the keyboard.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType


class DeferredInterrupt:
    """``with DeferredInterrupt() as stop: ... if stop.requested: ...``

    Only the main thread can own signal handlers, and only Python's default SIGINT
    handler is replaced (a handler installed by the caller, e.g. a notebook, is kept);
    otherwise ``requested`` simply stays False and Ctrl-C behaves as usual.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> DeferredInterrupt:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
