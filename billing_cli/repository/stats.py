"""Aggregate queries behind ``billing stats`` and ``billing check``.

Every figure is computed by the database (``COUNT``, ``SUM``, ``GROUP BY``, percentiles), never by
loading rows into Python; what comes back is a handful of rows per period. Periods are UTC days
(``YYYY-MM-DD``) or ISO weeks named by their Monday. Percentiles are the nearest-rank kind
(``percentile_disc``: the smallest value with at least that fraction of values at or below
it); PostgreSQL computes them natively, SQLite with window functions, and both give the same
answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from billing_cli.models import (
    AuditEntry,
    Notification,
    RejectedDelivery,
    StripeApiError,
    Tenant,
    TenantSubscription,
    WebhookEvent,
)

PERCENTILES = (0.5, 0.95, 0.99)
LIVE_SUBSCRIPTION_STATUSES = ("trialing", "active", "past_due")
INVOICE_SUCCEEDED = "invoice.payment_succeeded"
INVOICE_FAILED = "invoice.payment_failed"

_EVENTS = WebhookEvent.metadata.tables["webhook_event"]
_AUDIT = AuditEntry.metadata.tables["audit_entry"]
_NOTIFICATIONS = Notification.metadata.tables["notification"]
_REJECTED = RejectedDelivery.metadata.tables["rejected_delivery"]
_STRIPE_ERRORS = StripeApiError.metadata.tables["stripe_api_error"]
_TENANTS = Tenant.metadata.tables["tenant"]
_SUBSCRIPTIONS = TenantSubscription.metadata.tables["tenant_subscription"]

Rows = list[dict[str, Any]]


def period_of(column: Any, *, by: str | None, dialect: str) -> Any:
    """The period a timestamp falls in, as text; a constant when ``by`` is None (the total)."""
    if by is None:
        return sa.literal("total")
    if dialect == "postgresql":
        utc = sa.func.timezone("UTC", column)
        start = utc if by == "day" else sa.func.date_trunc("week", utc)
        return sa.func.to_char(start, "YYYY-MM-DD")
    if by == "day":
        return sa.func.date(column)
    return sa.func.date(column, "-6 days", "weekday 1")  # the Monday on or before


def _rows(session: Session, statement: sa.Select[Any]) -> Rows:
    return [dict(row) for row in session.connection().execute(statement).mappings()]


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _count_if(condition: Any) -> Any:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def subscription_creations(*, session: Session, since: datetime, by: str | None) -> Rows:
    """``subs create`` runs in the audit trail: attempts, and those that left the subscription
    active or trialing (the rest came back incomplete: the first payment did not go through)."""
    period = period_of(_AUDIT.c.at, by=by, dialect=_dialect(session))
    status = _AUDIT.c.after["status"].as_string()
    statement = (
        sa.select(
            period.label("period"),
            sa.func.count().label("attempts"),
            _count_if(status.in_(("active", "trialing"))).label("succeeded"),
        )
        .where(
            _AUDIT.c.at >= since,
            _AUDIT.c.command == "subs create",
            _AUDIT.c.dry_run.is_(False),
        )
        .group_by(period)
        .order_by(period)
    )
    return _rows(session, statement)


def charges(*, session: Session, since: datetime, by: str | None) -> Rows:
    """``payments charge`` runs in the audit trail: attempts, and those Stripe reported
    ``succeeded`` (a decline is audited too, with no after-state)."""
    period = period_of(_AUDIT.c.at, by=by, dialect=_dialect(session))
    status = _AUDIT.c.after["status"].as_string()
    statement = (
        sa.select(
            period.label("period"),
            sa.func.count().label("attempts"),
            _count_if(status == "succeeded").label("succeeded"),
        )
        .where(
            _AUDIT.c.at >= since,
            _AUDIT.c.command == "payments charge",
            _AUDIT.c.dry_run.is_(False),
        )
        .group_by(period)
        .order_by(period)
    )
    return _rows(session, statement)


def invoice_payments(*, session: Session, since: datetime, by: str | None) -> Rows:
    """Invoice payment attempts from the ledger: ``invoice.payment_succeeded`` and
    ``invoice.payment_failed`` events (``invoice.paid`` fires beside the first and is not
    counted again)."""
    period = period_of(_EVENTS.c.received_at, by=by, dialect=_dialect(session))
    statement = (
        sa.select(
            period.label("period"),
            _count_if(_EVENTS.c.type == INVOICE_SUCCEEDED).label("succeeded"),
            _count_if(_EVENTS.c.type == INVOICE_FAILED).label("failed"),
        )
        .where(
            _EVENTS.c.received_at >= since,
            _EVENTS.c.type.in_((INVOICE_SUCCEEDED, INVOICE_FAILED)),
        )
        .group_by(period)
        .order_by(period)
    )
    return _rows(session, statement)


def events_by_status(*, session: Session, since: datetime, by: str | None) -> Rows:
    """Ledger rows received in the window, per period and outcome."""
    period = period_of(_EVENTS.c.received_at, by=by, dialect=_dialect(session))
    statement = (
        sa.select(period.label("period"), _EVENTS.c.status, sa.func.count().label("count"))
        .where(_EVENTS.c.received_at >= since)
        .group_by(period, _EVENTS.c.status)
        .order_by(period, _EVENTS.c.status)
    )
    return _rows(session, statement)


def processing_percentiles(*, session: Session, since: datetime, by: str | None) -> Rows:
    """p50/p95/p99 of the ledger rows' ``processing_ms`` per period (nearest rank)."""
    dialect = _dialect(session)
    period = period_of(_EVENTS.c.received_at, by=by, dialect=dialect)
    ms = _EVENTS.c.processing_ms
    where = (_EVENTS.c.received_at >= since, ms.is_not(None))
    names = [f"p{round(p * 100)}" for p in PERCENTILES]
    if dialect == "postgresql":
        statement = (
            sa.select(
                period.label("period"),
                *(
                    sa.func.percentile_disc(p).within_group(ms).label(name)
                    for p, name in zip(PERCENTILES, names, strict=True)
                ),
            )
            .where(*where)
            .group_by(period)
            .order_by(period)
        )
        return _rows(session, statement)
    ranked = (
        sa.select(
            period.label("period"),
            ms.label("ms"),
            sa.func.row_number().over(partition_by=period, order_by=ms).label("rank"),
            sa.func.count().over(partition_by=period).label("n"),
        )
        .where(*where)
        .subquery()
    )
    statement = (
        sa.select(
            ranked.c.period,
            *(
                sa.func.min(sa.case((ranked.c.rank >= p * ranked.c.n, ranked.c.ms))).label(name)
                for p, name in zip(PERCENTILES, names, strict=True)
            ),
        )
        .group_by(ranked.c.period)
        .order_by(ranked.c.period)
    )
    return _rows(session, statement)


def failed_payment_tenants(*, session: Session, since: datetime, by: str | None) -> Rows:
    """Tenants told of a failed payment (the ``payment_failed`` notifications the engine queued
    for the events it applied), per period."""
    period = period_of(_NOTIFICATIONS.c.created_at, by=by, dialect=_dialect(session))
    statement = (
        sa.select(
            period.label("period"),
            sa.func.count(sa.distinct(_NOTIFICATIONS.c.tenant_id)).label("tenants"),
        )
        .where(_NOTIFICATIONS.c.created_at >= since, _NOTIFICATIONS.c.kind == "payment_failed")
        .group_by(period)
        .order_by(period)
    )
    return _rows(session, statement)


def suspensions(*, session: Session, since: datetime, by: str | None) -> Rows:
    """Suspensions in the audit trail, by cause (``billing`` or ``manual``)."""
    period = period_of(_AUDIT.c.at, by=by, dialect=_dialect(session))
    statement = (
        sa.select(
            period.label("period"),
            _count_if(_AUDIT.c.outcome == "suspended (billing)").label("billing"),
            _count_if(_AUDIT.c.outcome == "suspended (manual)").label("manual"),
        )
        .where(
            _AUDIT.c.at >= since,
            _AUDIT.c.outcome.in_(("suspended (billing)", "suspended (manual)")),
            _AUDIT.c.dry_run.is_(False),
        )
        .group_by(period)
        .order_by(period)
    )
    return _rows(session, statement)


def tenants_by_status(*, session: Session) -> dict[str, int]:
    statement = sa.select(_TENANTS.c.status, sa.func.count()).group_by(_TENANTS.c.status)
    return {str(s): int(n) for s, n in session.connection().execute(statement)}


def rejections(
    *, session: Session, since: datetime, by: str | None, reasons: Sequence[str] = ()
) -> Rows:
    """Refused deliveries per period and reason (only ``reasons``, when given)."""
    period = period_of(_REJECTED.c.minute, by=by, dialect=_dialect(session))
    statement = (
        sa.select(
            period.label("period"),
            _REJECTED.c.reason,
            sa.func.sum(_REJECTED.c["count"]).label("count"),
        )
        .where(_REJECTED.c.minute >= since)
        .group_by(period, _REJECTED.c.reason)
        .order_by(period, _REJECTED.c.reason)
    )
    if reasons:
        statement = statement.where(_REJECTED.c.reason.in_(reasons))
    return _rows(session, statement)


def stripe_errors(*, session: Session, since: datetime, by: str | None) -> Rows:
    """Stripe API errors per period, operation and error class."""
    period = period_of(_STRIPE_ERRORS.c.minute, by=by, dialect=_dialect(session))
    statement = (
        sa.select(
            period.label("period"),
            _STRIPE_ERRORS.c.operation,
            _STRIPE_ERRORS.c.error_class,
            sa.func.sum(_STRIPE_ERRORS.c["count"]).label("count"),
        )
        .where(_STRIPE_ERRORS.c.minute >= since)
        .group_by(period, _STRIPE_ERRORS.c.operation, _STRIPE_ERRORS.c.error_class)
        .order_by(period, _STRIPE_ERRORS.c.operation, _STRIPE_ERRORS.c.error_class)
    )
    return _rows(session, statement)


def failed_event_count(*, session: Session) -> int:
    """Ledger rows left ``failed`` (waiting for a retry, a replay or ``retry-failed``)."""
    statement = sa.select(sa.func.count()).where(_EVENTS.c.status == "failed")
    return int(session.connection().execute(statement).scalar_one())


def last_endpoint_delivery(*, session: Session) -> datetime | None:
    """When the endpoint last recorded a delivery (replays do not count)."""
    statement = sa.select(sa.func.max(_EVENTS.c.received_at)).where(_EVENTS.c.source == "endpoint")
    value: datetime | None = session.connection().execute(statement).scalar_one()
    return value


def live_subscription_count(*, session: Session) -> int:
    statement = sa.select(sa.func.count()).where(
        _SUBSCRIPTIONS.c.status.in_(LIVE_SUBSCRIPTION_STATUSES)
    )
    return int(session.connection().execute(statement).scalar_one())
