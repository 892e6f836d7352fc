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
        from billing_cli.cli.render_console import make_console

        _stdout = make_console(stderr=False)
    return _stdout


def err() -> Console:
    global _stderr
    if _stderr is None:
        from billing_cli.cli.render_console import make_console

        _stderr = make_console(stderr=True)
    return _stderr


def reset_consoles() -> None:
    """Forget cached consoles (tests swap sys.stdout between runs)."""
    global _stdout, _stderr
    _stdout = _stderr = None


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, sort_keys=False) + "\n")
    sys.stdout.flush()


def pretty_json(data: Any) -> None:
    """A document indented for reading, its long lines wrapped at spaces (rich's own
    ``print_json`` leaves them to the terminal, which cuts ids and dates in two)."""
    from rich.json import JSON

    out().print(JSON(json.dumps(data, default=str), highlight=False).text)


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

    No word is ever broken or cut (ids, dates and amounts have no spaces, so they stay whole and
    can be double-clicked): the layout is decided here, not by rich, whose own shrinking of a
    table that is too wide ignores the words in it. Each column gets at least its longest word;
    what is left of the line goes to the columns whose text would still wrap. When even those
    minimums do not fit, columns that are empty in every row are left out; if it still does not
    fit, the vertical layout is used instead of squeezing.
    """
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
    out().print(_grid(title, columns, widths, cells))


def _grid(
    title: str | None,
    columns: Sequence[str],
    widths: Sequence[int],
    cells: list[list[str]],
    *,
    styles: Sequence[str | None] = (),
) -> Any:
    """A rich table whose column widths are fixed here, so rich has nothing left to shrink.

    The title is printed as a line of its own (rich would lay it out at the table's width)."""
    from rich.table import Table

    if title:
        out().print(_text(title, style="italic"))
    grid = Table(header_style="bold")
    for column, width in zip(columns, widths, strict=True):
        grid.add_column(column, width=width)
    for number, row in enumerate(cells):
        style = styles[number] if number < len(styles) else None
        grid.add_row(*(_text(value) for value in row), style=style)
    return grid


def _widths(columns: Sequence[str], cells: list[list[str]]) -> list[int] | None:
    """Each column's width so that no word breaks, or None when they do not fit the terminal.

    A column's minimum is its longest word (header included), its maximum its longest line;
    the room left once every minimum is met goes, a character at a time, to the column that
    is furthest from its maximum, so a long description takes the slack before an id would.
    """
    texts = [(column, *(row[i] for row in cells)) for i, column in enumerate(columns)]
    least = [max(_longest_word(text) for text in column) for column in texts]
    most = [max(_longest_line(text) for text in column) for column in texts]
    room = out().width - (3 * len(columns) + 1) - sum(least)
    if room < 0:
        return None
    widths = list(least)
    wanting = [i for i in range(len(widths)) if most[i] > widths[i]]
    while room > 0 and wanting:
        widest = max(wanting, key=lambda i: most[i] - widths[i])
        widths[widest] += 1
        room -= 1
        wanting = [i for i in wanting if most[i] > widths[i]]
    return widths


def _vertical(title: str | None, columns: Sequence[str], cells: list[list[str]]) -> None:
    """Each row as its own block of ``field  value`` lines: what a narrow terminal can show.

    A value with a word wider than the room beside the labels goes on its own line under its
    label, so the word is still whole."""
    console = out()
    if title:
        console.print(_text(title, style="bold"))
    label_width = max(cell_width(column) for column in columns)
    room = console.width - label_width - 2
    for number, row in enumerate(cells, start=1):
        if number > 1:
            console.print()
        block = _block(label_width, room)
        for column, value in zip(columns, row, strict=True):
            if _longest_word(value) <= room:
                block.add_row(column, _text(value))
                continue
            if block.row_count:
                console.print(block)
                block = _block(label_width, room)
            console.print(_text(column, style="bold"))
            console.print(_text(value))
        if block.row_count:
            console.print(block)


def _block(label_width: int, room: int) -> Any:
    """An empty two-column grid: labels, then values wrapped at spaces within ``room``."""
    from rich.table import Table

    block = Table.grid(padding=(0, 2))
    block.add_column(style="bold", no_wrap=True, width=label_width)
    block.add_column(max_width=room)
    return block


def cell_width(text: str) -> int:
    """Columns ``text`` takes on a terminal (wide characters count twice)."""
    from rich.cells import cell_len

    return cell_len(text)


def _longest_word(text: str) -> int:
    return max((cell_width(word) for word in text.split()), default=0)


def _longest_line(text: str) -> int:
    return max((cell_width(line) for line in text.splitlines()), default=0)


def _text(value: str, *, style: str = "") -> Any:
    """Plain text (never read as markup) for a table cell."""
    from rich.text import Text

    return Text(value, style=style)


def key_values(title: str, data: dict[str, Any]) -> None:
    """One record as a ``field | value`` table; too narrow for that (a value holds a word wider
    than the room left), one block of ``field value`` lines: the same shape, without borders,
    never a block per field."""
    shown = for_people(data)
    cells = [[key, _cell(value)] for key, value in shown.items()]
    if not cells:
        err().print("[dim]nothing to show[/dim]")
        return
    widths = _widths(("field", "value"), cells)
    if widths is None:
        _vertical(title, list(shown), [[value for _, value in cells]])
    else:
        out().print(_grid(title, ("field", "value"), widths, cells))


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
    """A value as people read it: control characters removed (docs/architecture.md)."""
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

    local, remote = for_people(local), for_people(remote)
    keys = list(dict.fromkeys([*local, *remote]))
    styles = ["bold red" if key in differences else None for key in keys]
    checks = ["DIFFERS" if key in differences else "ok" for key in keys]
    columns: tuple[str, ...] = ("field", "local", "stripe", "check")
    cells = [
        [key, _cell(local.get(key)), _cell(remote.get(key)), check]
        for key, check in zip(keys, checks, strict=True)
    ]
    widths = _widths(columns, cells)
    if widths is None:  # too narrow for two values a row: one, or both on two lines
        columns = ("field", "local / stripe", "check")
        cells = [[key, _both(here, there), check] for key, here, there, check in cells]
        widths = _widths(columns, cells)
    if widths is None:
        _vertical(title, columns, cells)
    else:
        out().print(_grid(title, columns, widths, cells, styles=styles))
    if differences:
        err().print(f"{len(differences)} field(s) differ: {', '.join(differences)}")
        if fix:
            err().print(fix)
    else:
        err().print("local row and Stripe agree")


def _both(local: str, remote: str) -> str:
    """One cell for a field's two values: the value once when they agree."""
    return local if local == remote else f"local: {local}\nstripe: {remote}"


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
