"""``billing subs migrate``: a plan's subscriptions on older prices moved to its current price.

Registered on the ``subs`` group by :func:`register`. Parses, calls
:func:`billing_cli.services.subscriptions.price_migration.migrate_plan`, renders: one row per
tenant, then the totals and the monthly recurring revenue before and after, on stdout; the
progress bar on stderr. Exit 1 when any tenant failed (each failure has its own line), 2 for a
usage error."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from billing_cli.cli.options import DryRunOption, JsonOption, YesOption
from billing_cli.cli.runtime import runtime_of
from billing_cli.cli.subs_adjust_cmd import Proration, billing_rules

if TYPE_CHECKING:
    from billing_cli.services.subscriptions.price_migration import MigrationReport


class At(StrEnum):
    now = "now"
    period_end = "period-end"


def migrate(
    ctx: typer.Context,
    plan: Annotated[
        str, typer.Option("--plan", metavar="SLUG", help="The plan whose subscriptions move.")
    ],
    tenant: Annotated[
        list[str] | None,
        typer.Option("--tenant", help="Only this tenant (repeatable; default: every tenant)."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", help="Move at most N tenants (by slug) this run.")
    ] = None,
    proration: Annotated[
        Proration | None,
        typer.Option(
            "--proration", help="How Stripe bills the change (default: create_prorations)."
        ),
    ] = None,
    at: Annotated[
        At,
        typer.Option(
            "--at",
            help="now, or period-end: the price changes now with proration none, so the "
            "current period stays as paid and the next invoice bills the new price (Stripe "
            "has no 'at period end' switch; no subscription schedule is made).",
        ),
    ] = At.now,
    rate: Annotated[
        float,
        typer.Option("--rate", help="Stripe requests per second (Stripe: 25 test, 100 live)."),
    ] = 20.0,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Move every live subscription kept on an older price of a plan to its current price.

    One journal intent per tenant, paced at --rate. Safe to re-run after an interruption:
    tenants already moved are skipped, an interrupted one is finished without a second write.
    Canceled subscriptions are never touched; a manual hold stays. Exit 1 when any failed.
    """
    from billing_cli.cli.progress import StderrProgress
    from billing_cli.services.subscriptions.price_migration import MigrateOptions, migrate_plan

    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what=f"move {plan}'s subscriptions to its current price", dry_run=dry_run, yes=yes
    )
    options = MigrateOptions(
        plan_slug=plan,
        tenants=tuple(tenant or ()),
        limit=limit,
        proration=proration.value if proration else None,
        at=at.value,
        rate=rate,
    )
    with StderrProgress() as progress:
        report = migrate_plan(
            db,
            gateway,
            invocation=invocation,
            options=options,
            rules=billing_rules(ctx),
            progress=progress,
        )
    _render(report, json_output=json_output)
    if report.failures:
        raise typer.Exit(1)


def _render(report: MigrationReport, *, json_output: bool) -> None:
    from billing_cli.cli import render
    from billing_cli.money import format_money
    from billing_cli.timeparse import iso

    if json_output:
        render.emit_json(report.to_dict())
        return
    data = report.to_dict()
    title = f"subs migrate {report.plan} -> {report.price} (at {report.at}, {report.proration})"
    render.table(
        title + (" (dry run: nothing was sent or saved)" if report.dry_run else ""),
        ("tenant", "outcome", "old", "new", "proration", "next invoice", "subscription"),
        (
            (
                row["tenant"],
                row["outcome"],
                row["old_amount"],
                row["new_amount"],
                format_money(move.preview.proration_amount, move.preview.currency)
                if move.preview
                else "",
                f"{format_money(move.preview.amount_due, move.preview.currency)} "
                f"{iso(move.preview.next_payment_attempt or move.preview.period_end) or ''}"
                if move.preview
                else "",
                row["subscription"],
            )
            for move, row in zip(report.moves, data["tenants"], strict=True)
        ),
        empty="no subscription on an older price",
    )
    moved = "would move" if report.dry_run else "moved"
    render.out().print(
        f"{moved} {data['moved']}, skipped {data['skipped']}, failed {data['failed']}; "
        f"monthly recurring revenue of those moved: {data['monthly_revenue_before'] or '-'} "
        f"-> {data['monthly_revenue_after'] or '-'}",
        markup=False,
    )
    for failure in report.failures:
        render.out().print(f"failed {failure.tenant}: {failure.message}", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``migrate`` to the ``subs`` group."""
    app.command("migrate")(migrate)
