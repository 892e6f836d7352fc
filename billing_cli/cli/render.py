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
    for effect in result.side_effects:
        out().print(f"  {effect}")
    for write in result.stripe_writes:
        verb = "would send" if result.dry_run else "sent"
        out().print(f"  {verb} Stripe {write.get('operation')} {write.get('target', '')}")


def changed_fields(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> Iterable[tuple[str, Any, Any]]:
    """The fields whose values differ; nested records are compared field by field."""
    before = _flatten(before or {})
    after = _flatten(after or {})
    for key in dict.fromkeys([*before, *after]):
        if before.get(key) != after.get(key):
            yield key, before.get(key), after.get(key)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _cell(value: Any) -> str:
    from rich.markup import escape

    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return escape(json.dumps(value, default=str))
    return escape(str(value))


def side_by_side(
    title: str, local: dict[str, Any], remote: dict[str, Any], differences: Sequence[str]
) -> None:
    """Local row against Stripe's live state; rows that differ are marked and coloured."""
    from rich.table import Table

    grid = Table(title=title, title_justify="left", header_style="bold")
    for column in ("field", "local", "stripe", "check"):
        grid.add_column(column, overflow="fold")
    for key in dict.fromkeys([*local, *remote]):
        differs = key in differences
        grid.add_row(
            key,
            _cell(local.get(key)),
            _cell(remote.get(key)),
            "DIFFERS" if differs else "ok",
            style="bold red" if differs else None,
        )
    out().print(grid)
    if differences:
        err().print(f"{len(differences)} field(s) differ: {', '.join(differences)}")
    else:
        err().print("local row and Stripe agree")


def proration_preview(preview: Any) -> None:
    """Stripe's invoice preview for a plan change: the proration lines and the total."""
    from billing_cli.money import format_money

    rows = [
        (line.description, format_money(line.amount, preview.currency))
        for line in preview.lines
        if line.proration
    ]
    table("Proration preview (from Stripe)", ("line", "amount"), rows, empty="no proration lines")
    out().print(
        f"proration: {format_money(preview.proration_amount, preview.currency)}; "
        f"next invoice total: {format_money(preview.amount_due, preview.currency)}"
    )
