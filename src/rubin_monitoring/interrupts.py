"""Stopping a run cleanly on SIGTERM (what Kubernetes sends a Job's pod at its deadline) and
SIGINT (Ctrl-C).

The first such signal raises :class:`~rubin_monitoring.exceptions.InterruptedRunError` in the
main thread, wherever it waits, and sets a flag that every worker checks before its next change
or message, so queued work is not started; ``with`` blocks unwind, releasing the lease. Later
signals only set the flag, and none raises while a lease is being released
(:func:`deferred`), so the release itself is never cut short.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from .exceptions import InterruptedRunError

SIGNALS = (signal.SIGTERM, signal.SIGINT)

_stop = threading.Event()
_received: list[InterruptedRunError] = []
_deferring = threading.local()


def stop_reason() -> InterruptedRunError | None:
    """Why the run must stop (a signal arrived), or None."""
    return _received[0] if _stop.is_set() and _received else None


def _handle(number: int, frame: FrameType | None) -> None:
    first = not _stop.is_set()
    if first:
        _received.append(InterruptedRunError(number, signal.Signals(number).name))
        _stop.set()
    if first and not getattr(_deferring, "active", False):
        raise _received[0]


@contextmanager
def deferred() -> Iterator[None]:
    """No signal raises inside this block (it still sets the flag)."""
    previous = getattr(_deferring, "active", False)
    _deferring.active = True
    try:
        yield
    finally:
        _deferring.active = previous


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Handle SIGTERM and SIGINT as above for the duration of the block (main thread only:
    elsewhere Python cannot install handlers, and the block changes nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _stop.clear()
    _received.clear()
    previous: list[Callable[[int, FrameType | None], object] | int | None] = [
        signal.signal(number, _handle) for number in SIGNALS
    ]
    try:
        yield
    finally:
        for number, handler in zip(SIGNALS, previous, strict=True):
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
