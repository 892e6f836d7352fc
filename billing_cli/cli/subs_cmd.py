"""``billing subs``: create, upgrade, cancel, resume, refresh, show, list."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from billing_cli.cli.options import DryRunOption, JsonOption, PlanOption, TenantArgument, YesOption
from billing_cli.cli.runtime import runtime_of

app = typer.Typer(
    help="Tenants' Stripe subscriptions.", no_args_is_help=True, rich_markup_mode=None
)


class Proration(StrEnum):
    create_prorations = "create_prorations"
    none = "none"
    always_invoice = "always_invoice"


class SubscriptionStatus(StrEnum):
    trialing = "trialing"
    active = "active"
    past_due = "past_due"
    unpaid = "unpaid"
    canceled = "canceled"
    incomplete = "incomplete"
    incomplete_expired = "incomplete_expired"
    paused = "paused"


@app.command("create")
def create(
    ctx: typer.Context,
    tenant: TenantArgument,
    plan: PlanOption,
    payment_method: Annotated[
        str | None,
        typer.Option("--payment-method", help="pm_... to attach and make the default."),
    ] = None,
    trial_days: Annotated[
        int | None, typer.Option("--trial-days", help="Trial length (default: the plan's).")
    ] = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Subscribe a tenant to a plan (refused while it has one that has not ended)."""
    from billing_cli.cli import render
    from billing_cli.services.subscriptions import lifecycle as subscriptions

    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=f"subscribe {tenant} to {plan}", dry_run=dry_run, yes=yes
    )
    result = subscriptions.create_subscription(
        db,
        gateway,
        invocation=invocation,
        tenant_slug=tenant,
        plan_slug=plan,
        payment_method=payment_method,
        trial_days=trial_days,
        max_failed_attempts=runtime_of(ctx).settings().max_failed_attempts,
    )
    render.change(result, json_output=json_output)


@app.command("upgrade")
def upgrade(
    ctx: typer.Context,
    tenant: TenantArgument,
    plan: PlanOption,
    proration: Annotated[
        Proration, typer.Option("--proration", help="How Stripe bills the change.")
    ] = Proration.create_prorations,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Move a tenant to another plan; --dry-run shows Stripe's proration preview."""
    from billing_cli.cli import render
    from billing_cli.services.subscriptions import lifecycle as subscriptions

    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=f"move {tenant} to {plan}", dry_run=dry_run, yes=yes
    )
    result = subscriptions.upgrade_subscription(
        db,
        gateway,
        invocation=invocation,
        tenant_slug=tenant,
        plan_slug=plan,
        proration=proration.value,
        max_failed_attempts=runtime_of(ctx).settings().max_failed_attempts,
    )
    if json_output:
        render.emit_json(result.to_dict())
        return
    render.change(result.change, json_output=False)
    if result.preview is not None:
        render.proration_preview(result.preview)


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    tenant: TenantArgument,
    now: Annotated[
        bool, typer.Option("--now", help="Cancel immediately (default: at period end).")
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why; kept in the audit trail.")
    ] = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Cancel a tenant's subscription at period end, or --now."""
    from billing_cli.cli import render
    from billing_cli.services.subscriptions import lifecycle as subscriptions

    when = "now" if now else "at period end"
    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=f"cancel {tenant}'s subscription {when}", dry_run=dry_run, yes=yes
    )
    result = subscriptions.cancel_subscription(
        db,
        gateway,
        invocation=invocation,
        tenant_slug=tenant,
        now=now,
        max_failed_attempts=runtime_of(ctx).settings().max_failed_attempts,
    )
    render.change(result, json_output=json_output)


@app.command("resume")
def resume(
    ctx: typer.Context,
    tenant: TenantArgument,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Withdraw a pending cancel-at-period-end (refused after the period ended)."""
    from billing_cli.cli import render
    from billing_cli.services.subscriptions import lifecycle as subscriptions

    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=f"resume {tenant}'s subscription", dry_run=dry_run, yes=yes
    )
    result = subscriptions.resume_subscription(
        db,
        gateway,
        invocation=invocation,
        tenant_slug=tenant,
        max_failed_attempts=runtime_of(ctx).settings().max_failed_attempts,
    )
    render.change(result, json_output=json_output)


@app.command("refresh")
def refresh(
    ctx: typer.Context,
    tenant: TenantArgument,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Pull the tenant's customer and subscriptions from Stripe into the local rows."""
    from billing_cli.cli import render
    from billing_cli.services.reconcile import refresh as service

    runtime = runtime_of(ctx)
    db, invocation = runtime.begin_change(
        ctx, what=f"refresh {tenant} from Stripe", dry_run=dry_run, yes=yes
    )
    # Reads only: a DryRunGateway guarantees that nothing is ever written to Stripe.
    result = service.refresh_subscription(
        db,
        runtime.gateway(dry_run=True),
        invocation=invocation,
        tenant_slug=tenant,
        max_failed_attempts=runtime.settings().max_failed_attempts,
    )
    if json_output:
        render.emit_json(result.to_dict())
        return
    render.change(result.applied.change, json_output=False)
    for drift in result.applied.remaining:
        render.note(f"still differs ({drift.kind}): {drift.detail}")


@app.command("show")
def show(ctx: typer.Context, tenant: TenantArgument, json_output: JsonOption = False) -> None:
    """The local row and Stripe's live subscription side by side, differences marked."""
    from billing_cli.cli import render
    from billing_cli.services.subscriptions import lifecycle as subscriptions

    runtime = runtime_of(ctx)
    db = runtime.database()
    result = subscriptions.show_subscription(db, runtime.gateway(dry_run=False), tenant_slug=tenant)
    if json_output:
        render.emit_json(result)
        return
    render.side_by_side(
        f"Subscription of {tenant}",
        result["local"],
        result["stripe"],
        result["differences"],
        fix=result["reconcile"] or "",
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        SubscriptionStatus | None, typer.Option("--status", help="Only this status.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """List subscriptions as recorded locally."""
    from billing_cli.cli import render
    from billing_cli.services.subscriptions import lifecycle as subscriptions

    rows = subscriptions.list_subscriptions(
        runtime_of(ctx).database(), status=status.value if status else None
    )
    if json_output:
        render.emit_json(rows)
        return
    render.table(
        "Subscriptions",
        ("tenant", "plan", "status", "period end", "cancels", "failed", "subscription"),
        (
            (
                r["tenant"],
                r["plan"],
                r["status"],
                r["current_period_end"],
                r["cancel_at_period_end"],
                r["failed_payment_attempts"],
                r["stripe_subscription_id"],
            )
            for r in rows
        ),
        empty="no subscriptions",
    )


def _register_adjustments() -> None:
    from billing_cli.cli import subs_adjust_cmd

    subs_adjust_cmd.register(app)


_register_adjustments()


def _register_migrate() -> None:
    from billing_cli.cli import subs_migrate_cmd

    subs_migrate_cmd.register(app)


_register_migrate()
