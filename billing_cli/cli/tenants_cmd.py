"""``billing tenants``: add, list, show, suspend, reactivate."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from billing_cli.cli.options import DryRunOption, JsonOption, YesOption
from billing_cli.cli.runtime import runtime_of

app = typer.Typer(help="Tenants and their access.", no_args_is_help=True, rich_markup_mode=None)


class TenantStatus(StrEnum):
    active = "active"
    suspended = "suspended"


@app.command("add")
def add(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="Unique short name, e.g. acme.")],
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    email: Annotated[str, typer.Option("--email", help="Billing e-mail address.")],
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Add a tenant."""
    from billing_cli.cli import render
    from billing_cli.services import tenants

    db, invocation = runtime_of(ctx).begin_change(
        ctx, what=f"add tenant {slug}", dry_run=dry_run, yes=yes
    )
    result = tenants.add_tenant(db, invocation=invocation, slug=slug, name=name, email=email)
    render.change(result, json_output=json_output)


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        TenantStatus | None, typer.Option("--status", help="Only tenants in this state.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """List tenants."""
    from billing_cli.cli import render
    from billing_cli.services import tenants

    rows = tenants.list_tenants(runtime_of(ctx).database(), status=status.value if status else None)
    if json_output:
        render.emit_json(rows)
        return
    render.table(
        "Tenants",
        ("slug", "name", "email", "status", "suspended by", "reason"),
        (
            (
                t["slug"],
                t["name"],
                t["email"],
                t["status"],
                t["suspended_by"],
                t["suspension_reason"],
            )
            for t in rows
        ),
        empty="no tenants; add one with `billing tenants add`",
    )


@app.command("show")
def show(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="The tenant's slug.")],
    json_output: JsonOption = False,
) -> None:
    """Show a tenant, its subscription row, and its recent audit entries."""
    from billing_cli.cli import render
    from billing_cli.cli.tenants_credit_cmd import billing_of, render_billing
    from billing_cli.services import tenants

    detail = tenants.show_tenant(runtime_of(ctx).database(), slug=slug)
    billing = billing_of(ctx, slug)  # discount and balance, from Stripe (issue 14)
    if json_output:
        render.emit_json({**detail.to_dict(), "billing": billing})
        return
    render.key_values(f"Tenant {slug}", detail.tenant)
    if detail.subscription:
        render.key_values("Subscription", detail.subscription)
    else:
        render.note("no subscription")
    render_billing(billing)
    render.table(
        "Recent audit entries",
        ("at", "operator", "command", "outcome"),
        ((a["at"], a["operator"], a["command"], a["outcome"]) for a in detail.audit),
        empty="no audit entries",
    )


@app.command("suspend")
def suspend(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="The tenant's slug.")],
    reason: Annotated[str, typer.Option("--reason", help="Why; kept in the audit trail.")],
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Suspend a tenant by hand (only a person can reactivate it)."""
    from billing_cli.cli import render
    from billing_cli.services import tenants

    db, invocation = runtime_of(ctx).begin_change(
        ctx, what=f"suspend tenant {slug}", dry_run=dry_run, yes=yes
    )
    result = tenants.suspend_tenant(db, invocation=invocation, slug=slug, reason=reason)
    render.change(result, json_output=json_output)


@app.command("reactivate")
def reactivate(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="The tenant's slug.")],
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Lift a tenant's suspension, whoever made it."""
    from billing_cli.cli import render
    from billing_cli.services import tenants

    db, invocation = runtime_of(ctx).begin_change(
        ctx, what=f"reactivate tenant {slug}", dry_run=dry_run, yes=yes
    )
    result = tenants.reactivate_tenant(db, invocation=invocation, slug=slug)
    render.change(result, json_output=json_output)


@app.command("remove")
def remove(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="The tenant's slug.")],
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Remove a tenant: cancel its subscription, delete its Stripe customer and its rows."""
    from billing_cli.cli import render
    from billing_cli.services import offboarding

    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=f"remove tenant {slug} and its Stripe customer", dry_run=dry_run, yes=yes
    )
    result = offboarding.remove_tenant(
        db,
        gateway,
        invocation=invocation,
        slug=slug,
    )
    render.change(result, json_output=json_output)


def _register_credit() -> None:
    from billing_cli.cli import tenants_credit_cmd

    tenants_credit_cmd.register(app)


_register_credit()
