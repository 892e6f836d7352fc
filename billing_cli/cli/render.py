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


def plain(text: str) -> str:
    """Text that came from outside (a reason, a name, an event's note) made safe to embed in a
    line with rich markup: control characters removed, and ``[`` never read as a style tag
    (``--reason "[/bold]"`` would otherwise be a markup error, ``[red]`` a colour)."""
    from rich.markup import escape

    from billing_cli.text import printable

    return escape(printable(text))


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
    """Rows as a table; on a terminal too narrow for it, one block of ``field value`` per row.

    No word is ever broken (ids, dates and amounts have no spaces, so they stay whole and can be
    double-clicked): each column is at least as wide as its longest word. When those widths do
    not fit the terminal, columns that are empty in every row are left out; if it still does
    not fit, the vertical layout is used instead of squeezing.
    """
    from rich.table import Table

    cells = [[_cell(value) for value in row] for row in rows]
    if not cells:
        err().print(f"[dim]{empty}[/dim]")
        return
    widths = _widths(columns, cells)
    if widths is None:  # first give up the columns that hold nothing at all
        kept = [i for i in range(len(columns)) if any(row[i] for row in cells)]
        columns = [columns[i] for i in kept]
        cells = [[row[i] for i in kept] for row in cells]
        widths = _widths(columns, cells)
    if widths is None:
        _vertical(title, columns, cells)
        return
    grid = Table(title=_text(title) if title else None, title_justify="left", header_style="bold")
    for column, width in zip(columns, widths, strict=True):
        grid.add_column(column, overflow="fold", min_width=width)
    for row in cells:
        grid.add_row(*(_text(value) for value in row))
    out().print(grid)


def _widths(columns: Sequence[str], cells: list[list[str]]) -> list[int] | None:
    """Each column's width so that no word breaks, or None when they do not fit the terminal."""
    widths = [
        max(_longest_word(text) for text in (column, *(row[i] for row in cells)))
        for i, column in enumerate(columns)
    ]
    fits = sum(widths) + 3 * len(columns) + 1 <= out().width
    return widths if fits else None


def _vertical(title: str | None, columns: Sequence[str], cells: list[list[str]]) -> None:
    """Each row as its own block of ``field  value`` lines: what a narrow terminal can show."""
    from rich.table import Table

    console = out()
    if title:
        console.print(_text(title, style="bold"))
    label_width = max(len(column) for column in columns)
    for number, row in enumerate(cells, start=1):
        block = Table.grid(padding=(0, 2))
        block.add_column(style="bold", no_wrap=True, min_width=label_width)
        block.add_column(overflow="fold")
        for column, value in zip(columns, row, strict=True):
            block.add_row(column, _text(value))
        if number > 1:
            console.print()
        console.print(block)


def _longest_word(text: str) -> int:
    return max((len(word) for word in text.split()), default=0)


def _text(value: str, *, style: str = "") -> Any:
    """Plain text (never read as markup) for a table cell."""
    from rich.text import Text

    return Text(value, style=style)


def key_values(title: str, data: dict[str, Any]) -> None:
    table(title, ("field", "value"), ((key, value) for key, value in for_people(data).items()))


def change(result: Change, *, json_output: bool) -> None:
    """Show what a mutation did or would do: a summary line and the fields that moved."""
    if json_output:
        from billing_cli.money import with_display

        emit_json(with_display(result.to_dict()))
        return
    style = "yellow" if result.dry_run else ("green" if result.changed else "dim")
    prefix = "\\[dry run] " if result.dry_run else ""
    out().print(f"[{style}]{prefix}{plain(result.message)}[/{style}]")
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
    for key, value in for_people(data).items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _cell(value: Any) -> str:
    """A value as people read it: control characters removed (DESIGN.md section 6)."""
    from billing_cli.text import printable

    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return printable(json.dumps(value, default=str))
    return printable(str(value))


def for_people(data: dict[str, Any]) -> dict[str, Any]:
    """A view's fields as a table shows them: epoch seconds as ISO dates, amounts in major
    units with their currency (:func:`billing_cli.money.in_major_units`, for every view and
    every before/after diff, so no command formats money of its own).

    ``--json`` keeps the raw values; this is for tables only.
    """
    from billing_cli.money import in_major_units
    from billing_cli.services.views import iso_from_unix

    shown = dict(data)
    for key in _EPOCH_FIELDS & shown.keys():
        if isinstance(shown[key], int) and not isinstance(shown[key], bool):
            shown[key] = iso_from_unix(shown[key])
    amount, currency = shown.get("amount"), shown.get("currency")
    if isinstance(amount, int) and isinstance(currency, str) and "price" in shown:
        del shown["amount"]  # a plan's price column already says it
    return in_major_units(shown)


_EPOCH_FIELDS = frozenset({"last_event_created", "created", "period_end", "next_payment_attempt"})


def side_by_side(
    title: str,
    local: dict[str, Any],
    remote: dict[str, Any],
    differences: Sequence[str],
    *,
    fix: str = "",
) -> None:
    """Local row against Stripe's live state; rows that differ are marked, and ``fix`` names
    the command that reconciles them."""
    from rich.table import Table

    local, remote = for_people(local), for_people(remote)
    columns = ("field", "local", "stripe", "check")
    cells = [
        [
            key,
            _cell(local.get(key)),
            _cell(remote.get(key)),
            "DIFFERS" if key in differences else "ok",
        ]
        for key in dict.fromkeys([*local, *remote])
    ]
    widths = _widths(columns, cells)
    if widths is None:
        _vertical(title, columns, cells)
    else:
        grid = Table(
            title=_text(title) if title else None, title_justify="left", header_style="bold"
        )
        for column, width in zip(columns, widths, strict=True):
            grid.add_column(column, overflow="fold", min_width=width)
        for row in cells:
            style = "bold red" if row[3] == "DIFFERS" else None
            grid.add_row(*(_text(value) for value in row), style=style)
        out().print(grid)
    if differences:
        err().print(f"{len(differences)} field(s) differ: {', '.join(differences)}")
        if fix:
            err().print(fix)
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
