"""The rich console every line of output goes through, set to wrap text at spaces only.

Rich's default for a line wider than the terminal is to fold it: a word that does not fit is
cut where the line ends and carried on the next line, so an id, a URL or a date comes out in
two pieces that no longer match when searched or pasted. Here text wraps at spaces, and a word
longer than the whole line is printed whole on its own line (the terminal may wrap it, but the
characters stay together for copy and search). Imported only when something is printed.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console


class WholeWordConsole(Console):
    """A Console whose ``print`` wraps at spaces and never folds or crops a word."""

    def print(self, *objects: Any, **options: Any) -> None:
        options.setdefault("overflow", "ignore")
        options.setdefault("crop", False)
        super().print(*objects, **options)


def make_console(*, stderr: bool) -> Console:
    """The console for stdout or stderr; rich decides colour and width from the stream."""
    return WholeWordConsole(stderr=stderr, highlight=False, soft_wrap=False)
