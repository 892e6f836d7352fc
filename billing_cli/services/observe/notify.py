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

Before a message is built, its notice is re-checked against the tenant's state at that moment
(:mod:`.notice_check`): one whose claim no longer holds is *withdrawn* with its reason (and an
audit entry), never sent. Every due message is rendered in phase 1, so a broken template stops
the run before the first message goes.

``dry_run`` goes through the same phases with a :class:`RecordingMailer` and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from billing_cli.errors import ConfigError
from billing_cli.mail.smtp import Mailer, MailError, MailServerError
from billing_cli.models import Invocation, Notification, Tenant, utcnow
from billing_cli.repository import Database
from billing_cli.repository import notifications as notifications_repo
from billing_cli.services import audit
from billing_cli.services.observe.notices import (
    CannotBuild,
    Composer,
    body_of,
    check_now,
    mark_withdrawn,
    notification_view_state,
)
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
    # sent | would send | retry | failed | withdrawn | would withdraw | not tried
    result: str = "not tried"
    error: str = ""
    reason: str = ""  # why it was withdrawn
    next_attempt_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant": self.tenant,
            "kind": self.kind,
            "to": self.to,
            "subject": str(self.message["Subject"]) if self.message else None,
            "body": body_of(self.message) if self.message else None,
            "message_id": str(self.message["Message-ID"]) if self.message else None,
            "result": self.result,
            "attempts": self.attempts,
            "error": self.error or None,
            "withdrawn_reason": self.reason or None,
            "next_attempt_at": iso(self.next_attempt_at),
        }


@dataclass
class SendReport:
    deliveries: list[Delivery] = field(default_factory=list)
    stopped: str = ""  # why the run stopped early (the server could not be used)

    @property
    def unsent(self) -> int:
        done = ("sent", "would send", "withdrawn", "would withdraw")
        return sum(d.result not in done for d in self.deliveries)


def backoff(attempts: int) -> timedelta:
    """Wait before try ``attempts + 1``: 5 min, 10, 20, ... at most 6 h."""
    delay: timedelta = BACKOFF_FIRST * (2 ** max(attempts - 1, 0))
    return min(delay, BACKOFF_MAX)


def send_notifications(
    db: Database,
    mailer: Mailer,
    *,
    invocation: Invocation,
    mail_from: str,
    max_attempts: int,
    max_failed_attempts: int,
    limit: int = 100,
    composer: Composer | None = None,
) -> SendReport:
    """Deliver up to ``limit`` due notifications; see the module docstring for the rules."""
    if "@" not in mail_from:
        raise ConfigError("BILLING_MAIL_FROM is not set; e.g. Billing <billing@example.com>")
    composer = composer or Composer(mail_from=mail_from, max_failed_attempts=max_failed_attempts)
    composer.templates.check()  # a broken template: refused before anything is claimed
    now = utcnow()
    report = SendReport()
    with db.transaction(dry_run=invocation.dry_run) as session:
        claimed = notifications_repo.claim_due(
            session=session, now=now, lease_until=now + LEASE, limit=limit
        )
        for notification, tenant, previous in claimed:
            # a template that fails on this message raises here: the claim is rolled back
            report.deliveries.append(
                _prepare(session, notification, tenant, previous, composer=composer, now=now)
            )
    for delivery in report.deliveries:
        # a message that could not be built is already "failed", a withdrawn one is not sent;
        # after a stop the rest stay "not tried" and their lease is released
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
    composer: Composer,
    now: datetime,
) -> Delivery:
    """Re-check the notice against the tenant's state now, then build its message."""
    assert notification.id is not None
    delivery = Delivery(
        id=notification.id,
        tenant=tenant.slug,
        kind=notification.kind,
        to=tenant.email,
        attempts=notification.attempts,
        previous_next_try=previous,
    )
    state, reason = check_now(session, notification, tenant, now)
    if reason is not None:
        delivery.result = "withdrawn"
        delivery.reason = reason
        return delivery
    try:
        delivery.message = composer.message(session, notification, tenant, state)
    except CannotBuild as error:
        delivery.result = "failed"
        delivery.attempts += 1
        delivery.error = f"cannot build the message: {error}"
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
        if delivery.result == "withdrawn":
            mark_withdrawn(
                session,
                row,
                tenant_slug=delivery.tenant,
                reason=delivery.reason,
                invocation=invocation,
            )
            if invocation.dry_run:
                delivery.result = "would withdraw"
            return
        before = notification_view_state(row)
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
            after=notification_view_state(row),
        )
