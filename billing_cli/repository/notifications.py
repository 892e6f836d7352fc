"""Queries on the notification outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from billing_cli.models import Notification, Tenant
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
    elif state == "pending":
        statement = statement.where(
            col(Notification.sent_at).is_(None), col(Notification.failed_at).is_(None)
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
    """Rows still to send whose next try is due: not sent, not given up, backoff over."""
    return sa.and_(
        col(Notification.sent_at).is_(None),
        col(Notification.failed_at).is_(None),
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
