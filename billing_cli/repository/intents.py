"""Queries on the stripe_intent table (the Stripe write journal)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, func, select

from billing_cli.models import OPEN_INTENT_STATUSES, StripeIntent


def get(*, session: Session, intent_id: str, for_update: bool = False) -> StripeIntent | None:
    statement = select(StripeIntent).where(StripeIntent.id == intent_id)
    if for_update:
        statement = statement.with_for_update()
    return session.exec(statement).first()


def open_in_scope(*, session: Session, scope: str) -> StripeIntent | None:
    """The open intent holding ``scope`` (``family:target``), if any."""
    statement = select(StripeIntent).where(StripeIntent.open_scope == scope).with_for_update()
    return session.exec(statement).first()


def add(*, session: Session, intent: StripeIntent) -> StripeIntent:
    session.add(intent)
    session.flush()
    return intent


def list_recent(
    *,
    session: Session,
    open_only: bool = False,
    tenant_slug: str | None = None,
    limit: int = 50,
) -> Sequence[StripeIntent]:
    statement = select(StripeIntent).order_by(col(StripeIntent.created_at).desc()).limit(limit)
    if open_only:
        statement = statement.where(col(StripeIntent.status).in_(OPEN_INTENT_STATUSES))
    if tenant_slug is not None:
        statement = statement.where(StripeIntent.tenant_slug == tenant_slug)
    return session.exec(statement).all()


def count_open(*, session: Session, older_than: datetime | None = None) -> int:
    """Open intents, optionally only those started before ``older_than``."""
    statement = select(func.count()).where(col(StripeIntent.status).in_(OPEN_INTENT_STATUSES))
    if older_than is not None:
        statement = statement.where(col(StripeIntent.created_at) < older_than)
    return int(session.exec(statement).one())


def open_of_operation(*, session: Session, operation: str) -> Sequence[StripeIntent]:
    """The open intents of one operation, oldest first (what a bulk re-run must finish)."""
    statement = (
        select(StripeIntent)
        .where(StripeIntent.operation == operation)
        .where(col(StripeIntent.status).in_(OPEN_INTENT_STATUSES))
        .order_by(col(StripeIntent.created_at))
    )
    return session.exec(statement).all()
