"""``billing plans``: Subscription plans and their Stripe Products and Prices."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Subscription plans and their Stripe Products and Prices.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
