"""``billing audit list``: the trail of every real change."""

from __future__ import annotations

from typing import Annotated

import typer

from billing_cli.cli.options import JsonOption, TenantFilter
from billing_cli.cli.runtime import runtime_of

app = typer.Typer(help="The audit trail.", no_args_is_help=True, rich_markup_mode=None)


@app.command("list")
def list_(
    ctx: typer.Context,
    tenant: TenantFilter = None,
    since: Annotated[
        str | None, typer.Option("--since", help="A date (2026-11-01) or an age (48h, 7d).")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=10_000, help="At most this many, newest first.")
    ] = 50,
    operator: Annotated[
        str | None, typer.Option("--operator", help="Only entries by this operator.")
    ] = None,
    action: Annotated[
        str | None,
        typer.Option("--action", help="Only this command ('payments refund') or verb ('refund')."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """List audit entries, newest first."""
    from billing_cli.cli import render
    from billing_cli.services import audit
    from billing_cli.timeparse import parse_since

    since_at = parse_since(since) if since else None
    entries = audit.list_entries(
        runtime_of(ctx).database(),
        tenant_slug=tenant,
        since=since_at,
        limit=limit,
        operator=operator,
        action=action,
    )
    if json_output:
        render.emit_json(entries)
        return
    render.table(
        "Audit entries",
        ("id", "at", "operator", "command", "target", "outcome"),
        (
            (e["id"], e["at"], e["operator"], e["command"], e["target"], e["outcome"])
            for e in entries
        ),
        empty="no audit entries",
    )
