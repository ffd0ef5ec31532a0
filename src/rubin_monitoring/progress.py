"""A progress bar on stderr for long applies, shown only on a terminal and in text mode."""

from __future__ import annotations

import sys
import threading
from typing import Any

import click

from .models.changes import ChangeResult
from .services.reconcile import Progress

# Fewer changes than this finish too fast for a bar to help.
MIN_CHANGES = 20


class TerminalProgress:
    """click's progress bar, advanced from worker threads; closed with :meth:`close`."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._bar: Any = None
        self._lock = threading.Lock()

    def start(self, total: int) -> None:
        """Show a bar for ``total`` changes, if there are enough to be worth one."""
        if total >= MIN_CHANGES:
            self._bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self._bar.__enter__()

    def done(self, result: ChangeResult) -> None:
        """Advance the bar by one finished change."""
        with self._lock:
            if self._bar is not None:
                self._bar.update(1)

    def close(self) -> None:
        """Finish the bar's line on stderr."""
        with self._lock:
            if self._bar is not None:
                self._bar.__exit__(None, None, None)
                self._bar = None


def progress_for(label: str, output: str) -> TerminalProgress | None:
    """A progress bar when stderr is a terminal and the result is text, else None (JSON mode,
    pipes and CronJobs stay quiet)."""
    if output != "text" or not sys.stderr.isatty():
        return None
    return TerminalProgress(label)


__all__ = ["Progress", "TerminalProgress", "progress_for"]
