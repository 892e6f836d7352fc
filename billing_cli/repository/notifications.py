"""Queries on the notification outbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from billing_cli.models import Notification, Tenant, TenantSubscription
from billing_cli.repository.ledger import flush_orm


def add(*, session: Session, notification: Notification) -> Notification:
    session.add(notification)
    flush_orm(session=session)  # in a replay batch: with the batch's writes
    return notification


def list_recent(
    *,
    session: Session,
    tenant_id: int | None = None,
    kind: str | None = None,
    state: str | None = None,
    limit: int = 100,
) -> Sequence[tuple[Notification, Tenant]]:
    statement = (
        select(Notification, Tenant)
        .join(Tenant, col(Tenant.id) == col(Notification.tenant_id))
        .order_by(col(Notification.id).desc())
        .limit(limit)
    )
    if tenant_id is not None:
        statement = statement.where(Notification.tenant_id == tenant_id)
    if kind is not None:
        statement = statement.where(Notification.kind == kind)
    if state == "sent":
        statement = statement.where(col(Notification.sent_at).is_not(None))
    elif state == "failed":
        statement = statement.where(col(Notification.failed_at).is_not(None))
    elif state == "withdrawn":
        statement = statement.where(col(Notification.withdrawn_at).is_not(None))
    elif state == "pending":
        statement = statement.where(
            col(Notification.sent_at).is_(None),
            col(Notification.failed_at).is_(None),
            col(Notification.withdrawn_at).is_(None),
        )
    return session.exec(statement).all()


def delete_for_tenant(*, session: Session, tenant_id: int) -> int:
    """Drop a removed tenant's outbox; returns how many went."""
    rows = session.exec(select(Notification).where(Notification.tenant_id == tenant_id)).all()
    for row in rows:
        session.delete(row)
    session.flush()
    return len(rows)


def pending_filter(now: datetime) -> Any:
    """Rows still to send whose next try is due: not sent, not given up or withdrawn, backoff
    over."""
    return sa.and_(
        col(Notification.sent_at).is_(None),
        col(Notification.failed_at).is_(None),
        col(Notification.withdrawn_at).is_(None),
        sa.or_(
            col(Notification.next_attempt_at).is_(None), col(Notification.next_attempt_at) <= now
        ),
    )


def claim_due(
    *, session: Session, now: datetime, lease_until: datetime, limit: int
) -> list[tuple[Notification, Tenant, datetime | None]]:
    """Up to ``limit`` due rows, oldest first, leased until ``lease_until`` (their next try is
    moved there, so a second sender running at the same time, or a run after a crash before
    that time, leaves them alone). Returns each row, its tenant and its previous next try.

    On PostgreSQL rows another sender holds are skipped (``FOR UPDATE SKIP LOCKED``).
    """
    statement = (
        select(Notification, Tenant)
        .join(Tenant, col(Tenant.id) == col(Notification.tenant_id))
        .where(pending_filter(now))
        .order_by(col(Notification.id))
        .limit(limit)
        .with_for_update(skip_locked=True, of=Notification)
    )
    claimed = []
    for notification, tenant in session.exec(statement).all():
        claimed.append((notification, tenant, notification.next_attempt_at))
        notification.next_attempt_at = lease_until
        session.add(notification)
    session.flush()
    return claimed


def get(*, session: Session, notification_id: int) -> Notification | None:
    return session.get(Notification, notification_id, with_for_update=True)


def save(*, session: Session, notification: Notification) -> None:
    session.add(notification)
    session.flush()


@dataclass(frozen=True)
class TenantState:
    """What a notice about a tenant is checked against when it is sent: the tenant's access,
    its subscription row (kept in step with Stripe by the webhook registers) and the newest
    notice of each kind it has."""

    status: str
    suspended_by: str | None
    subscription_id: str | None = None
    subscription_status: str | None = None
    trial_end: datetime | None = None
    failed_attempts: int = 0
    newest: dict[str, int] = field(default_factory=dict)  # kind -> id of its newest notice
    sent: frozenset[int] = frozenset()  # ids of the notices the tenant was sent


def state_of(*, session: Session, tenant: Tenant) -> TenantState:
    """The tenant's current state, read in the caller's transaction."""
    row = session.exec(
        select(TenantSubscription).where(TenantSubscription.tenant_id == tenant.id)
    ).first()
    # a tenant has a few notices a month: reading their ids, kinds and sent times is cheap
    notices = session.exec(
        select(Notification.id, Notification.kind, Notification.sent_at).where(
            Notification.tenant_id == tenant.id
        )
    ).all()
    newest: dict[str, int] = {}
    for notice_id, kind, _sent in notices:
        if notice_id is not None and notice_id > newest.get(kind, 0):
            newest[kind] = notice_id
    return TenantState(
        status=tenant.status,
        suspended_by=tenant.suspended_by,
        subscription_id=row.stripe_subscription_id if row else None,
        subscription_status=row.status if row else None,
        trial_end=row.trial_end if row else None,
        failed_attempts=row.failed_payment_attempts if row else 0,
        newest=newest,
        sent=frozenset(n for n, _kind, sent in notices if n is not None and sent is not None),
    )


def get_with_tenant(
    *, session: Session, notification_id: int
) -> tuple[Notification, Tenant] | None:
    """One notice and its tenant (no lock: for reading)."""
    found = session.exec(
        select(Notification, Tenant)
        .join(Tenant, col(Tenant.id) == col(Notification.tenant_id))
        .where(Notification.id == notification_id)
    ).first()
    return (found[0], found[1]) if found else None


def unsent_of_kind(*, session: Session, tenant_id: int, kind: str) -> Sequence[Notification]:
    """The tenant's notices of ``kind`` still to send (neither sent, given up nor withdrawn)."""
    return session.exec(
        select(Notification).where(
            Notification.tenant_id == tenant_id,
            Notification.kind == kind,
            col(Notification.sent_at).is_(None),
            col(Notification.failed_at).is_(None),
            col(Notification.withdrawn_at).is_(None),
        )
    ).all()
