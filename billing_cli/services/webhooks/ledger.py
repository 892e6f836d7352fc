"""Reading the webhook ledger and the notification outbox, for ``webhooks list/show`` and
``notifications list``. Read-only: nothing here needs Stripe."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from billing_cli.errors import NotFound
from billing_cli.repository import Database
from billing_cli.repository import events as events_repo
from billing_cli.services.notices import list_notices as list_notifications
from billing_cli.services.views import event_view

__all__ = ["list_events", "list_notifications", "show_event"]


def list_events(
    db: Database,
    *,
    status: str | None = None,
    types: tuple[str, ...] = (),
    since: datetime | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Ledger rows, newest first."""
    with db.read() as session:
        rows = events_repo.list_recent(
            session=session,
            status=status,
            types=types,
            since=int(since.timestamp()) if since else None,
            limit=limit,
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
