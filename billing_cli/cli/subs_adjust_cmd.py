"""``billing subs`` adjustments: extend-trial, end-trial, pause, unpause, discount, quantity.

Registered on the ``subs`` group by :func:`register`, kept in their own module so the lifecycle
commands in ``subs_cmd`` and these grow apart. Each parses, calls one function of
:mod:`billing_cli.services.subscriptions.adjustments`, and renders.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from billing_cli.cli.options import DryRunOption, JsonOption, YesOption
from billing_cli.cli.runtime import runtime_of

if TYPE_CHECKING:
    from billing_cli.services.subscriptions.adjustments import AdjustmentResult, BillingRules

TenantArgument = Annotated[str, typer.Argument(help="The tenant's slug.")]


class PauseBehavior(StrEnum):
    keep_as_draft = "keep_as_draft"
    mark_uncollectible = "mark_uncollectible"
    void = "void"


def billing_rules(ctx: typer.Context) -> BillingRules:
    """The access rules a subscription change follows (also ``subs migrate``'s)."""
    from billing_cli.services.subscriptions.adjustments import BillingRules

    settings = runtime_of(ctx).settings()
    return BillingRules(
        max_failed_attempts=settings.max_failed_attempts, paused_access=settings.paused_access
    )


def _render(
    result: AdjustmentResult,
    *,
    json_output: bool,
    title: str = "Invoice this change makes (from Stripe)",
) -> None:
    from billing_cli.cli import render
    from billing_cli.cli.invoice_render import invoice_preview

    if json_output:
        render.emit_json(result.to_dict())
        return
    render.change(result.change, json_output=False)
    if result.preview is not None:
        invoice_preview(title, result.preview)


def extend_trial(
    ctx: typer.Context,
    tenant: TenantArgument,
    until: Annotated[
        str | None, typer.Option("--until", help="New trial end: 2026-12-31[T12:00] (UTC).")
    ] = None,
    days: Annotated[
        int | None, typer.Option("--days", help="Days to add to the current trial end.")
    ] = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Move a trialing subscription's trial end later (--until DATE or --days N)."""
    from billing_cli.services.subscriptions import adjustments

    end = adjustments.parse_future_date(until) if until is not None else None
    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=f"extend {tenant}'s trial", dry_run=dry_run, yes=yes
    )
    result = adjustments.extend_trial(
        db,
        gateway,
        invocation=invocation,
        tenant_slug=tenant,
        until=end,
        days=days,
        rules=billing_rules(ctx),
    )
    _render(result, json_output=json_output)


def end_trial(
    ctx: typer.Context,
    tenant: TenantArgument,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """End a trial now: the first paid period starts and is invoiced at once (no proration).

    --dry-run shows Stripe's preview of that invoice."""
    from billing_cli.services.subscriptions import adjustments

    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=f"end {tenant}'s trial now", dry_run=dry_run, yes=yes
    )
    result = adjustments.end_trial(
        db, gateway, invocation=invocation, tenant_slug=tenant, rules=billing_rules(ctx)
    )
    _render(result, json_output=json_output)


def pause(
    ctx: typer.Context,
    tenant: TenantArgument,
    behavior: Annotated[
        PauseBehavior,
        typer.Option("--behavior", help="What Stripe does with invoices while paused."),
    ] = PauseBehavior.keep_as_draft,
    resumes_at: Annotated[
        str | None,
        typer.Option("--resumes-at", help="Resume collection automatically at this date (UTC)."),
    ] = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Pause payment collection; BILLING_PAUSED_ACCESS=keep|suspend decides the tenant's access."""
    from billing_cli.services.subscriptions import adjustments

    resume = adjustments.parse_future_date(resumes_at) if resumes_at is not None else None
    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=f"pause {tenant}'s collection", dry_run=dry_run, yes=yes
    )
    result = adjustments.pause_collection(
        db,
        gateway,
        invocation=invocation,
        tenant_slug=tenant,
        behavior=behavior.value,
        resumes_at=resume,
        rules=billing_rules(ctx),
    )
    _render(result, json_output=json_output)


def unpause(
    ctx: typer.Context,
    tenant: TenantArgument,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Resume payment collection on a paused subscription."""
    from billing_cli.services.subscriptions import adjustments

    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=f"resume {tenant}'s collection", dry_run=dry_run, yes=yes
    )
    result = adjustments.unpause_collection(
        db, gateway, invocation=invocation, tenant_slug=tenant, rules=billing_rules(ctx)
    )
    _render(result, json_output=json_output)


def discount(
    ctx: typer.Context,
    tenant: TenantArgument,
    coupon: Annotated[
        str | None, typer.Option("--coupon", help="Coupon id to apply (replaces any).")
    ] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the discount.")] = False,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Give the subscription a coupon (--coupon ID) or take its discount away (--remove).

    --dry-run shows Stripe's preview of the next invoice with the change."""
    from billing_cli.errors import UsageError
    from billing_cli.services.catalog import discounts

    if (coupon is None) == (not remove):
        raise UsageError("give exactly one of --coupon ID or --remove")
    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=f"change {tenant}'s discount", dry_run=dry_run, yes=yes
    )
    result = discounts.set_discount(
        db,
        gateway,
        invocation=invocation,
        tenant_slug=tenant,
        coupon_id=coupon,
        rules=billing_rules(ctx),
    )
    _render(result, json_output=json_output, title="Next invoice with this change (from Stripe)")


class Proration(StrEnum):
    create_prorations = "create_prorations"
    none = "none"
    always_invoice = "always_invoice"


def quantity(
    ctx: typer.Context,
    tenant: TenantArgument,
    seats: Annotated[int, typer.Argument(metavar="N", help="The new quantity (seats).")],
    proration: Annotated[
        Proration, typer.Option("--proration", help="How Stripe bills the change.")
    ] = Proration.create_prorations,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Change the number of seats; --dry-run shows Stripe's proration preview."""
    from billing_cli.services.subscriptions import adjustments

    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=f"set {tenant}'s quantity to {seats}", dry_run=dry_run, yes=yes
    )
    result = adjustments.change_quantity(
        db,
        gateway,
        invocation=invocation,
        tenant_slug=tenant,
        quantity=seats,
        proration=proration.value,
        rules=billing_rules(ctx),
    )
    _render(result, json_output=json_output)


def register(app: typer.Typer) -> None:
    """Add the adjustment commands to the ``subs`` group."""
    app.command("extend-trial")(extend_trial)
    app.command("end-trial")(end_trial)
    app.command("pause")(pause)
    app.command("unpause")(unpause)
    app.command("discount")(discount)
    app.command("quantity")(quantity)
