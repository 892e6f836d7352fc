"""``billing notifications``: The notification outbox."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="The notification outbox.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
