"""A rich progress bar on stderr for long work (``plans sync``, ``reconcile``, ``subs migrate``).

Stdout stays for data (``--json`` prints nothing else), so the bar goes to stderr, and only at a
terminal: a script or a test reading stderr sees no control sequences.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class StderrProgress:
    """A rich progress bar on stderr, one task per phase; silent when stderr is no terminal."""

    def __init__(self) -> None:
        from billing_cli.cli import render

        self._bar: Progress | None = None
        self._task: TaskID | None = None
        if render.err().is_terminal:
            from rich.progress import Progress

            self._bar = Progress(console=render.err(), transient=True)

    def __enter__(self) -> StderrProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def start(self, description: str, total: int | None) -> None:
        if self._bar is not None:
            if self._task is not None:
                self._bar.remove_task(self._task)
            self._task = self._bar.add_task(description, total=total)

    def advance(self, description: str | None = None) -> None:
        """One step done; ``description`` (``synced pro``) replaces the task's, if given."""
        if self._bar is not None and self._task is not None:
            if description is None:
                self._bar.update(self._task, advance=1)
            else:
                self._bar.update(self._task, advance=1, description=description)
