"""Queries on the notification outbox."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from billing_cli.models import Notification, Tenant


def add(*, session: Session, notification: Notification) -> Notification:
    session.add(notification)
    session.flush()
    return notification


def list_recent(
    *,
    session: Session,
    tenant_id: int | None = None,
    kind: str | None = None,
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
    return session.exec(statement).all()


def delete_for_tenant(*, session: Session, tenant_id: int) -> int:
    """Drop a removed tenant's outbox; returns how many went."""
    rows = session.exec(select(Notification).where(Notification.tenant_id == tenant_id)).all()
    for row in rows:
        session.delete(row)
    session.flush()
    return len(rows)
