"""Counters for monitoring: rejected webhook deliveries and Stripe API errors, and a ping.

Both counters are one row per minute and key, added to with an upsert
(``INSERT ... ON CONFLICT DO UPDATE SET count = count + n``, SQLite >= 3.24 and PostgreSQL), so
a flood of bad requests or failing calls grows a number, never the table.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from billing_cli.models import RejectedDelivery, StripeApiError

_REJECTED: sa.Table = RejectedDelivery.metadata.tables[RejectedDelivery.__tablename__]
_STRIPE_ERRORS: sa.Table = StripeApiError.metadata.tables[StripeApiError.__tablename__]


def minute_of(at: datetime) -> datetime:
    """The minute a counter row stands for."""
    return at.replace(second=0, microsecond=0)


def _upsert(session: Session, table: sa.Table, keys: dict[str, object], count: int) -> None:
    connection = session.connection()
    dialect = connection.dialect.name
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    statement = insert.values(**keys, count=count).on_conflict_do_update(
        index_elements=list(keys), set_={"count": table.c["count"] + insert.excluded["count"]}
    )
    connection.execute(statement)


def add_rejections(*, session: Session, minute: datetime, reason: str, count: int) -> None:
    """Add ``count`` refused deliveries of ``reason`` to the counter of ``minute``."""
    _upsert(session, _REJECTED, {"minute": minute_of(minute), "reason": reason}, count)


def add_stripe_errors(
    *, session: Session, minute: datetime, operation: str, error_class: str, count: int = 1
) -> None:
    """Add ``count`` Stripe API errors of ``error_class`` from ``operation``."""
    keys = {"minute": minute_of(minute), "operation": operation, "error_class": error_class}
    _upsert(session, _STRIPE_ERRORS, keys, count)


def ping(*, session: Session) -> None:
    """The cheapest query that proves the database answers."""
    session.connection().execute(sa.text("SELECT 1")).scalar()
