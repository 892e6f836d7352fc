"""Queries on the webhook_event ledger."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import Session, col, func, select

from billing_cli.models import WebhookEvent


def get(*, session: Session, event_id: str, for_update: bool = False) -> WebhookEvent | None:
    statement = select(WebhookEvent).where(WebhookEvent.stripe_event_id == event_id)
    if for_update:
        statement = statement.with_for_update()
    return session.exec(statement).first()


def save(*, session: Session, event: WebhookEvent) -> WebhookEvent:
    session.add(event)
    session.flush()
    return event


def list_recent(
    *,
    session: Session,
    status: str | None = None,
    types: Sequence[str] = (),
    since: int | None = None,
    limit: int = 100,
    customer_ids: Sequence[str] = (),
) -> Sequence[WebhookEvent]:
    """Newest first; ``customer_ids``: only events about these Stripe customers."""
    # newest first; within one second, the one recorded last first (ids are in insertion order)
    statement = (
        select(WebhookEvent)
        .order_by(col(WebhookEvent.created).desc(), col(WebhookEvent.id).desc())
        .limit(limit)
    )
    if customer_ids:
        statement = statement.where(about_customers(customer_ids))
    if status is not None:
        statement = statement.where(WebhookEvent.status == status)
    if types:
        statement = statement.where(col(WebhookEvent.type).in_(list(types)))
    if since is not None:
        statement = statement.where(col(WebhookEvent.created) >= since)
    return session.exec(statement).all()


def about_customers(customer_ids: Sequence[str]) -> ColumnElement[bool]:
    """Events that name one of these customers: an invoice's or subscription's ``customer``,
    a ``customer.*`` event's own id, or the customer a parked (deferred) event waits for.

    Read from the stored payload (JSON paths work the same on SQLite and PostgreSQL); the
    ledger keeps no customer column for processed events, and this is an operator's look-up,
    bounded by ``limit`` and walked newest first, not a hot path.
    """
    obj = col(WebhookEvent.payload)["data"]["object"]
    wanted = list(customer_ids)
    return or_(
        col(WebhookEvent.customer_id).in_(wanted),
        obj["customer"].as_string().in_(wanted),
        and_(obj["object"].as_string() == "customer", obj["id"].as_string().in_(wanted)),
    )


def failed(*, session: Session) -> Sequence[WebhookEvent]:
    statement = (
        select(WebhookEvent)
        .where(WebhookEvent.status == "failed")
        .order_by(col(WebhookEvent.created), col(WebhookEvent.id))
    )
    return session.exec(statement).all()


def latest_received(*, session: Session, source: str) -> WebhookEvent | None:
    """The ledger row received last from ``source`` (``endpoint``: the live endpoint)."""
    statement = (
        select(WebhookEvent)
        .where(WebhookEvent.source == source)
        .order_by(col(WebhookEvent.received_at).desc(), col(WebhookEvent.id).desc())
        .limit(1)
    )
    return session.exec(statement).first()


def count_by_status(*, session: Session) -> dict[str, int]:
    """How many ledger rows have each status."""
    statement = select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)
    return {status: int(count) for status, count in session.exec(statement).all()}


def known_ids(*, session: Session, event_ids: Sequence[str]) -> set[str]:
    """Which of ``event_ids`` the ledger holds (in chunks, so any number of ids works)."""
    known: set[str] = set()
    for start in range(0, len(event_ids), 500):
        chunk = list(event_ids[start : start + 500])
        statement = select(WebhookEvent.stripe_event_id).where(
            col(WebhookEvent.stripe_event_id).in_(chunk)
        )
        known.update(session.exec(statement).all())
    return known
