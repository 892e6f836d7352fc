"""What an operator sees and decides about the outbox: each notice's message and verdict.

``notifications send`` (:mod:`.notify`), ``list``, ``show`` and ``withdraw`` share one
:class:`Composer`, so the message ``show`` prints, the one ``send --dry-run`` renders and the one
mailed are the same text, and the verdict ``list`` shows (:mod:`.notice_check`) is the one the
sender acts on. A withdrawn notice is kept with its reason; sent ones are facts and stay as sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from sqlmodel import Session

from billing_cli.errors import ConfigError, Conflict, NotFound, UsageError
from billing_cli.mail.templates import MessageFacts, Templates, UnknownKind, day
from billing_cli.models import Change, Invocation, Notification, Tenant, utcnow
from billing_cli.repository import Database
from billing_cli.repository import events as events_repo
from billing_cli.repository import notifications as notifications_repo
from billing_cli.repository import tenants as tenants_repo
from billing_cli.repository.notifications import TenantState
from billing_cli.services import audit
from billing_cli.services.observe.notice_check import verdict
from billing_cli.services.views import notification_view
from billing_cli.text import REASON_MAX, check_length, check_plain
from billing_cli.timeparse import iso


class CannotBuild(Exception):
    """The message cannot be built (unknown kind, unusable address)."""


@dataclass
class Composer:
    """Builds the e-mail of a notice from its row, its tenant and the tenant's current state."""

    mail_from: str
    max_failed_attempts: int
    templates: Templates = field(default_factory=Templates)

    def message(
        self, session: Session, notice: Notification, tenant: Tenant, state: TenantState
    ) -> EmailMessage:
        """The message as it would be sent now; TemplateProblem for a broken template."""
        assert notice.id is not None
        payload = dict(notice.payload or {})
        try:
            rendered = self.templates.render(
                MessageFacts(
                    tenant_name=tenant.name,
                    kind=notice.kind,
                    payload=payload,
                    max_failed_attempts=self.max_failed_attempts,
                    due_date=_due_date(session, notice.kind, payload),
                    tenant_status=state.status,
                    tenant_suspended_by=state.suspended_by,
                    subscription_status=state.subscription_status,
                )
            )
            message = EmailMessage()
            message["From"] = self.mail_from
            message["To"] = Address(display_name=tenant.name, addr_spec=tenant.email)
            message["Subject"] = rendered.subject
            message["Date"] = format_datetime(utcnow())
            message["Message-ID"] = message_id(notice.id, self.mail_from)
            message.set_content(rendered.body)
        except (UnknownKind, ValueError, IndexError) as error:  # bad kind or unusable address
            raise CannotBuild(str(error)) from None
        return message


def message_id(notification_id: int, mail_from: str) -> str:
    domain = mail_from.rpartition("@")[2].strip(" >") or "billing.invalid"
    return f"<notification-{notification_id}@{domain}>"


def body_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    return str(part.get_content()) if part else ""


def _due_date(session: Session, kind: str, payload: dict[str, Any]) -> str | None:
    """An upcoming invoice's charge date, from the event that queued it."""
    if kind != "upcoming_invoice" or not isinstance(payload.get("event"), str):
        return None
    event = events_repo.get(session=session, event_id=payload["event"])
    invoice = ((event.payload or {}).get("data") or {}).get("object") if event else None
    if not isinstance(invoice, dict):
        return None
    return day(invoice.get("next_payment_attempt")) or day(invoice.get("period_end"))


def check_now(
    session: Session,
    notice: Notification,
    tenant: Tenant,
    now: datetime,
    states: dict[int, TenantState] | None = None,
) -> tuple[TenantState, str | None]:
    """The tenant's state and the notice's verdict (None: its claim holds now). ``states``
    caches the state per tenant for a caller that reads many notices and writes nothing."""
    assert notice.id is not None and tenant.id is not None
    cache = {} if states is None else states
    state = cache.get(tenant.id) or notifications_repo.state_of(session=session, tenant=tenant)
    cache[tenant.id] = state
    reason = verdict(
        notice_id=notice.id, kind=notice.kind, payload=notice.payload or {}, state=state, now=now
    )
    return state, reason


def list_notices(
    db: Database,
    *,
    tenant_slug: str | None = None,
    kind: str | None = None,
    state: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The outbox, newest first; a pending notice carries the verdict ``send`` would reach."""
    now = utcnow()
    with db.read() as session:
        tenant_id = None
        if tenant_slug is not None:
            tenant = tenants_repo.get_by_slug(session=session, slug=tenant_slug)
            if tenant is None:
                raise NotFound(f"no tenant {tenant_slug!r}; `billing tenants list` shows them")
            tenant_id = tenant.id
        rows = notifications_repo.list_recent(
            session=session, tenant_id=tenant_id, kind=kind, state=state, limit=limit
        )
        states: dict[int, TenantState] = {}
        return [_with_verdict(session, notice, tenant, now, states) for notice, tenant in rows]


def _with_verdict(
    session: Session,
    notice: Notification,
    tenant: Tenant,
    now: datetime,
    states: dict[int, TenantState] | None = None,
) -> dict[str, Any]:
    view = notification_view(notice, tenant)
    if view["state"] == "pending":
        reason = check_now(session, notice, tenant, now, states)[1]
        view["verdict"] = f"will withdraw: {reason}" if reason else "will send"
    elif view["state"] == "withdrawn":
        view["verdict"] = f"withdrawn: {notice.withdrawn_reason}"
    else:
        view["verdict"] = None
    return view


def show_notice(db: Database, *, notification_id: int, composer: Composer) -> dict[str, Any]:
    """One notice with the exact message it sends (or sent): recipient, subject, body."""
    if "@" not in composer.mail_from:
        raise ConfigError("BILLING_MAIL_FROM is not set; e.g. Billing <billing@example.com>")
    with db.read() as session:
        found = notifications_repo.get_with_tenant(session=session, notification_id=notification_id)
        if found is None:
            raise NotFound(f"no notification {notification_id}; `billing notifications list`")
        notice, tenant = found
        now, states = utcnow(), dict[int, TenantState]()
        view = _with_verdict(session, notice, tenant, now, states)
        state = check_now(session, notice, tenant, now, states)[0]
        try:
            message = composer.message(session, notice, tenant, state)
        except CannotBuild as error:
            return {**view, "to": tenant.email, "subject": None, "body": None, "error": str(error)}
    return {
        **view,
        "to": str(message["To"]),
        "from": str(message["From"]),
        "subject": str(message["Subject"]),
        "message_id": str(message["Message-ID"]),
        "body": body_of(message),
    }


def withdraw_notice(
    db: Database, *, invocation: Invocation, notification_id: int, reason: str
) -> Change:
    """A person withdraws a notice not yet sent; audited, and shown with ``reason``."""
    reason = check_plain(
        check_length(reason.strip(), limit=REASON_MAX, option="--reason"), option="--reason"
    )
    if not reason:
        raise UsageError("--reason must not be empty")
    with db.transaction(dry_run=invocation.dry_run) as session:
        notice = notifications_repo.get(session=session, notification_id=notification_id)
        if notice is None:
            raise NotFound(f"no notification {notification_id}; `billing notifications list`")
        if notice.sent_at is not None:
            raise Conflict(f"notification {notification_id} was sent at {iso(notice.sent_at)}")
        if notice.withdrawn_at is not None:
            raise Conflict(
                f"notification {notification_id} is already withdrawn: {notice.withdrawn_reason}"
            )
        tenant = session.get(Tenant, notice.tenant_id)
        assert tenant is not None
        return mark_withdrawn(
            session, notice, tenant_slug=tenant.slug, reason=reason, invocation=invocation
        )


def mark_withdrawn(
    session: Session,
    notice: Notification,
    *,
    tenant_slug: str,
    reason: str,
    invocation: Invocation,
) -> Change:
    """Withdraw ``notice`` in the caller's transaction, with its audit entry."""
    before = notification_view_state(notice)
    notice.withdrawn_at = utcnow()
    notice.withdrawn_reason = reason[:2000]
    notice.next_attempt_at = None
    notifications_repo.save(session=session, notification=notice)
    after = notification_view_state(notice)
    target = f"notification:{notice.id}"
    audit.record(
        session,
        invocation=invocation,
        target=target,
        tenant_slug=tenant_slug,
        outcome=f"withdrew {notice.kind}: {reason}"[:500],
        before=before,
        after=after,
    )
    verb = "would withdraw" if invocation.dry_run else "withdrew"
    return Change(
        target=target,
        action="withdraw",
        before=before,
        after=after,
        dry_run=invocation.dry_run,
        message=f"{verb} {notice.kind} notification {notice.id} for {tenant_slug}: {reason}",
    )


def withdraw_trial_notices(
    session: Session, tenant: Tenant, *, trial_end: datetime | None, invocation: Invocation
) -> list[Change]:
    """``subs extend-trial`` moved the trial's end: a pending notice names the old date, and
    Stripe sends a new ``trial_will_end`` three days before the new one, so withdraw it."""
    assert tenant.id is not None
    reason = f"the trial was extended to {day(trial_end) or 'a later date'}"
    return [
        mark_withdrawn(
            session, notice, tenant_slug=tenant.slug, reason=reason, invocation=invocation
        )
        for notice in notifications_repo.unsent_of_kind(
            session=session, tenant_id=tenant.id, kind="trial_will_end"
        )
    ]


def notification_view_state(row: Notification) -> dict[str, Any]:
    """The delivery columns of a notice, for an audit entry's before and after."""
    return {
        "attempts": row.attempts,
        "sent_at": iso(row.sent_at),
        "failed_at": iso(row.failed_at),
        "next_attempt_at": iso(row.next_attempt_at),
        "last_error": row.last_error,
        "withdrawn_at": iso(row.withdrawn_at),
        "withdrawn_reason": row.withdrawn_reason,
    }
