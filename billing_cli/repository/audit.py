"""Queries on the audit_entry table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, or_, select

from billing_cli.models import AuditEntry
from billing_cli.repository.ledger import flush_orm


def add(*, session: Session, entry: AuditEntry) -> AuditEntry:
    session.add(entry)
    flush_orm(session=session)  # in a replay batch: with the batch's writes
    return entry


def list_recent(
    *,
    session: Session,
    tenant_slug: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
    operator: str | None = None,
    action: str | None = None,
) -> Sequence[AuditEntry]:
    """Newest first. ``action`` is a whole command (``payments refund``) or its last word
    (``refund``), so an operator need not remember which group a command lives in."""
    statement = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit)
    if tenant_slug is not None:
        statement = statement.where(AuditEntry.tenant_slug == tenant_slug)
    if operator is not None:
        statement = statement.where(AuditEntry.operator == operator)
    if action is not None:
        command = col(AuditEntry.command)
        statement = statement.where(
            or_(command == action, command.endswith(f" {action}", autoescape=True))
        )
    if since is not None:
        statement = statement.where(col(AuditEntry.at) >= since)
    return session.exec(statement).all()
