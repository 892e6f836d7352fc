"""Output: rich tables and summaries for people, plain JSON for scripts.

Data goes to stdout, everything else (progress, notes, errors) to stderr. Colour is off when the
stream is not a terminal or NO_COLOR is set (rich decides both).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from billing_cli.models import Change

_stdout: Console | None = None
_stderr: Console | None = None


def out() -> Console:
    global _stdout
    if _stdout is None:
        from rich.console import Console

        _stdout = Console(highlight=False, soft_wrap=False)
    return _stdout


def err() -> Console:
    global _stderr
    if _stderr is None:
        from rich.console import Console

        _stderr = Console(stderr=True, highlight=False)
    return _stderr


def reset_consoles() -> None:
    """Forget cached consoles (tests swap sys.stdout between runs)."""
    global _stdout, _stderr
    _stdout = _stderr = None


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, sort_keys=False) + "\n")
    sys.stdout.flush()


def note(message: str) -> None:
    """A line for the person at the terminal, on stderr."""
    err().print(message)


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    empty: str = "nothing to show",
) -> None:
    from rich.table import Table

    rows = list(rows)
    if not rows:
        err().print(f"[dim]{empty}[/dim]")
        return
    grid = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*(_cell(value) for value in row))
    out().print(grid)


def key_values(title: str, data: dict[str, Any]) -> None:
    table(title, ("field", "value"), ((key, value) for key, value in data.items()))


def change(result: Change, *, json_output: bool) -> None:
    """Show what a mutation did or would do: a summary line and the fields that moved."""
    if json_output:
        emit_json(result.to_dict())
        return
    style = "yellow" if result.dry_run else ("green" if result.changed else "dim")
    prefix = "\\[dry run] " if result.dry_run else ""
    out().print(f"[{style}]{prefix}{result.message}[/{style}]")
    diff = list(changed_fields(result.before, result.after))
    if diff and result.changed:
        table(None, ("field", "before", "after"), diff)
    for write in result.stripe_writes:
        verb = "would send" if result.dry_run else "sent"
        out().print(f"  {verb} Stripe {write.get('operation')} {write.get('target', '')}")


def changed_fields(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> Iterable[tuple[str, Any, Any]]:
    before = before or {}
    after = after or {}
    for key in dict.fromkeys([*before, *after]):
        if before.get(key) != after.get(key):
            yield key, before.get(key), after.get(key)


def _cell(value: Any) -> str:
    from rich.markup import escape

    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return escape(json.dumps(value, default=str))
    return escape(str(value))
