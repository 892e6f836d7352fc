"""``billing invoices``: a tenant's invoices; retry, void or write one off."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from billing_cli.cli.options import (
    ConfirmYesOption,
    DryRunOption,
    JsonOption,
    SinceOption,
    YesOption,
)
from billing_cli.cli.runtime import runtime_of

app = typer.Typer(
    help="Invoices: list, show, retry now, void, mark uncollectible.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
InvoiceArgument = Annotated[str, typer.Argument(help="The invoice id (in_...).")]


class InvoiceStatus(StrEnum):
    draft = "draft"
    open = "open"
    paid = "paid"
    uncollectible = "uncollectible"
    void = "void"


@app.command("list")
def list_(
    ctx: typer.Context,
    tenant: Annotated[
        str | None, typer.Argument(help="The tenant's slug (none: every tenant's invoices).")
    ] = None,
    status: Annotated[
        InvoiceStatus | None, typer.Option("--status", help="Only invoices in this state.")
    ] = None,
    since: SinceOption = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many (1-100).")] = 20,
    json_output: JsonOption = False,
) -> None:
    """List invoices, newest first (read from Stripe): a tenant's, or all tenants' with a
    tenant column (`invoices list --status open --since 24h`: which failed today)."""
    from billing_cli.cli import render
    from billing_cli.services.payments import invoices
    from billing_cli.timeparse import parse_when

    runtime = runtime_of(ctx)
    rows = invoices.list_invoices(
        runtime.database(),
        runtime.gateway(dry_run=False),
        tenant_slug=tenant,
        status=status.value if status else None,
        limit=limit,
        since=parse_when(since) if since else None,
    )
    if json_output:
        render.emit_json(rows)
        return
    across = tenant is None
    columns = ("id", "number", "status", "created", "due", "paid", "remaining", "attempts")
    render.table(
        "Invoices of all tenants" if across else f"Invoices of {tenant}",
        (*(("tenant",) if across else ()), *columns, "next try"),
        (
            (
                *((i["tenant"] or i["customer"],) if across else ()),
                i["id"],
                i["number"],
                i["status"],
                i["created"],
                i["amount_due_display"],
                i["amount_paid_display"],
                i["amount_remaining_display"],
                i["attempt_count"],
                i["next_payment_attempt"],
            )
            for i in rows
        ),
        empty=f"{tenant or 'no tenant'} has no invoices"
        + (f" that are {status.value}" if status else "")
        + (f" since {since}" if since else ""),
    )


@app.command("show")
def show(ctx: typer.Context, invoice: InvoiceArgument, json_output: JsonOption = False) -> None:
    """Show one invoice: amounts, period, attempts, next retry, lines."""
    from billing_cli.cli import render
    from billing_cli.services.payments import invoices

    runtime = runtime_of(ctx)
    detail = invoices.show_invoice(
        runtime.database(), runtime.gateway(dry_run=False), invoice_id=invoice
    )
    if json_output:
        render.emit_json(detail)
        return
    lines = detail.pop("lines")
    render.key_values(f"Invoice {detail['number'] or detail['id']}", detail)
    render.table(
        "Lines",
        ("description", "amount", "quantity", "period start", "period end"),
        (
            (
                line["description"],
                line["amount_display"],
                line["quantity"],
                line["period_start"],
                line["period_end"],
            )
            for line in lines
        ),
        empty="no lines",
    )


@app.command("pay")
def pay(
    ctx: typer.Context,
    invoice: InvoiceArgument,
    payment_method: Annotated[
        str | None,
        typer.Option(
            "--payment-method", help="Charge this attached card (pm_...) instead of the default."
        ),
    ] = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Charge an open invoice again now (say, once the card is fixed)."""
    from billing_cli.cli import render
    from billing_cli.services.payments import invoices

    runtime = runtime_of(ctx)
    db, gateway, invocation = runtime.begin_stripe_change(
        ctx, what=f"collect invoice {invoice}", dry_run=dry_run, yes=yes
    )
    result = invoices.pay_invoice(
        db,
        gateway,
        invocation=invocation,
        invoice_id=invoice,
        payment_method=payment_method,
        max_failed_attempts=runtime.settings().max_failed_attempts,
    )
    render.change(result, json_output=json_output)


@app.command("void")
def void(
    ctx: typer.Context,
    invoice: InvoiceArgument,
    dry_run: DryRunOption = False,
    yes: ConfirmYesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Void an open or uncollectible invoice (asks first unless --yes)."""
    from billing_cli.cli import render
    from billing_cli.cli.confirm import confirm
    from billing_cli.services.payments import invoices

    confirm(f"void invoice {invoice}", yes=yes, dry_run=dry_run)
    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=f"void invoice {invoice}", dry_run=dry_run, yes=True
    )
    result = invoices.void_invoice(db, gateway, invocation=invocation, invoice_id=invoice)
    render.change(result, json_output=json_output)


@app.command("mark-uncollectible")
def mark_uncollectible(
    ctx: typer.Context,
    invoice: InvoiceArgument,
    dry_run: DryRunOption = False,
    yes: ConfirmYesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Write an open invoice off as uncollectible (asks first unless --yes)."""
    from billing_cli.cli import render
    from billing_cli.cli.confirm import confirm
    from billing_cli.services.payments import invoices

    confirm(f"mark invoice {invoice} uncollectible", yes=yes, dry_run=dry_run)
    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=f"mark invoice {invoice} uncollectible", dry_run=dry_run, yes=True
    )
    result = invoices.mark_uncollectible(db, gateway, invocation=invocation, invoice_id=invoice)
    render.change(result, json_output=json_output)


@app.command("upcoming")
def upcoming(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="The tenant's slug.")],
    json_output: JsonOption = False,
) -> None:
    """Stripe's preview of the tenant's next invoice: date, lines, discounts, credit, total."""
    from billing_cli.cli import render
    from billing_cli.cli.invoice_render import invoice_preview
    from billing_cli.services.subscriptions import upcoming as service

    runtime = runtime_of(ctx)
    view, preview = service.upcoming_invoice(
        runtime.database(), runtime.gateway(dry_run=False), tenant_slug=tenant
    )
    if json_output:
        render.emit_json(view)
        return
    invoice_preview(f"Next invoice of {tenant} (from Stripe)", preview)
