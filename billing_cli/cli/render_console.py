"""The rich console every line of output goes through, set never to break a word.

Rich wraps a line wider than the terminal at spaces, but a word that does not fit on a line of
its own is folded: cut where the line ends and carried on the next, so an id, a URL or a date
comes out in two pieces that no longer match when searched or pasted. Here such a line is still
wrapped at spaces, and the long word gets a line of its own, whole (the terminal may show it
across lines, but its characters stay together for copy and search). Imported only when
something is printed.
"""

from __future__ import annotations

from typing import Any

from rich._wrap import divide_line
from rich.console import Console
from rich.text import Text


class WholeWordConsole(Console):
    """A Console whose ``print`` never folds a word: see the module docstring."""

    def print(self, *objects: Any, **options: Any) -> None:
        if "soft_wrap" in options or not any(_longest_word(o) > self.width for o in objects):
            super().print(*objects, **options)
            return
        if len(objects) != 1:  # not something this tool prints; keep the words whole anyway
            super().print(*objects, soft_wrap=True, **options)
            return
        text = objects[0]
        if not isinstance(text, Text):
            text = self.render_str(text, markup=options.pop("markup", None))
        for line in _wrapped(text, self.width):
            super().print(line, soft_wrap=True, **options)


def _wrapped(text: Text, width: int) -> list[Text]:
    """``text`` broken at spaces into lines of ``width``; a longer word is a line of its own."""
    lines: list[Text] = []
    for paragraph in text.split("\n", allow_blank=True):
        for line in paragraph.divide(divide_line(paragraph.plain, width, fold=False)):
            line.rstrip()
            lines.append(line)
    return lines


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
