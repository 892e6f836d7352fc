"""``billing webhooks``: Stripe webhook events: the ledger, replay, and the live endpoint.

``setup`` and ``endpoints`` manage the Stripe endpoint (:mod:`.webhooks_setup_cmd`);
``list`` and ``show`` read the ledger (no Stripe needed); ``replay`` runs events from Stripe's
Events API or from a file through the same engine as the endpoint; ``retry-failed`` runs the
ledger's failed events again. The endpoint itself (``serve``) lives in its own module.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from billing_cli.cli.options import DryRunOption, JsonOption, TenantFilter, YesOption
from billing_cli.cli.runtime import Runtime, runtime_of
from billing_cli.cli.webhooks_endpoints_cmd import app as endpoints_app
from billing_cli.cli.webhooks_serve_cmd import serve
from billing_cli.cli.webhooks_setup_cmd import setup

if TYPE_CHECKING:
    from billing_cli.services.webhooks import EventOutcome, WebhookEngine
    from billing_cli.services.webhooks.replay import Progress, ReplaySummary

app = typer.Typer(
    help="Stripe webhook events: the ledger, replay, and the live endpoint.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.command("serve")(serve)
app.command("setup")(setup)
app.add_typer(endpoints_app, name="endpoints")


def _event_ids(value: str | list[str] | None) -> str | list[str] | None:
    """Event ids are checked for form before any lookup or Stripe call (``ch_123`` is refused)."""
    from billing_cli.ids import check_stripe_id

    for event_id in [value] if isinstance(value, str) else value or ():
        check_stripe_id(event_id, prefix="evt")
    return value


class LedgerStatus(StrEnum):
    processed = "processed"
    failed = "failed"
    ignored = "ignored"
    skipped = "skipped"
    deferred = "deferred"


def _engine(runtime: Runtime) -> WebhookEngine:
    """The engine; with a Stripe key it reads a subscription to settle a same-second tie (through
    a recording gateway: reading is all it may do)."""
    from billing_cli.services.webhooks import WebhookEngine
    from billing_cli.services.webhooks.engine import lazy_fetch

    settings = runtime.settings()
    fetch = (
        lazy_fetch(lambda: runtime.gateway(dry_run=True)) if settings.stripe_secret_key else None
    )
    return WebhookEngine(
        runtime.database(),
        live_mode=settings.stripe_live_mode,
        max_failed_attempts=settings.max_failed_attempts,
        fetch=fetch,
        paused_access=settings.paused_access,
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        LedgerStatus | None, typer.Option("--status", help="Only events with this outcome.")
    ] = None,
    types: Annotated[
        list[str] | None, typer.Option("--type", help="Only this event type (repeatable).")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Created since a date or an age (48h, 7d).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
    tenant: TenantFilter = None,
    customer: Annotated[
        str | None, typer.Option("--customer", help="Only events about this customer (cus_...).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """List the ledger's events, newest first, with why one failed, was ignored or is deferred
    (parked until a tenant is linked to its customer)."""
    from billing_cli.cli import render
    from billing_cli.services.webhooks import ledger
    from billing_cli.timeparse import parse_since

    since_at = parse_since(since) if since else None
    rows = ledger.list_events(
        runtime_of(ctx).database(),
        status=status.value if status else None,
        types=tuple(types or ()),
        since=since_at,
        limit=limit,
        tenant_slug=tenant,
        customer_id=customer,
    )
    if json_output:
        render.emit_json(rows)
        return
    render.table(
        "Webhook events",
        ("created", "id", "type", "status", "attempts", "source", "reason / error"),
        (
            (e["created"], e["id"], e["type"], e["status"], e["attempts"], e["source"], e["error"])
            for e in rows
        ),
        empty="no events in the ledger",
    )


@app.command("show")
def show(
    ctx: typer.Context,
    event_id: Annotated[
        str, typer.Argument(help="The Stripe event id (evt_...).", callback=_event_ids)
    ],
    json_output: JsonOption = False,
) -> None:
    """Show one event: what processing did with it, and its payload."""
    from billing_cli.cli import render
    from billing_cli.services.webhooks import ledger

    event = ledger.show_event(runtime_of(ctx).database(), event_id=event_id)
    if json_output:
        render.emit_json(event)
        return
    payload = event.pop("payload")
    render.key_values(f"Event {event_id}", event)
    render.pretty_json(payload)


@app.command("replay")
def replay(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Events created since a date or an age (48h); max 30 days."),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Events created until a date or an age.")
    ] = None,
    types: Annotated[
        list[str] | None,
        typer.Option("--type", help="Only this type; wildcards like invoice.* (repeatable)."),
    ] = None,
    event_ids: Annotated[
        list[str] | None,
        typer.Option("--event", help="Only this event id (repeatable).", callback=_event_ids),
    ] = None,
    undelivered: Annotated[
        bool, typer.Option("--undelivered", help="Only events Stripe failed to deliver.")
    ] = False,
    from_file: Annotated[
        Path | None,
        typer.Option("--from-file", help="Replay a JSON array, JSON lines or one event instead."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Reprocess events the ledger already has.")
    ] = False,
    batch_size: Annotated[
        int,
        typer.Option(
            "--batch-size",
            metavar="N",
            min=1,
            help="Events per transaction (1: one at a time, as the live endpoint does).",
        ),
    ] = 500,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Replay events from Stripe's Events API (or a file) through the webhook engine."""
    from billing_cli.services.webhooks.replay import StripeSelection, run_replay
    from billing_cli.timeparse import parse_window

    runtime = runtime_of(ctx)
    since_at, until_at = parse_window(since, until)
    selection = StripeSelection(
        since=since_at,
        until=until_at,
        types=tuple(types or ()),
        event_ids=tuple(event_ids or ()),
        undelivered=undelivered,
    )
    engine = _engine(runtime)
    runtime.confirm("replay webhook events", yes=yes, dry_run=dry_run)
    with _progress("replaying") as progress:
        summary = run_replay(
            engine,
            from_file=from_file,
            selection=selection,
            gateway=lambda: runtime.gateway(dry_run=dry_run),
            force=force,
            dry_run=dry_run,
            progress=progress,
            stripe_key=bool(runtime.settings().stripe_secret_key),
            batch_size=batch_size,
        )
    _show_summary(summary, json_output=json_output)


@app.command("retry-failed")
def retry_failed(
    ctx: typer.Context,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Process the ledger's failed events again, oldest first."""
    from billing_cli.services.webhooks import replay as replay_service

    runtime = runtime_of(ctx)
    engine = _engine(runtime)
    runtime.confirm("retry failed webhook events", yes=yes, dry_run=dry_run)
    with _progress("retrying") as progress:
        summary = replay_service.retry_failed(engine, engine.db, dry_run=dry_run, progress=progress)
    _show_summary(summary, json_output=json_output)


@contextmanager
def _progress(verb: str) -> Iterator[Progress]:
    """A progress bar on stderr, fed by the service after each event."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from billing_cli.cli import render

    bar = Progress(
        TextColumn(f"{verb} events"),
        BarColumn(),
        MofNCompleteColumn(),
        console=render.err(),
        transient=True,
        disable=not render.err().is_terminal,  # no bar, nor its stray newline, in logs and pipes
    )
    task = bar.add_task(verb, total=None)

    def advance(done: int, total: int | None, _outcome: EventOutcome) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield advance


def _show_summary(summary: ReplaySummary, *, json_output: bool) -> None:
    from billing_cli.cli import render
    from billing_cli.text import plural

    if json_output:
        render.emit_json(summary.to_dict())
    else:
        if summary.dry_run:
            for outcome in summary.outcomes:
                _show_dry_run(outcome)
        title = "Replay (dry run)" if summary.dry_run else "Replay"
        render.table(title, ("status", "events"), summary.counts.items())
        rates = summary.rates()
        if rates and summary.total:
            speeds = (f"{value:,.0f} events/s {key.split('_')[0]}" for key, value in rates.items())
            render.note(f"{plural(summary.total, 'event')}: " + ", ".join(speeds))
        if summary.omitted:
            render.note(
                f"details of {plural(summary.omitted, 'more event')} left out (counted above); "
                + (
                    "a dry run writes no ledger: narrow it with --type or --since to see them"
                    if summary.dry_run
                    else "`billing webhooks list` shows the ledger"
                )
            )
        for outcome in summary.outcomes:
            if outcome.status == "failed":
                render.note(
                    render.plain(f"failed: {outcome.event_id} ({outcome.type}): {outcome.reason}")
                )
        for outcome in summary.needs_refresh:
            render.note(f"{outcome.event_id} ({outcome.type}): {outcome.reason}")
        if summary.counts["deferred"]:
            render.note(_deferred_note(summary.counts["deferred"], dry_run=summary.dry_run))
    if summary.failed:
        raise typer.Exit(1)


def _deferred_note(count: int, *, dry_run: bool) -> str:
    """Why events were parked; only a real run points to the ledger rows it wrote."""
    from billing_cli.text import plural

    if dry_run:
        return f"{plural(count, 'event')} would be deferred: their customer has no tenant yet"
    return (
        f"{plural(count, 'event')} deferred: their customer has no tenant yet; they apply when "
        "one is linked (`billing webhooks list --status deferred`)"
    )


def _show_dry_run(outcome: EventOutcome) -> None:
    """Per event: what it would change, tenant and subscription before -> after."""
    from rich.markup import escape

    from billing_cli.cli import render

    line = f"{outcome.event_id} {outcome.type}: would be {outcome.status}"
    if outcome.reason:
        line += f" ({outcome.reason})"
    render.out().print(escape(line))
    for change in outcome.changes:
        rows = [
            (change.target, key, before, after)
            for key, before, after in render.changed_fields(change.before, change.after)
        ]
        render.table(None, ("target", "field", "before", "after"), rows, empty="  no change")
