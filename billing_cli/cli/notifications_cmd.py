"""``billing notifications``: The notification outbox."""

from __future__ import annotations

from typing import Annotated

import typer

from billing_cli.cli.options import JsonOption, TenantFilter
from billing_cli.cli.runtime import runtime_of

app = typer.Typer(help="The notification outbox.", no_args_is_help=True, rich_markup_mode=None)

KINDS = ("trial_will_end", "upcoming_invoice", "payment_failed", "suspended", "reactivated")


@app.command("list")
def list_(
    ctx: typer.Context,
    tenant: TenantFilter = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help=f"Only this kind ({', '.join(KINDS)}).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 100,
    json_output: JsonOption = False,
) -> None:
    """List notifications waiting in (or sent from) the outbox, newest first."""
    from billing_cli.cli import render
    from billing_cli.services.webhooks import ledger

    rows = ledger.list_notifications(
        runtime_of(ctx).database(), tenant_slug=tenant, kind=kind, limit=limit
    )
    if not rows and kind is not None and kind not in KINDS:
        from billing_cli.errors import UsageError

        raise UsageError(f"no notification kind {kind!r}; the kinds are {', '.join(KINDS)}")
    if json_output:
        render.emit_json(rows)
        return
    render.table(
        "Notifications",
        ("created", "tenant", "kind", "sent", "payload"),
        ((n["created_at"], n["tenant"], n["kind"], n["sent_at"], n["payload"]) for n in rows),
        empty="no notifications",
    )
