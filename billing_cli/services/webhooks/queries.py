"""The engine's hot-path statements, built once at import and run on the engine's session.

Every delivery runs these (look up the ledger row, find the tenant's row, record the event), so
they are prepared once with bind parameters instead of being rebuilt per event, and the tenant's
subscription row and tenant come back from one joined, locked SELECT instead of two. They take
the caller's session and open none, like the repository's functions (keyword-only arguments);
they are candidates to move into ``billing_cli.repository``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from billing_cli.models import Tenant, TenantSubscription, WebhookEvent

_LEDGER_ROW = (
    select(WebhookEvent)
    .where(WebhookEvent.stripe_event_id == sa.bindparam("event_id"))
    .with_for_update()
)
_ROW_AND_TENANT = select(TenantSubscription, Tenant).join(
    Tenant, col(Tenant.id) == col(TenantSubscription.tenant_id)
)
_BY_SUBSCRIPTION = _ROW_AND_TENANT.where(
    TenantSubscription.stripe_subscription_id == sa.bindparam("value")
).with_for_update()
_BY_CUSTOMER = (
    _ROW_AND_TENANT.where(TenantSubscription.stripe_customer_id == sa.bindparam("value"))
    .order_by(col(TenantSubscription.id))
    .limit(1)
    .with_for_update()
)
_INSERT_LEDGER = sa.insert(WebhookEvent.metadata.tables[WebhookEvent.__tablename__])


class LedgerConflict(Exception):
    """Another transaction recorded the same event id first (the unique index said so)."""


def ledger_row(*, session: Session, event_id: str) -> WebhookEvent | None:
    """The event's ledger row, locked (``FOR UPDATE`` on PostgreSQL) when it exists."""
    row: WebhookEvent | None = (
        session.execute(_LEDGER_ROW, {"event_id": event_id}).scalars().first()
    )
    return row


def row_and_tenant(
    *, session: Session, subscription_id: str | None = None, customer_id: str | None = None
) -> tuple[TenantSubscription, Tenant] | None:
    """The subscription row and its tenant, both locked, by subscription or customer id."""
    if subscription_id is not None:
        found = session.execute(_BY_SUBSCRIPTION, {"value": subscription_id}).first()
    else:
        found = session.execute(_BY_CUSTOMER, {"value": customer_id}).first()
    return (found[0], found[1]) if found is not None else None


def insert_ledger_row(*, session: Session, values: dict[str, Any]) -> None:
    """Record a new event; raises LedgerConflict when its id is already recorded.

    On PostgreSQL a concurrent transaction inserting the same id makes this wait for it to end,
    then fail: that is how two simultaneous deliveries of one event are applied once.
    """
    try:
        session.execute(_INSERT_LEDGER, values)
    except IntegrityError:
        raise LedgerConflict(values.get("stripe_event_id")) from None
