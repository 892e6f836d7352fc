"""Whole-database reads for ``reconcile``: every tenant with its row, and ledger counts.

One query each, whatever the number of tenants, so comparing 5,000 tenants with Stripe costs
the database as little as it costs Stripe.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, func, select

from billing_cli.models import Tenant, TenantSubscription, WebhookEvent


def tenants_with_rows(
    *, session: Session, slugs: Sequence[str] | None = None
) -> Sequence[tuple[Tenant, TenantSubscription | None]]:
    """Tenants (all, or those named) with their subscription row, if any, by slug."""
    statement = (
        select(Tenant, TenantSubscription)
        .join(
            TenantSubscription,
            col(TenantSubscription.tenant_id) == col(Tenant.id),
            isouter=True,
        )
        .order_by(col(Tenant.slug))
    )
    if slugs is not None:
        statement = statement.where(col(Tenant.slug).in_(list(slugs)))
    return session.exec(statement).all()


def event_counts(*, session: Session, statuses: Sequence[str]) -> dict[str, int]:
    """Ledger rows per status, for the statuses asked (0 when none)."""
    statement = (
        select(WebhookEvent.status, func.count())
        .where(col(WebhookEvent.status).in_(list(statuses)))
        .group_by(col(WebhookEvent.status))
    )
    counts = dict.fromkeys(statuses, 0)
    for status, count in session.exec(statement).all():
        counts[status] = count
    return counts
