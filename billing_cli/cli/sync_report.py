"""The table ``plans sync`` prints, and its dry run's held-back writes; ``plans apply --sync``
prints the same."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from billing_cli.services.catalog.plan_sync import SyncReport


def render_report(report: SyncReport) -> None:
    from billing_cli.cli import render

    render.table(
        "Plans sync" + (" (dry run: nothing was sent or saved)" if report.dry_run else ""),
        ("plan", "action", "Stripe product", "Stripe price", "details"),
        (
            (
                r.slug,
                r.action,
                _moved(r.before["stripe_product_id"], r.after["stripe_product_id"]),
                _moved(r.before["stripe_price_id"], r.after["stripe_price_id"]),
                "; ".join(r.steps),
            )
            for r in report.plans
        ),
        empty="no plans; add one with `billing plans add`",
    )
    counts = ", ".join(f"{n} {action}" for action, n in report.counts().items() if n)
    prefix = "[dry run] would make" if report.dry_run else "made"
    render.out().print(
        f"{prefix} {report.stripe_writes} Stripe writes; {counts or 'no plans'}", markup=False
    )
    if report.dry_run:
        _render_planned(report)


def _render_planned(report: SyncReport) -> None:
    """Every Stripe write and database change the dry run held back."""
    from billing_cli.cli import render

    for result in report.plans:
        for write in result.stripe_writes:
            params = ", ".join(f"{k}={v!r}" for k, v in write["params"].items())
            line = f"  would send Stripe {write['operation']} {write['target']}: {params}"
            render.out().print(line, markup=False)
        for column, before in result.before.items():
            if before != result.after[column]:
                line = (
                    f"  would set plan {result.slug} {column}: {before} -> {result.after[column]}"
                )
                render.out().print(line, markup=False)
        if result.changed:
            render.out().print(
                f"  would record an audit entry for plan:{result.slug}", markup=False
            )


def _moved(before: str | None, after: str | None) -> str:
    if before == after:
        return after or ""
    return f"{before or '-'} -> {after or '-'}"
