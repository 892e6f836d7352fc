"""Queries on the tenant_subscription table."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from billing_cli.models import Tenant, TenantSubscription


def for_tenant(
    *, session: Session, tenant_id: int, for_update: bool = False
) -> TenantSubscription | None:
    statement = select(TenantSubscription).where(TenantSubscription.tenant_id == tenant_id)
    if for_update:
        statement = statement.with_for_update()
    return session.exec(statement).first()


def list_with_tenants(
    *, session: Session, status: str | None = None
) -> Sequence[tuple[TenantSubscription, Tenant]]:
    statement = (
        select(TenantSubscription, Tenant)
        .join(Tenant, col(Tenant.id) == col(TenantSubscription.tenant_id))
        .order_by(col(Tenant.slug))
    )
    if status is not None:
        statement = statement.where(TenantSubscription.status == status)
    return session.exec(statement).all()


def save(*, session: Session, subscription: TenantSubscription) -> TenantSubscription:
    session.add(subscription)
    session.flush()
    return subscription


def delete(*, session: Session, subscription: TenantSubscription) -> None:
    session.delete(subscription)
    session.flush()


def slugs_for_customers(*, session: Session, customer_ids: Sequence[str]) -> dict[str, str]:
    """Stripe customer id -> tenant slug, for the customers a tenant row holds (one query)."""
    if not customer_ids:
        return {}
    statement = (
        select(TenantSubscription.stripe_customer_id, Tenant.slug)
        .join(Tenant, col(Tenant.id) == col(TenantSubscription.tenant_id))
        .where(col(TenantSubscription.stripe_customer_id).in_(sorted(set(customer_ids))))
    )
    return {customer: slug for customer, slug in session.exec(statement).all() if customer}


def tenant_for_customer(*, session: Session, customer_id: str) -> Tenant | None:
    """The tenant whose row holds this Stripe customer id (the link support commands follow)."""
    statement = (
        select(Tenant)
        .join(TenantSubscription, col(Tenant.id) == col(TenantSubscription.tenant_id))
        .where(TenantSubscription.stripe_customer_id == customer_id)
    )
    return session.exec(statement).first()
