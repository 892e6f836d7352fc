"""``billing notifications send``: deliver the outbox by e-mail, each message at most once.

In three phases, like a Stripe write, so no transaction is open while the mail server is talked
to:

1. *Claim* (one short transaction): the due rows (not sent, not given up, backoff over), oldest
   first, are leased for :data:`LEASE` by moving their next try past it. A second ``send`` at
   the same time skips them (on PostgreSQL, ``SKIP LOCKED``); a run that crashes leaves them
   to be tried again once the lease runs out.
2. *Send* each message with no transaction open. Its Message-ID is derived from the row's id
   (``<notification-42@example.com>``), so a message resent after a crash between 3 and 2 is
   recognisably the same message to the recipient's mail system.
3. *Record* (one transaction per message, with its audit entry): ``sent_at`` only once the
   server accepted the message. A temporary failure (4xx, timeout, lost connection) keeps the
   row pending with ``attempts`` + 1, ``last_error`` and a next try after an exponential
   backoff; a permanent refusal (5xx), or ``max_attempts`` failures, gives it up (``failed_at``).
   When the server cannot be reached, secured or logged in to, the run stops and every
   message not sent is released untouched (no attempt counted: the fault is not theirs); the
   next run, from cron, tries the server again.

``dry_run`` goes through the same phases with a :class:`RecordingMailer` and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from billing_cli.errors import ConfigError
from billing_cli.mail.smtp import Mailer, MailError, MailServerError
from billing_cli.mail.templates import MessageFacts, UnknownKind, day, render
from billing_cli.models import Invocation, Notification, Tenant, utcnow
from billing_cli.repository import Database
from billing_cli.repository import events as events_repo
from billing_cli.repository import notifications as notifications_repo
from billing_cli.services import audit
from billing_cli.timeparse import iso

LEASE = timedelta(minutes=10)
BACKOFF_FIRST = timedelta(minutes=5)
BACKOFF_MAX = timedelta(hours=6)


class RecordingMailer:
    """The dry run's mailer: keeps the messages it is given, sends none."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    def send(self, message: EmailMessage) -> None:
        self.messages.append(message)


@dataclass
class Delivery:
    """One outbox row in this run: its message and what became of it."""

    id: int
    tenant: str
    kind: str
    to: str
    attempts: int
    previous_next_try: datetime | None
    message: EmailMessage | None = None
    result: str = "not tried"  # sent | would send | retry | failed | not tried
    error: str = ""
    next_attempt_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant": self.tenant,
            "kind": self.kind,
            "to": self.to,
            "subject": str(self.message["Subject"]) if self.message else None,
            "message_id": str(self.message["Message-ID"]) if self.message else None,
            "result": self.result,
            "attempts": self.attempts,
            "error": self.error or None,
            "next_attempt_at": iso(self.next_attempt_at),
        }


@dataclass
class SendReport:
    deliveries: list[Delivery] = field(default_factory=list)
    stopped: str = ""  # why the run stopped early (the server could not be used)

    @property
    def unsent(self) -> int:
        return sum(d.result not in ("sent", "would send") for d in self.deliveries)


def backoff(attempts: int) -> timedelta:
    """Wait before try ``attempts + 1``: 5 min, 10, 20, ... at most 6 h."""
    delay: timedelta = BACKOFF_FIRST * (2 ** max(attempts - 1, 0))
    return min(delay, BACKOFF_MAX)


def message_id(notification_id: int, mail_from: str) -> str:
    domain = mail_from.rpartition("@")[2].strip(" >") or "billing.invalid"
    return f"<notification-{notification_id}@{domain}>"


def send_notifications(
    db: Database,
    mailer: Mailer,
    *,
    invocation: Invocation,
    mail_from: str,
    max_attempts: int,
    max_failed_attempts: int,
    limit: int = 100,
) -> SendReport:
    """Deliver up to ``limit`` due notifications; see the module docstring for the rules."""
    if "@" not in mail_from:
        raise ConfigError("BILLING_MAIL_FROM is not set; e.g. Billing <billing@example.com>")
    now = utcnow()
    report = SendReport()
    with db.transaction(dry_run=invocation.dry_run) as session:
        claimed = notifications_repo.claim_due(
            session=session, now=now, lease_until=now + LEASE, limit=limit
        )
        for notification, tenant, previous in claimed:
            report.deliveries.append(
                _prepare(
                    session,
                    notification,
                    tenant,
                    previous,
                    mail_from=mail_from,
                    max_failed_attempts=max_failed_attempts,
                    now=now,
                )
            )
    for delivery in report.deliveries:
        # a message that could not be built is already "failed"; after a stop the rest stay
        # "not tried" and their lease is released
        if delivery.message is not None and not report.stopped:
            try:
                mailer.send(delivery.message)
                delivery.result = "would send" if invocation.dry_run else "sent"
            except MailServerError as error:  # about the server: no message is charged
                report.stopped = str(error)
            except MailError as error:
                _failed_try(delivery, str(error), error.temporary, max_attempts=max_attempts)
        _record(db, delivery, invocation=invocation, now=now)
    return report


def _prepare(
    session: Any,
    notification: Notification,
    tenant: Tenant,
    previous: datetime | None,
    *,
    mail_from: str,
    max_failed_attempts: int,
    now: datetime,
) -> Delivery:
    assert notification.id is not None
    payload = dict(notification.payload or {})
    delivery = Delivery(
        id=notification.id,
        tenant=tenant.slug,
        kind=notification.kind,
        to=tenant.email,
        attempts=notification.attempts,
        previous_next_try=previous,
    )
    due_date = None
    if notification.kind == "upcoming_invoice" and isinstance(payload.get("event"), str):
        event = events_repo.get(session=session, event_id=payload["event"])
        invoice = ((event.payload or {}).get("data") or {}).get("object") if event else None
        if isinstance(invoice, dict):
            due_date = day(invoice.get("next_payment_attempt")) or day(invoice.get("period_end"))
    try:
        rendered = render(
            MessageFacts(
                tenant_name=tenant.name,
                kind=notification.kind,
                payload=payload,
                max_failed_attempts=max_failed_attempts,
                due_date=due_date,
            )
        )
        message = EmailMessage()
        message["From"] = mail_from
        message["To"] = Address(display_name=tenant.name, addr_spec=tenant.email)
        message["Subject"] = rendered.subject
        message["Date"] = format_datetime(now)
        message["Message-ID"] = message_id(notification.id, mail_from)
        message.set_content(rendered.body)
    except (UnknownKind, ValueError, IndexError) as error:  # bad kind or unusable address
        delivery.result = "failed"
        delivery.attempts += 1
        delivery.error = f"cannot build the message: {error}"
        return delivery
    delivery.message = message
    return delivery


def _failed_try(delivery: Delivery, error: str, temporary: bool, *, max_attempts: int) -> None:
    delivery.attempts += 1
    delivery.error = error
    if temporary and delivery.attempts < max_attempts:
        delivery.result = "retry"
        delivery.next_attempt_at = utcnow() + backoff(delivery.attempts)
    else:
        delivery.result = "failed"


def _record(db: Database, delivery: Delivery, *, invocation: Invocation, now: datetime) -> None:
    """Write what became of one message, with its audit entry (nothing under dry run)."""
    with db.transaction(dry_run=invocation.dry_run) as session:
        row = notifications_repo.get(session=session, notification_id=delivery.id)
        if row is None:  # the tenant was removed meanwhile
            return
        if delivery.result == "not tried":
            row.next_attempt_at = delivery.previous_next_try  # release the lease
            notifications_repo.save(session=session, notification=row)
            return
        before = _state(row)
        row.attempts = delivery.attempts
        if delivery.result in ("sent", "would send"):
            row.attempts += 1
            row.sent_at = utcnow()
            row.last_error = None
            row.next_attempt_at = None
            outcome = f"sent {row.kind} to {delivery.to}"
        elif delivery.result == "retry":
            row.last_error = delivery.error[:2000]
            row.next_attempt_at = delivery.next_attempt_at
            outcome = f"not sent, will retry (attempt {row.attempts}): {delivery.error}"
        else:
            row.last_error = delivery.error[:2000]
            row.failed_at = utcnow()
            row.next_attempt_at = None
            outcome = f"gave up after {row.attempts} attempt(s): {delivery.error}"
        delivery.attempts = row.attempts
        notifications_repo.save(session=session, notification=row)
        audit.record(
            session,
            invocation=invocation,
            target=f"notification:{row.id}",
            tenant_slug=delivery.tenant,
            outcome=outcome[:500],
            before=before,
            after=_state(row),
        )


def _state(row: Notification) -> dict[str, Any]:
    return {
        "attempts": row.attempts,
        "sent_at": iso(row.sent_at),
        "failed_at": iso(row.failed_at),
        "next_attempt_at": iso(row.next_attempt_at),
        "last_error": row.last_error,
    }
