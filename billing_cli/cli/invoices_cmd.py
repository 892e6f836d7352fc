"""``billing invoices``: what Stripe will bill next."""

from __future__ import annotations

from typing import Annotated

import typer

from billing_cli.cli.options import JsonOption
from billing_cli.cli.runtime import runtime_of

app = typer.Typer(help="Tenants' invoices in Stripe.", no_args_is_help=True, rich_markup_mode=None)


@app.command("upcoming")
def upcoming(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="The tenant's slug.")],
    json_output: JsonOption = False,
) -> None:
    """Stripe's preview of the tenant's next invoice: date, lines, discounts, credit, total."""
    from billing_cli.cli import render
    from billing_cli.cli.invoice_render import invoice_preview
    from billing_cli.services import upcoming as service

    runtime = runtime_of(ctx)
    view, preview = service.upcoming_invoice(
        runtime.database(), runtime.gateway(dry_run=False), tenant_slug=tenant
    )
    if json_output:
        render.emit_json(view)
        return
    invoice_preview(f"Next invoice of {tenant} (from Stripe)", preview)
