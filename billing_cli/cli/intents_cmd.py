"""``billing intents``: the Stripe write journal, for finishing interrupted operations."""

from __future__ import annotations

from typing import Annotated

import typer

from billing_cli.cli.options import DryRunOption, JsonOption, YesOption
from billing_cli.cli.runtime import runtime_of

app = typer.Typer(
    help="The Stripe write journal: see and finish interrupted writes.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _intent_form(value: str) -> str:
    """A malformed intent id is refused before any lookup (exit 2)."""
    from billing_cli.ids import check_intent_id

    return check_intent_id(value)


IntentArgument = Annotated[
    str, typer.Argument(help="The intent's id (bi_...).", metavar="ID", callback=_intent_form)
]


@app.command("list")
def list_(
    ctx: typer.Context,
    open_only: Annotated[
        bool, typer.Option("--open", help="Only intents still pending or unknown.")
    ] = False,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=10_000, help="At most this many, newest first.")
    ] = 50,
    json_output: JsonOption = False,
) -> None:
    """List Stripe write intents, newest first."""
    from billing_cli.cli import render
    from billing_cli.services import intents

    rows = intents.list_intents(
        runtime_of(ctx).database(), open_only=open_only, tenant_slug=tenant, limit=limit
    )
    if json_output:
        render.emit_json(rows)
        return
    render.table(
        "Stripe intents",
        ("id", "created", "operation", "target", "status", "stripe object", "operator"),
        (
            (
                r["id"],
                r["created_at"],
                r["operation"],
                r["target"],
                r["status"],
                r["stripe_object"],
                r["operator"],
            )
            for r in rows
        ),
        empty="no open intents" if open_only else "no intents",
    )


@app.command("show")
def show(ctx: typer.Context, intent_id: IntentArgument, json_output: JsonOption = False) -> None:
    """Show one intent: its parameters, recovery points, status and error."""
    from billing_cli.cli import render
    from billing_cli.services import intents

    view = intents.show_intent(runtime_of(ctx).database(), intent_id=intent_id)
    if json_output:
        render.emit_json(view)
        return
    render.key_values(f"Intent {intent_id}", view)


@app.command("resume")
def resume(
    ctx: typer.Context,
    intent_id: IntentArgument,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Finish an interrupted write: re-run its command with the recorded parameters.

    The same idempotency keys are sent, so Stripe returns what it did the first time
    instead of doing it again.
    """
    from billing_cli.cli import render
    from billing_cli.services import intents

    runtime = runtime_of(ctx)
    db, gateway, invocation = runtime.begin_stripe_change(
        ctx, what=f"resume intent {intent_id}", dry_run=dry_run, yes=yes
    )
    result = intents.resume_intent(
        db,
        gateway,
        invocation=invocation,
        intent_id=intent_id,
        max_failed_attempts=runtime.settings().max_failed_attempts,
    )
    render.change(result, json_output=json_output)


@app.command("abandon")
def abandon(
    ctx: typer.Context,
    intent_id: IntentArgument,
    reason: Annotated[
        str, typer.Option("--reason", help="What you checked in Stripe (kept in the audit).")
    ],
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Close an open intent without calling Stripe, after checking Stripe by hand."""
    from billing_cli.cli import render
    from billing_cli.services import intents

    db, invocation = runtime_of(ctx).begin_change(
        ctx, what=f"abandon intent {intent_id}", dry_run=dry_run, yes=yes
    )
    result = intents.abandon_intent(db, invocation=invocation, intent_id=intent_id, reason=reason)
    render.change(result, json_output=json_output)
