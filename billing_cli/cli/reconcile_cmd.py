"""``billing reconcile``: every tenant compared with Stripe; drift reported, healed with --fix.

Parses, calls :func:`billing_cli.services.reconcile.compare.reconcile`, renders. Exit code 0 when no
drift was found, 1 when some was (also when ``--fix`` healed it: the next run exits 0), 2 for a
usage error. Without ``--cancel-orphans`` the gateway is a ``DryRunGateway``, so the command can
read Stripe but never write to it. The progress bar goes to stderr, only at a terminal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from billing_cli.cli.options import DryRunOption, JsonOption
from billing_cli.cli.runtime import runtime_of

if TYPE_CHECKING:
    from billing_cli.services.reconcile.compare import ReconcileReport, Unwanted


def reconcile(
    ctx: typer.Context,
    tenant: Annotated[
        list[str] | None,
        typer.Option("--tenant", help="Only this tenant (repeatable; default: every tenant)."),
    ] = None,
    fix: Annotated[
        bool, typer.Option("--fix", help="Make the local side follow Stripe (never writes Stripe).")
    ] = False,
    cancel_orphans: Annotated[
        bool,
        typer.Option(
            "--cancel-orphans",
            help="Cancel orphan and extra live subscriptions in Stripe, after a typed yes.",
        ),
    ] = False,
    dry_run: DryRunOption = False,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            "-y",
            help="Skip typing yes before --cancel-orphans cancels subscriptions in Stripe "
            "(asked in every mode, live or test) and the live-mode question.",
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Compare every tenant with Stripe (bulk reads); exit 1 when drift is found."""
    from billing_cli.cli import render
    from billing_cli.cli.progress import StderrProgress
    from billing_cli.services.reconcile import compare as service

    runtime = runtime_of(ctx)
    db = runtime.database()
    if fix or cancel_orphans:
        runtime.confirm("reconcile local state with Stripe", yes=yes, dry_run=dry_run)
    gateway = runtime.gateway(dry_run=dry_run or not cancel_orphans)
    with StderrProgress() as progress:
        report = service.reconcile(
            db,
            gateway,
            invocation=runtime.invocation(ctx, dry_run=dry_run),
            tenants=tenant or (),
            fix=fix,
            cancel_orphans=cancel_orphans,
            confirm=(lambda _: True) if yes else _typed_yes,
            max_failed_attempts=runtime.settings().max_failed_attempts,
            progress=progress,
        )
    if json_output:
        render.emit_json(report.to_dict())
    else:
        _render(report)
    if report.drift_found:
        raise typer.Exit(1)


def _typed_yes(unwanted: list[Unwanted]) -> bool:
    """List what would be cancelled on stderr and ask for a typed ``yes``."""
    from billing_cli.cli import render

    render.note(f"about to cancel {len(unwanted)} subscription(s) in Stripe, now:")
    for item in unwanted:
        sub = item.subscription
        render.note(f"  {sub.id} ({sub.status}, customer {sub.customer_id}): {item.why}")
    try:
        answer = typer.prompt("Type yes to cancel them", default="", err=True)
    except typer.Abort:
        from billing_cli.cli.confirm import end_prompt_line

        end_prompt_line()
        return False
    return str(answer).strip().lower() == "yes"


def _render(report: ReconcileReport) -> None:
    from billing_cli.cli import render

    prefix = "[dry run] " if report.dry_run else ""
    rows = [
        (result.tenant, drift.kind, drift.detail, _action(report, result.remaining, drift.kind))
        for result in report.tenants
        for drift in result.drift
    ]
    render.table(
        f"{prefix}Drift", ("tenant", "kind", "detail", "action"), rows, empty="no tenant drift"
    )
    for result in report.tenants:
        if any(d.kind == "double_billing" for d in result.drift):
            render.out().print(f"  {result.tenant}: {result.choice}", markup=False)
    if report.orphans:
        render.table(
            f"{prefix}Orphan subscriptions",
            ("subscription", "customer", "tagged tenant", "status"),
            (
                (o.subscription.id, o.subscription.customer_id, o.tenant, o.subscription.status)
                for o in report.orphans
            ),
        )
    if report.canceled:
        verb = "would cancel" if report.dry_run else "canceled"
        for item in report.canceled:
            line = f"{verb} {item['subscription']} ({item['kind']}, tenant {item['tenant']})"
            render.out().print(line, markup=False)
    if report.plans:
        render.table(
            "Plan catalogue drift (run `billing plans sync`)",
            ("plan", "state", "differences"),
            ((p["plan"], p["state"], "; ".join(p["differences"])) for p in report.plans),
        )
    _render_health(report.health)
    _render_summary(report)


def _action(report: ReconcileReport, remaining: list[Any], kind: str) -> str:
    still = any(d.kind == kind for d in remaining)
    if kind == "double_billing":
        if not still:
            return "would cancel extras" if report.dry_run else "extras canceled"
        return "needs --cancel-orphans"
    if not report.fix:
        return "--fix heals"
    if still:
        return "not healed"
    return "would heal" if report.dry_run else "healed"


def _render_health(health: dict[str, Any]) -> None:
    from billing_cli.cli import render

    trials = ", ".join(f"{t['tenant']} ({t['trial_end']})" for t in health["trials_ending_7d"])
    render.key_values(
        "Health",
        {
            "tenants": health["tenants"],
            "by subscription status": ", ".join(
                f"{status} {count}" for status, count in health["by_status"].items()
            ),
            "past_due": ", ".join(health["past_due"]) or "none",
            "incomplete": ", ".join(health["incomplete"]) or "none",
            "trials ending within 7 days": trials or "none",
            "suspended": ", ".join(f"by {k} {v}" for k, v in health["suspended"].items()),
            "ledger failed / deferred": (
                f"{health['ledger']['failed']} / {health['ledger']['deferred']}"
            ),
            "unfinished Stripe writes": health["open_intents"] or "none",
        },
    )


def _render_summary(report: ReconcileReport) -> None:
    from billing_cli.cli import render

    for write in report.stripe_writes:
        render.out().print(
            f"  would send Stripe {write['operation']} {write['target']}", markup=False
        )
    if not report.drift_found:
        render.out().print(
            f"no drift: {report.tenants_checked} tenant(s) match Stripe", markup=False
        )
        return
    counts = ", ".join(f"{kind} {n}" for kind, n in report.counts().items())
    steps = "; ".join(
        f"`{command}` heals {', '.join(kinds)}" for command, kinds in report.next_steps().items()
    )
    render.out().print(
        f"drift found ({counts}) in {len(report.tenants)} of {report.tenants_checked} "
        "tenant(s)" + (f"; {steps}" if steps else ""),
        markup=False,
    )
