"""A rich progress bar for the Python loops that drive jitted chunks."""

from __future__ import annotations

import contextlib
import sys

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class _Bar:
    def __init__(self, progress: Progress | None, task):
        self._progress, self._task = progress, task

    def update(self, text: str = "", advance: int = 1) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=advance, status=text)


@contextlib.contextmanager
def progress_bar(description: str, total: int, completed: int = 0, enabled: bool = True):
    """Yield an object with ``update(text, advance=1)``; silent when disabled."""
    if not enabled:
        yield _Bar(None, None)
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[status]}"),
        # In a log file (no terminal) rich prints the finished bar only; refresh rarely.
        refresh_per_second=2 if sys.stderr.isatty() else 0.05,
    )
    with progress:
        task = progress.add_task(description, total=total, completed=completed, status="")
        yield _Bar(progress, task)
