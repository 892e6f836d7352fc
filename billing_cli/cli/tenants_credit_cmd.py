"""``billing tenants credit``: a customer balance transaction; and the billing part of
``tenants show`` (active discount, balance). Registered on the ``tenants`` group."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from billing_cli.cli.options import DryRunOption, JsonOption, YesOption
from billing_cli.cli.runtime import runtime_of


def credit(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="The tenant's slug.")],
    amount: Annotated[
        str, typer.Option("--amount", help="Credit in major units (negative: a debit).")
    ],
    currency: Annotated[str, typer.Option("--currency", help="The balance's currency.")],
    reason: Annotated[str, typer.Option("--reason", help="Why; shown in Stripe and audited.")],
    debit: Annotated[
        bool, typer.Option("--debit", help="Allow a negative amount (the customer owes more).")
    ] = False,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Credit a tenant's Stripe balance (used on its next invoices); --debit for a debit."""
    from billing_cli.cli import render
    from billing_cli.services.catalog import discounts

    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=f"credit {slug} {amount} {currency}", dry_run=dry_run, yes=yes
    )
    result = discounts.credit(
        db,
        gateway,
        invocation=invocation,
        tenant_slug=slug,
        amount=amount,
        currency=currency,
        reason=reason,
        debit=debit,
    )
    render.change(result, json_output=json_output)


def billing_of(ctx: typer.Context, slug: str) -> dict[str, Any] | None:
    """The tenant's discount and balance from Stripe; None without a Stripe key or customer,
    or when Stripe cannot answer (said on stderr: the local part of ``show`` still works)."""
    from billing_cli.cli import render
    from billing_cli.errors import GatewayError
    from billing_cli.services.catalog import discounts

    runtime = runtime_of(ctx)
    if not runtime.settings().stripe_secret_key:
        return None
    try:
        return discounts.tenant_billing(
            runtime.database(), runtime.gateway(dry_run=False), tenant_slug=slug
        )
    except GatewayError as error:
        render.err().print(f"Stripe's side not shown: {error.message}")
        return None


def render_billing(billing: dict[str, Any] | None) -> None:
    from billing_cli.cli import render

    if billing is None:
        return
    coupons = ", ".join(f"{d['id']} ({d.get('summary', '')})" for d in billing["discount"])
    render.key_values(
        "Billing (from Stripe)",
        {"discount": coupons or "none", "balance": billing["balance_display"]},
    )


def register(app: typer.Typer) -> None:
    app.command("credit")(credit)
