"""``billing coupons``: create, list and delete Stripe coupons (give one with ``subs discount``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from billing_cli.cli.options import DryRunOption, JsonOption, YesOption
from billing_cli.cli.runtime import runtime_of

app = typer.Typer(help="Stripe coupons for discounts.", no_args_is_help=True, rich_markup_mode=None)


class Duration(StrEnum):
    once = "once"
    repeating = "repeating"
    forever = "forever"


@app.command("create")
def create(
    ctx: typer.Context,
    coupon_id: Annotated[str, typer.Argument(metavar="ID", help="The coupon's id, e.g. SPRING20.")],
    duration: Annotated[Duration, typer.Option("--duration", help="How long it lasts.")],
    percent_off: Annotated[
        float | None, typer.Option("--percent-off", help="Percentage off, e.g. 20.")
    ] = None,
    amount_off: Annotated[
        str | None, typer.Option("--amount-off", help="Amount off in major units, e.g. 5.00.")
    ] = None,
    currency: Annotated[
        str | None, typer.Option("--currency", help="Currency of --amount-off.")
    ] = None,
    months: Annotated[
        int | None, typer.Option("--months", help="With --duration repeating: how many months.")
    ] = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Create a coupon: --percent-off N or --amount-off X --currency C, for a duration."""
    from billing_cli.cli import render
    from billing_cli.services.catalog import discounts

    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=f"create coupon {coupon_id}", dry_run=dry_run, yes=yes
    )
    result = discounts.create_coupon(
        db,
        gateway,
        invocation=invocation,
        coupon_id=coupon_id,
        percent_off=percent_off,
        amount_off=amount_off,
        currency=currency,
        duration=duration.value,
        months=months,
    )
    render.change(result, json_output=json_output)


@app.command("delete")
def delete(
    ctx: typer.Context,
    coupon_id: Annotated[str, typer.Argument(metavar="ID", help="The coupon's id.")],
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Delete a coupon (asks first; --yes skips): discounts it already gave keep running."""
    from billing_cli.cli import render
    from billing_cli.cli.confirm import confirm
    from billing_cli.services.catalog import discounts

    confirm(f"delete coupon {coupon_id}", yes=yes, dry_run=dry_run)
    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=f"delete coupon {coupon_id}", dry_run=dry_run, yes=True
    )
    result = discounts.delete_coupon(db, gateway, invocation=invocation, coupon_id=coupon_id)
    render.change(result, json_output=json_output)


@app.command("list")
def list_(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """The coupons in Stripe."""
    from billing_cli.cli import render
    from billing_cli.services.catalog import discounts

    rows = discounts.list_coupons(runtime_of(ctx).gateway(dry_run=False))
    if json_output:
        render.emit_json(rows)
        return
    render.table(
        "Coupons",
        ("id", "discount", "redeemed", "valid"),
        ((r["id"], r["summary"], r["times_redeemed"], r["valid"]) for r in rows),
        empty="no coupons; create one with `billing coupons create`",
    )
