"""``billing payments``: one-off charges and saved payment methods."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from billing_cli.cli.options import DryRunOption, JsonOption, SinceOption, TenantArgument, YesOption
from billing_cli.cli.runtime import runtime_of

app = typer.Typer(
    help="One-off charges and payment methods.", no_args_is_help=True, rich_markup_mode=None
)
methods_app = typer.Typer(
    help="A tenant's saved payment methods.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(methods_app, name="methods")
ReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Why, for the audit trail (e.g. a ticket number).")
]


class RefundReason(StrEnum):
    duplicate = "duplicate"
    fraudulent = "fraudulent"
    requested_by_customer = "requested_by_customer"


@app.command("charge")
def charge(
    ctx: typer.Context,
    tenant: TenantArgument,
    amount: Annotated[str, typer.Option("--amount", help="In major units, e.g. 12.50.")],
    currency: Annotated[str, typer.Option("--currency", help="ISO code, e.g. usd.")],
    description: Annotated[str, typer.Option("--description", help="Shown on the receipt.")],
    reason: ReasonOption = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Charge a one-off amount to the tenant's default payment method."""
    from billing_cli.cli import render
    from billing_cli.money import check_currency, format_money, to_minor_units
    from billing_cli.services.payments import charges as payments

    code = check_currency(currency)
    minor = to_minor_units(amount, code)
    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=f"charge {tenant} {format_money(minor, code)}", dry_run=dry_run, yes=yes
    )
    result = payments.charge(
        db,
        gateway,
        invocation=invocation,
        tenant_slug=tenant,
        amount=minor,
        currency=code,
        description=description,
    )
    render.change(result, json_output=json_output)


@methods_app.command("list")
def list_methods(
    ctx: typer.Context,
    tenant: TenantArgument,
    json_output: JsonOption = False,
) -> None:
    """List the tenant's saved payment methods."""
    from billing_cli.cli import render
    from billing_cli.services.payments import charges as payments

    runtime = runtime_of(ctx)
    rows = payments.list_methods(
        runtime.database(), runtime.gateway(dry_run=False), tenant_slug=tenant
    )
    if json_output:
        render.emit_json(rows)
        return
    render.table(
        f"Payment methods of {tenant}",
        ("id", "brand", "last4", "expires", "default"),
        ((m["id"], m["brand"], m["last4"], m["expires"], m["default"]) for m in rows),
        empty=f"{tenant} has no saved payment methods",
    )


@methods_app.command("attach")
def attach(
    ctx: typer.Context,
    tenant: TenantArgument,
    payment_method: Annotated[str, typer.Argument(help="The payment method id (pm_...).")],
    default: Annotated[
        bool, typer.Option("--default", help="Make it the default for invoices.")
    ] = False,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Attach a payment method to the tenant's Stripe customer."""
    from billing_cli.cli import render
    from billing_cli.services.payments import charges as payments

    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=f"attach {payment_method} to {tenant}", dry_run=dry_run, yes=yes
    )
    result = payments.attach_method(
        db,
        gateway,
        invocation=invocation,
        tenant_slug=tenant,
        payment_method=payment_method,
        make_default=default,
        max_failed_attempts=runtime_of(ctx).settings().max_failed_attempts,
    )
    render.change(result, json_output=json_output)


@app.command("list")
def list_(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="The tenant's slug.")],
    limit: Annotated[int, typer.Option("--limit", help="At most this many (1-100).")] = 20,
    since: SinceOption = None,
    json_output: JsonOption = False,
) -> None:
    """A tenant's payment history, newest first (read from Stripe)."""
    from billing_cli.cli import render
    from billing_cli.services.payments import history as payment_history
    from billing_cli.timeparse import parse_when

    runtime = runtime_of(ctx)
    rows = payment_history.list_payments(
        runtime.database(),
        runtime.gateway(dry_run=False),
        tenant_slug=tenant,
        limit=limit,
        since=parse_when(since) if since else None,
    )
    if json_output:
        render.emit_json(rows)
        return
    render.table(
        f"Payments of {tenant}",
        ("id", "date", "amount", "status", "decline code", "refunded", "description"),
        (
            (
                p["id"],
                p["created"],
                p["amount_display"],
                p["status"],
                p["decline_code"],
                p["refunded_display"] if p["amount_refunded"] else "",
                p["description"],
            )
            for p in rows
        ),
        empty=f"{tenant} has no payments",
    )


@app.command("refund")
def refund(
    ctx: typer.Context,
    payment: Annotated[
        str | None, typer.Argument(help="The payment id (pi_... or ch_...), or give --invoice.")
    ] = None,
    invoice: Annotated[
        str | None, typer.Option("--invoice", help="Refund the payment of this invoice (in_...).")
    ] = None,
    amount: Annotated[
        str | None,
        typer.Option("--amount", help="In major units, e.g. 5.00 (default: all that is left)."),
    ] = None,
    reason: Annotated[
        RefundReason | None, typer.Option("--reason", help="Stripe's reason; kept in the audit.")
    ] = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Refund a payment in full or in part; more than is left is refused before any write."""
    from billing_cli.cli import render
    from billing_cli.errors import UsageError
    from billing_cli.services.payments import history as payment_history

    if (payment is None) == (invoice is None):
        raise UsageError("give either a payment id (pi_... or ch_...) or --invoice in_...")
    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=f"refund {payment or invoice}", dry_run=dry_run, yes=yes
    )
    why = reason.value if reason else None
    if invoice is not None:
        result = payment_history.refund_invoice(
            db, gateway, invocation=invocation, invoice_id=invoice, amount=amount, reason=why
        )
    else:
        assert payment is not None
        result = payment_history.refund(
            db, gateway, invocation=invocation, payment_id=payment, amount=amount, reason=why
        )
    render.change(result, json_output=json_output)


@methods_app.command("detach")
def detach(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="The tenant's slug.")],
    payment_method: Annotated[str, typer.Argument(help="The payment method id (pm_...).")],
    force: Annotated[
        bool,
        typer.Option("--force", help="Detach the default card even while a subscription is live."),
    ] = False,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Detach a saved card from the tenant's Stripe customer."""
    from billing_cli.cli import render
    from billing_cli.services.payments import methods as payment_methods

    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=f"detach {payment_method} from {tenant}", dry_run=dry_run, yes=yes
    )
    result = payment_methods.detach(
        db,
        gateway,
        invocation=invocation,
        tenant_slug=tenant,
        payment_method=payment_method,
        force=force,
    )
    render.change(result, json_output=json_output)


@methods_app.command("default")
def default_(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="The tenant's slug.")],
    payment_method: Annotated[str, typer.Argument(help="The payment method id (pm_...).")],
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Make a saved card the default of the customer and of its live subscription."""
    from billing_cli.cli import render
    from billing_cli.services.payments import methods as payment_methods

    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=f"make {payment_method} the default card of {tenant}", dry_run=dry_run, yes=yes
    )
    result = payment_methods.make_default(
        db, gateway, invocation=invocation, tenant_slug=tenant, payment_method=payment_method
    )
    render.change(result, json_output=json_output)


@app.command("recover")
def recover(
    ctx: typer.Context,
    tenant: TenantArgument,
    payment_method: Annotated[
        str, typer.Option("--payment-method", help="The working card (pm_...) to pay with.")
    ],
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """After a decline: attach the card, make it the card that pays, pay the open invoices
    oldest first, and show whether the tenant is active again. A re-run finishes an
    interrupted recovery."""
    from billing_cli.cli import render
    from billing_cli.services.payments import recovery

    runtime = runtime_of(ctx)
    db, gateway, invocation = runtime.begin_stripe_change(
        ctx, what=f"recover {tenant} with {payment_method}", dry_run=dry_run, yes=yes
    )
    result = recovery.recover(
        db,
        gateway,
        invocation=invocation,
        tenant_slug=tenant,
        payment_method=payment_method,
        max_failed_attempts=runtime.settings().max_failed_attempts,
    )
    render.change(result, json_output=json_output)
