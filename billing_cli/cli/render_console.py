"""The rich console every line of output goes through, set never to break a word.

Rich wraps a line wider than the terminal at spaces, but a word that does not fit on a line of
its own is folded: cut where the line ends and carried on the next, so an id, a URL or a date
comes out in two pieces that no longer match when searched or pasted. Here such a line is left
unwrapped instead (the terminal shows it across lines, but the characters stay together for
copy and search); every other line wraps at spaces as usual. Imported only when printing.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text


class WholeWordConsole(Console):
    """A Console whose ``print`` never folds a word: see the module docstring."""

    def print(self, *objects: Any, **options: Any) -> None:
        if "soft_wrap" not in options and any(_longest_word(o) > self.width for o in objects):
            options["soft_wrap"] = True
        super().print(*objects, **options)


def _longest_word(renderable: Any) -> int:
    """The widest word of a line of text (markup tags count: a few columns too many at most);
    0 for a table or anything else that lays itself out."""
    if isinstance(renderable, Text):
        text = renderable.plain
    elif isinstance(renderable, str):
        text = renderable
    else:
        return 0
    return max((Text(word).cell_len for word in text.split()), default=0)


def make_console(*, stderr: bool) -> Console:
    """The console for stdout or stderr; rich decides colour and width from the stream."""
    return WholeWordConsole(stderr=stderr, highlight=False, soft_wrap=False)
