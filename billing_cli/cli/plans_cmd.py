"""``billing plans``: subscription plans and their Stripe Products and Prices.

``add``/``update``/``deactivate``/``activate``/``remove`` and ``apply`` (a TOML file, see
:mod:`.plans_file_cmd`) change local rows only; ``sync`` pushes them to
Stripe; ``list`` shows both sides. Each command parses, calls one service, and renders; the
progress bar of ``sync`` goes to stderr and only when stderr is a terminal.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from billing_cli.cli import plans_file_cmd
from billing_cli.cli.options import DryRunOption, JsonOption, PlanArgument, YesOption
from billing_cli.cli.runtime import runtime_of

if TYPE_CHECKING:
    pass


app = typer.Typer(
    help="Subscription plans and their Stripe Products and Prices.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


app.command("export")(plans_file_cmd.export)
app.command("apply")(plans_file_cmd.apply)


class PlanInterval(StrEnum):
    month = "month"
    year = "year"


NameOption = Annotated[str | None, typer.Option("--name", help="Display name.")]
AmountOption = Annotated[
    str | None, typer.Option("--amount", help="Price in major units, e.g. 29.00.")
]
CurrencyOption = Annotated[
    str | None, typer.Option("--currency", help="Three-letter ISO code, e.g. usd.")
]
IntervalOption = Annotated[
    PlanInterval | None, typer.Option("--interval", help="Billing interval.")
]
CountOption = Annotated[
    int | None, typer.Option("--interval-count", help="Bill every N intervals (default 1).")
]
TrialOption = Annotated[
    int | None, typer.Option("--trial-days", help="Trial length for new subscriptions.")
]


@app.command("add")
def add(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(help="Unique short name, e.g. pro.")],
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    amount: Annotated[str, typer.Option("--amount", help="Price in major units, e.g. 29.00.")],
    currency: Annotated[str, typer.Option("--currency", help="Three-letter ISO code, e.g. usd.")],
    interval: Annotated[PlanInterval, typer.Option("--interval", help="Billing interval.")],
    interval_count: Annotated[
        int, typer.Option("--interval-count", help="Bill every N intervals.")
    ] = 1,
    trial_days: Annotated[
        int, typer.Option("--trial-days", help="Trial length for new subscriptions.")
    ] = 0,
    per_seat: Annotated[
        bool, typer.Option("--per-seat", help="Priced per seat: `subs quantity` sets seats.")
    ] = False,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Add a plan locally; `billing plans sync` creates it in Stripe."""
    from billing_cli.cli import render
    from billing_cli.services.catalog import plans

    db, invocation = runtime_of(ctx).begin_change(
        ctx, what=f"add plan {slug}", dry_run=dry_run, yes=yes
    )
    result = plans.add_plan(
        db,
        invocation=invocation,
        slug=slug,
        name=name,
        amount=amount,
        currency=currency,
        interval=interval.value,
        interval_count=interval_count,
        trial_days=trial_days,
        per_seat=per_seat,
    )
    render.change(result, json_output=json_output)


@app.command("update")
def update(
    ctx: typer.Context,
    slug: PlanArgument,
    name: NameOption = None,
    amount: AmountOption = None,
    currency: CurrencyOption = None,
    interval: IntervalOption = None,
    interval_count: CountOption = None,
    trial_days: TrialOption = None,
    per_seat: Annotated[
        bool | None,
        typer.Option("--per-seat/--not-per-seat", help="Whether the plan is priced per seat."),
    ] = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Change a plan locally; a new amount, currency or interval becomes a new Price on sync."""
    from billing_cli.cli import render
    from billing_cli.services.catalog import plans

    db, invocation = runtime_of(ctx).begin_change(
        ctx, what=f"update plan {slug}", dry_run=dry_run, yes=yes
    )
    result = plans.update_plan(
        db,
        invocation=invocation,
        slug=slug,
        name=name,
        amount=amount,
        currency=currency,
        interval=interval.value if interval else None,
        interval_count=interval_count,
        trial_days=trial_days,
        per_seat=per_seat,
    )
    render.change(result, json_output=json_output)


def _set_active(
    ctx: typer.Context, slug: str, *, active: bool, dry_run: bool, yes: bool, json_output: bool
) -> None:
    from billing_cli.cli import render
    from billing_cli.services.catalog import plans

    verb = "activate" if active else "deactivate"
    db, invocation = runtime_of(ctx).begin_change(
        ctx, what=f"{verb} plan {slug}", dry_run=dry_run, yes=yes
    )
    result = plans.set_plan_active(db, invocation=invocation, slug=slug, active=active)
    render.change(result, json_output=json_output)


@app.command("deactivate")
def deactivate(
    ctx: typer.Context,
    slug: PlanArgument,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Retire a plan; `plans sync --archive-stale` then archives its Price and Product."""
    _set_active(ctx, slug, active=False, dry_run=dry_run, yes=yes, json_output=json_output)


@app.command("activate")
def activate(
    ctx: typer.Context,
    slug: PlanArgument,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Bring a retired plan back; `plans sync` then revives it in Stripe."""
    _set_active(ctx, slug, active=True, dry_run=dry_run, yes=yes, json_output=json_output)


@app.command("remove")
def remove(
    ctx: typer.Context,
    slug: PlanArgument,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Delete a plan that was never synced and no subscription names (else deactivate it)."""
    from billing_cli.cli import render
    from billing_cli.services.catalog import plans

    db, invocation = runtime_of(ctx).begin_change(
        ctx, what=f"remove plan {slug}", dry_run=dry_run, yes=yes
    )
    render.change(plans.remove_plan(db, invocation=invocation, slug=slug), json_output=json_output)


@app.command("list")
def list_(
    ctx: typer.Context,
    local: Annotated[
        bool, typer.Option("--local", help="Only the local rows; do not read Stripe.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Local plans beside their Stripe Product and Price: in sync, missing, drifted, ..."""
    from billing_cli.cli import render
    from billing_cli.services.catalog import plans

    runtime = runtime_of(ctx)
    db = runtime.database()
    # A DryRunGateway around the real one: listing can never write, whatever happens below.
    gateway = None if local else runtime.gateway(dry_run=True)
    rows = plans.list_plans(db, gateway)
    if json_output:
        render.emit_json(rows)
        return
    render.table(
        "Plans",
        (
            "slug",
            "name",
            "price",
            "every",
            "trial days",
            "per seat",
            "active",
            "state",
            "Stripe product",
            "Stripe price",
        ),
        (_list_row(row) for row in rows),
        empty="no plans; add one with `billing plans add`",
    )


def _list_row(row: dict[str, Any]) -> tuple[Any, ...]:
    every = (
        row["interval"]
        if row["interval_count"] == 1
        else (f"{row['interval_count']} {row['interval']}s")
    )
    stripe = row["stripe"] or {}
    state = row["state"]
    if row["differences"]:
        state += ": " + "; ".join(row["differences"])
    return (
        row["slug"],
        row["name"],
        row["price"],
        every,
        row["trial_days"],
        row["per_seat"],
        row["active"],
        state,
        stripe.get("product_id") or row["stripe_product_id"],
        stripe.get("price_id") or row["stripe_price_id"],
    )


@app.command("sync")
def sync(
    ctx: typer.Context,
    archive_stale: Annotated[
        bool,
        typer.Option(
            "--archive-stale", help="Archive the Stripe Price and Product of inactive plans."
        ),
    ] = False,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Create, adopt, update or archive Stripe Products and Prices to match the plans."""
    from billing_cli.cli import render
    from billing_cli.services.catalog import plan_sync

    db, gateway, invocation = runtime_of(ctx).begin_stripe_change(
        ctx, what="sync plans to Stripe", dry_run=dry_run, yes=yes
    )
    from billing_cli.cli.progress import StderrProgress

    with StderrProgress() as progress:
        report = plan_sync.sync_plans(
            db,
            gateway,
            invocation=invocation,
            archive_stale=archive_stale,
            progress=progress,
        )
    if json_output:
        render.emit_json(report.to_dict())
        return
    from billing_cli.cli.sync_report import render_report

    render_report(report)
