"""``billing notifications``: the notification outbox, and sending it by e-mail."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from billing_cli.cli.options import DryRunOption, JsonOption, TenantFilter, YesOption
from billing_cli.cli.runtime import runtime_of

if TYPE_CHECKING:
    from billing_cli.config import Settings
    from billing_cli.mail.smtp import Mailer
    from billing_cli.models import Invocation
    from billing_cli.repository import Database
    from billing_cli.services.observe.notices import Composer
    from billing_cli.services.observe.notify import SendReport

app = typer.Typer(help="The notification outbox.", no_args_is_help=True, rich_markup_mode=None)

KINDS = ("trial_will_end", "upcoming_invoice", "payment_failed", "suspended", "reactivated")
# (kept literal: `--help` must not import the mail templates and Jinja2)


class State(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"
    withdrawn = "withdrawn"


NotificationId = Annotated[
    int, typer.Argument(help="The notification's id (`notifications list`).")
]


@app.command("list")
def list_(
    ctx: typer.Context,
    tenant: TenantFilter = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help=f"Only this kind ({', '.join(KINDS)}).")
    ] = None,
    state: Annotated[
        State | None,
        typer.Option(
            "--state", help="Only pending (to send or retry), sent, failed, or withdrawn."
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 100,
    json_output: JsonOption = False,
) -> None:
    """List the outbox, newest first: pending, sent, failed and withdrawn messages.

    A pending message shows the verdict `send` would reach now ("will send", or "will withdraw"
    and why); a withdrawn one shows its reason."""
    from billing_cli.cli import render
    from billing_cli.services.observe import notices

    rows = notices.list_notices(
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
        (
            "id",
            "created",
            "tenant",
            "kind",
            "state",
            "tries",
            "sent / next try",
            "verdict",
            "last error",
        ),
        (
            (
                n["id"],
                n["created_at"],
                n["tenant"],
                n["kind"],
                n["state"],
                n["attempts"],
                n["sent_at"] or n["next_attempt_at"] or n["withdrawn_at"] or "",
                n["verdict"] or "",
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
    Each message is re-checked against the tenant's state first: one that is no longer true is
    withdrawn with its reason, not sent. --dry-run prints each message it would send.
    Run it from cron, e.g. every 5 minutes.
    """
    from billing_cli.cli import render
    from billing_cli.mail.smtp import SmtpMailer, SmtpTarget
    from billing_cli.services.observe import notify

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
                (
                    r["id"],
                    r["tenant"],
                    r["kind"],
                    r["to"],
                    r["subject"],
                    r["result"],
                    r["error"] or r["withdrawn_reason"],
                )
                for r in rows
            ),
            empty="no notifications due",
        )
        if dry_run:
            _print_messages(rows)
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
    from billing_cli.services.observe import notify

    return notify.send_notifications(
        db,
        mailer,
        invocation=invocation,
        mail_from=settings.mail_from,
        max_attempts=settings.notify_max_attempts,
        max_failed_attempts=settings.max_failed_attempts,
        limit=limit,
        composer=_composer(settings),
    )


def _composer(settings: Settings) -> Composer:
    from billing_cli.mail.templates import Templates
    from billing_cli.services.observe.notices import Composer

    return Composer(
        mail_from=settings.mail_from,
        max_failed_attempts=settings.max_failed_attempts,
        templates=Templates(settings.mail_templates or None),
    )


def _print_messages(rows: list[dict[str, Any]]) -> None:
    """Each message as its recipient would read it (the dry run's preview)."""

    for row in rows:
        if row.get("body") is None:
            continue
        _print_lines(
            f"\n--- notification {row['id']}\nTo: {row['to']}\nSubject: {row['subject']}\n\n"
            + row["body"]
        )


def _print_lines(text: str) -> None:
    """Print a message line by line, each made safe for the terminal (no markup, no control
    characters), its line breaks kept; a line wider than the terminal wraps at spaces."""
    from billing_cli.cli import render

    for line in text.replace("\r\n", "\n").rstrip("\n").split("\n"):
        render.out().print(render.plain(line))


@app.command("show")
def show(
    ctx: typer.Context, notification_id: NotificationId, json_output: JsonOption = False
) -> None:
    """Show the exact message a notification sends (or sent): recipient, subject and body,
    rendered now, with the verdict a send would reach."""
    from billing_cli.cli import render
    from billing_cli.services.observe import notices

    runtime = runtime_of(ctx)
    shown = notices.show_notice(
        runtime.database(),
        notification_id=notification_id,
        composer=_composer(runtime.settings()),
    )
    if json_output:
        render.emit_json(shown)
        return
    facts = {key: shown.get(key) for key in ("id", "tenant", "kind", "state", "verdict")}
    render.key_values(f"Notification {notification_id}", facts)
    if shown.get("body") is None:
        render.note(f"the message cannot be built: {shown.get('error')}")
        return
    _print_lines(
        f"From: {shown['from']}\nTo: {shown['to']}\nSubject: {shown['subject']}\n\n" + shown["body"]
    )


@app.command("withdraw")
def withdraw(
    ctx: typer.Context,
    notification_id: NotificationId,
    reason: Annotated[
        str, typer.Option("--reason", help="Why it must not be sent; shown in the list, audited.")
    ],
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Withdraw a notification not yet sent, so no run sends it (audited)."""
    from billing_cli.cli import render
    from billing_cli.services.observe import notices

    db, invocation = runtime_of(ctx).begin_change(
        ctx, what=f"withdraw notification {notification_id}", dry_run=dry_run, yes=yes
    )
    result = notices.withdraw_notice(
        db, invocation=invocation, notification_id=notification_id, reason=reason
    )
    render.change(result, json_output=json_output)


def _error_line(line: str) -> None:
    sys.stderr.write(f"Error: {' '.join(line.split())}\n")
    sys.stderr.flush()
