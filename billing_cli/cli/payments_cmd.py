"""``billing payments``: one-off charges and saved payment methods."""

from __future__ import annotations

from typing import Annotated

import typer

from billing_cli.cli.options import DryRunOption, JsonOption, TenantArgument, YesOption
from billing_cli.cli.runtime import runtime_of

app = typer.Typer(
    help="One-off charges and payment methods.", no_args_is_help=True, rich_markup_mode=None
)
methods_app = typer.Typer(
    help="A tenant's saved payment methods.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(methods_app, name="methods")


@app.command("charge")
def charge(
    ctx: typer.Context,
    tenant: TenantArgument,
    amount: Annotated[str, typer.Option("--amount", help="In major units, e.g. 12.50.")],
    currency: Annotated[str, typer.Option("--currency", help="ISO code, e.g. usd.")],
    description: Annotated[str, typer.Option("--description", help="Shown on the receipt.")],
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Charge a one-off amount to the tenant's default payment method."""
    from billing_cli.cli import render
    from billing_cli.money import check_currency, format_money, to_minor_units
    from billing_cli.services import payments

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
    from billing_cli.services import payments

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
    from billing_cli.services import payments

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
    )
    render.change(result, json_output=json_output)
