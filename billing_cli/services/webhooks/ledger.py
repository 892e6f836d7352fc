"""Reading the webhook ledger and the notification outbox, for ``webhooks list/show`` and
``notifications list``. Read-only: nothing here needs Stripe."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from billing_cli.errors import NotFound, UsageError
from billing_cli.repository import Database
from billing_cli.repository import events as events_repo
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.services.observe.notices import list_notices as list_notifications
from billing_cli.services.tenants import rules as tenant_rules
from billing_cli.services.views import event_view

__all__ = ["list_events", "list_notifications", "show_event"]


def list_events(
    db: Database,
    *,
    status: str | None = None,
    types: tuple[str, ...] = (),
    since: datetime | None = None,
    limit: int = 50,
    tenant_slug: str | None = None,
    customer_id: str | None = None,
) -> list[dict[str, Any]]:
    """Ledger rows, newest first; with a tenant or a customer, only the events about it."""
    with db.read() as session:
        customers = _customers(session, tenant_slug, customer_id)
        if customers == ():
            return []  # a tenant never linked to Stripe has no events
        rows = events_repo.list_recent(
            session=session,
            status=status,
            types=types,
            since=int(since.timestamp()) if since else None,
            limit=limit,
            customer_ids=customers or (),
        )
        return [event_view(row) for row in rows]


def show_event(db: Database, *, event_id: str) -> dict[str, Any]:
    """One ledger row with its payload: what arrived and what processing it did."""
    with db.read() as session:
        row = events_repo.get(session=session, event_id=event_id)
        if row is None:
            raise NotFound(
                f"no event {event_id!r} in the ledger; `billing webhooks list` shows them"
            )
        return event_view(row, with_payload=True)


def _customers(
    session: Session, tenant_slug: str | None, customer_id: str | None
) -> tuple[str, ...] | None:
    """The Stripe customers to filter on (None: no filter), refusing a bad customer id.

    A tenant's events name its current customer, or the one ``customer.deleted`` removed.
    """
    if tenant_slug is not None and customer_id is not None:
        raise UsageError("give --tenant or --customer, not both")
    if customer_id is not None:
        if not customer_id.startswith("cus_"):
            raise UsageError(
                f"--customer must be a Stripe customer id like cus_..., not {customer_id!r}"
            )
        return (customer_id,)
    if tenant_slug is None:
        return None
    tenant = tenant_rules.require_tenant(session, tenant_slug)
    assert tenant.id is not None
    row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id)
    if row is None:
        return ()
    return tuple(c for c in (row.stripe_customer_id, row.deleted_customer_id) if c)
