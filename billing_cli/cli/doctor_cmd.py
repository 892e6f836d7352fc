"""``billing doctor``: the troubleshooting checklist, one line per check, exit 1 on a failure."""

from __future__ import annotations

from typing import Annotated

import typer

from billing_cli.cli.options import JsonOption
from billing_cli.cli.runtime import runtime_of

_LABELS = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
_STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def doctor(
    ctx: typer.Context,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="Also check this tenant: link, subscription, suspension."),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url", help="The webhook endpoint URL to check (default: BILLING_WEBHOOK_URL)."
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Check configuration, database, Stripe, the webhook endpoint and deliveries; say the fix."""
    from rich.markup import escape

    from billing_cli.cli import render
    from billing_cli.services.doctor import run_doctor

    runtime = runtime_of(ctx)
    report = run_doctor(
        runtime.settings(),
        lambda: runtime.database(check_ready=False),
        lambda: runtime.gateway(dry_run=False),
        url=url,
        tenant_slug=tenant,
    )
    if json_output:
        render.emit_json(report.to_dict())
    else:
        for check in report.checks:
            fix = f"  -> fix: {check.fix}" if check.fix else ""
            style = _STYLES[check.status]
            render.out().print(
                f"[{style}]{_LABELS[check.status]}[/{style}] "
                f"{escape(check.name)}: {escape(check.detail)}{escape(fix)}",
            )
    if report.failed:
        raise typer.Exit(1)
