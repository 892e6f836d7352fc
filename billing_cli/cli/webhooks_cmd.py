"""``billing webhooks``: Stripe webhook events: the ledger, replay, and the live endpoint."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Stripe webhook events: the ledger, replay, and the live endpoint.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
