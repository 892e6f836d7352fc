"""``billing tenants``: add, list, show, suspend, reactivate."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from billing_cli.cli.options import (
    DryRunOption,
    JsonOption,
    TenantArgument,
    TypedYesOption,
    YesOption,
)
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
    from billing_cli.services.tenants import rules as tenants

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
    search: Annotated[
        str | None,
        typer.Option("--search", help="Only tenants whose slug, name or e-mail has this."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """List tenants with their plan and subscription status."""
    from billing_cli.cli import render
    from billing_cli.services.tenants import desk as tenant_desk

    rows = tenant_desk.list_tenants(
        runtime_of(ctx).database(), status=status.value if status else None, search=search
    )
    if json_output:
        render.emit_json(rows)
        return
    render.table(
        "Tenants",
        ("slug", "name", "email", "plan", "subscription", "status", "suspended by", "reason"),
        (
            (
                t["slug"],
                t["name"],
                t["email"],
                t["plan"],
                t["subscription_status"],
                t["status"],
                t["suspended_by"],
                t["suspension_reason"],
            )
            for t in rows
        ),
        empty=f"no tenants match {search!r}"
        if search
        else "no tenants; add one with `billing tenants add`",
    )


@app.command("show")
def show(
    ctx: typer.Context,
    slug: TenantArgument,
    json_output: JsonOption = False,
) -> None:
    """Show a tenant, its subscription row, its default card and its recent audit entries."""
    from billing_cli.cli import render
    from billing_cli.cli.tenants_credit_cmd import billing_of, render_billing
    from billing_cli.services.tenants import desk as tenant_desk

    runtime = runtime_of(ctx)
    detail = tenant_desk.show_tenant(
        runtime.database(), lambda: runtime.gateway(dry_run=False), slug=slug
    )
    billing = billing_of(ctx, slug)  # discount and balance, from Stripe
    if json_output:
        render.emit_json({**detail, "billing": billing})
        return
    render.key_values(f"Tenant {slug}", detail["tenant"])
    if detail["subscription"]:
        render.key_values("Subscription", detail["subscription"])
    else:
        render.note("no subscription")
    card = detail["default_card"]  # data, so on stdout: `tenants show x | grep card` finds it
    if card:
        render.out().print(
            render.plain(
                f"default card: {card['brand']} ending {card['last4']}, expires {card['expires']}"
            )
        )
    elif detail.get("default_card_error"):
        render.note(f"default card: unknown ({detail['default_card_error']})")
    render_billing(billing)
    render.table(
        "Recent audit entries",
        ("at", "operator", "command", "outcome"),
        ((a["at"], a["operator"], a["command"], a["outcome"]) for a in detail["audit"]),
        empty="no audit entries",
    )


@app.command("suspend")
def suspend(
    ctx: typer.Context,
    slug: TenantArgument,
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            help="Why; internal: kept in the audit trail, never sent to the customer.",
        ),
    ],
    customer_message: Annotated[
        str | None,
        typer.Option(
            "--customer-message",
            help="What the customer's suspension e-mail says (one line, at most 500 "
            "characters); without it the e-mail is neutral.",
        ),
    ] = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Suspend a tenant by hand (only a person can reactivate it)."""
    from billing_cli.cli import render
    from billing_cli.services.tenants import rules as tenants

    db, invocation = runtime_of(ctx).begin_change(
        ctx, what=f"suspend tenant {slug}", dry_run=dry_run, yes=yes
    )
    result = tenants.suspend_tenant(
        db, invocation=invocation, slug=slug, reason=reason, customer_message=customer_message
    )
    render.change(result, json_output=json_output)


@app.command("reactivate")
def reactivate(
    ctx: typer.Context,
    slug: TenantArgument,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why; kept in the audit trail.")
    ] = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Lift a tenant's suspension, whoever made it."""
    from billing_cli.cli import render
    from billing_cli.services.tenants import rules as tenants

    db, invocation = runtime_of(ctx).begin_change(
        ctx, what=f"reactivate tenant {slug}", dry_run=dry_run, yes=yes
    )
    result = tenants.reactivate_tenant(db, invocation=invocation, slug=slug)
    render.change(result, json_output=json_output)


@app.command("remove")
def remove(
    ctx: typer.Context,
    slug: TenantArgument,
    dry_run: DryRunOption = False,
    yes: TypedYesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Remove a tenant: cancel its subscription, delete its Stripe customer and its rows.

    Asks the operator to type the slug unless --yes.
    """
    from billing_cli.cli import render
    from billing_cli.cli.confirm import confirm_typed
    from billing_cli.services.tenants import offboarding

    what = f"remove tenant {slug} and its Stripe customer"
    confirmed = confirm_typed(slug, what=what, yes=yes, dry_run=dry_run)
    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=what, dry_run=dry_run, yes=confirmed
    )
    result = offboarding.remove_tenant(
        db,
        gateway,
        invocation=invocation,
        slug=slug,
    )
    render.change(result, json_output=json_output)


@app.command("update")
def update(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="The tenant's slug.")],
    name: Annotated[str | None, typer.Option("--name", help="New display name.")] = None,
    email: Annotated[str | None, typer.Option("--email", help="New billing e-mail.")] = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Change a tenant's name or e-mail, here and on its Stripe customer."""
    from billing_cli.cli import render
    from billing_cli.services.tenants import desk as tenant_desk

    runtime = runtime_of(ctx)
    db, invocation = runtime.begin_change(
        ctx, what=f"update tenant {slug}", dry_run=dry_run, yes=yes
    )
    result = tenant_desk.update_tenant(
        db,
        lambda: runtime.gateway(dry_run=dry_run),
        invocation=invocation,
        slug=slug,
        name=name,
        email=email,
    )
    render.change(result, json_output=json_output)


def _register_credit() -> None:
    from billing_cli.cli import tenants_credit_cmd

    tenants_credit_cmd.register(app)


_register_credit()
