"""``billing notifications``: the notification outbox, and sending it by e-mail."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from billing_cli.cli.options import DryRunOption, JsonOption, TenantFilter, YesOption
from billing_cli.cli.runtime import runtime_of

if TYPE_CHECKING:
    from billing_cli.config import Settings
    from billing_cli.mail.smtp import Mailer
    from billing_cli.models import Invocation
    from billing_cli.repository import Database
    from billing_cli.services.notify import SendReport

app = typer.Typer(help="The notification outbox.", no_args_is_help=True, rich_markup_mode=None)

KINDS = ("trial_will_end", "upcoming_invoice", "payment_failed", "suspended", "reactivated")


class State(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"


@app.command("list")
def list_(
    ctx: typer.Context,
    tenant: TenantFilter = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help=f"Only this kind ({', '.join(KINDS)}).")
    ] = None,
    state: Annotated[
        State | None,
        typer.Option("--state", help="Only pending (to send or retry), sent, or failed."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 100,
    json_output: JsonOption = False,
) -> None:
    """List the outbox, newest first: pending, sent and failed messages."""
    from billing_cli.cli import render
    from billing_cli.services.webhooks import ledger

    rows = ledger.list_notifications(
        runtime_of(ctx).database(),
        tenant_slug=tenant,
        kind=kind,
        state=state.value if state else None,
        limit=limit,
    )
    if not rows and kind is not None and kind not in KINDS:
        from billing_cli.errors import UsageError

        raise UsageError(f"no notification kind {kind!r}; the kinds are {', '.join(KINDS)}")
    if json_output:
        render.emit_json(rows)
        return
    render.table(
        "Notifications",
        ("id", "created", "tenant", "kind", "state", "tries", "sent / next try", "last error"),
        (
            (
                n["id"],
                n["created_at"],
                n["tenant"],
                n["kind"],
                n["state"],
                n["attempts"],
                n["sent_at"] or n["next_attempt_at"] or "",
                n["last_error"] or "",
            )
            for n in rows
        ),
        empty="no notifications",
    )


@app.command("send")
def send(
    ctx: typer.Context,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=10_000, help="Send at most this many.")
    ] = 100,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """E-mail the pending notifications that are due, through BILLING_SMTP_URL.

    A message is marked sent only once the server accepted it; a failure keeps it pending with
    its attempts and last error and a later run retries it (backoff 5 min, doubling, at most
    6 h; given up after BILLING_NOTIFY_MAX_ATTEMPTS). Exit 1 when any message was not sent.
    Run it from cron, e.g. every 5 minutes.
    """
    from billing_cli.cli import render
    from billing_cli.mail.smtp import SmtpMailer, SmtpTarget
    from billing_cli.services import notify

    runtime = runtime_of(ctx)
    settings = runtime.settings()
    db, invocation = runtime.begin_change(
        ctx, what="send pending notifications", dry_run=dry_run, yes=yes
    )
    if dry_run:
        mailer: Mailer = notify.RecordingMailer()
        report = _send(db, mailer, invocation, settings, limit)
    else:
        with SmtpMailer(SmtpTarget.from_url(settings.smtp_url)) as smtp:
            report = _send(db, smtp, invocation, settings, limit)
    rows = [d.to_dict() for d in report.deliveries]
    if json_output:
        render.emit_json({"deliveries": rows, "stopped": report.stopped or None})
    else:
        render.table(
            "Notifications sent" if not dry_run else "Notifications (dry run: none sent)",
            ("id", "tenant", "kind", "to", "subject", "result", "error"),
            (
                (r["id"], r["tenant"], r["kind"], r["to"], r["subject"], r["result"], r["error"])
                for r in rows
            ),
            empty="no notifications due",
        )
    if report.stopped:
        _error_line(f"stopped: {report.stopped}")
    if report.unsent:
        _error_line(
            f"{report.unsent} of {len(rows)} notification(s) not sent; "
            "pending ones are retried by a later run"
        )
        raise typer.Exit(1)


def _send(
    db: Database, mailer: Mailer, invocation: Invocation, settings: Settings, limit: int
) -> SendReport:
    from billing_cli.services import notify

    return notify.send_notifications(
        db,
        mailer,
        invocation=invocation,
        mail_from=settings.mail_from,
        max_attempts=settings.notify_max_attempts,
        max_failed_attempts=settings.max_failed_attempts,
        limit=limit,
    )


def _error_line(line: str) -> None:
    sys.stderr.write(f"Error: {' '.join(line.split())}\n")
    sys.stderr.flush()
