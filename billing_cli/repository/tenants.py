"""Queries on the tenant table."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from billing_cli.models import SubscriptionPlan, Tenant, TenantSubscription


def get_by_slug(*, session: Session, slug: str, for_update: bool = False) -> Tenant | None:
    statement = select(Tenant).where(Tenant.slug == slug)
    if for_update:
        statement = statement.with_for_update()
    return session.exec(statement).first()


def get(*, session: Session, tenant_id: int, for_update: bool = False) -> Tenant | None:
    statement = select(Tenant).where(Tenant.id == tenant_id)
    if for_update:
        statement = statement.with_for_update()
    return session.exec(statement).first()


def all_slugs(*, session: Session) -> Sequence[str]:
    """Every tenant's slug, nothing else: what a "did you mean" needs to compare against."""
    return session.exec(select(Tenant.slug).order_by(col(Tenant.slug))).all()


def list_all(*, session: Session, status: str | None = None) -> Sequence[Tenant]:
    statement = select(Tenant).order_by(col(Tenant.slug))
    if status is not None:
        statement = statement.where(Tenant.status == status)
    return session.exec(statement).all()


def add(*, session: Session, tenant: Tenant) -> Tenant:
    session.add(tenant)
    session.flush()
    return tenant


def delete(*, session: Session, tenant: Tenant) -> None:
    session.delete(tenant)
    session.flush()


def search_with_subscriptions(
    *, session: Session, status: str | None = None, search: str | None = None
) -> Sequence[tuple[Tenant, TenantSubscription | None, SubscriptionPlan | None]]:
    """Tenants with their subscription row and plan (either may be missing), by slug.

    ``search`` matches slug, name or e-mail, case-insensitively, anywhere in the text.
    """
    statement = (
        select(Tenant, TenantSubscription, SubscriptionPlan)
        .outerjoin(TenantSubscription, col(TenantSubscription.tenant_id) == col(Tenant.id))
        .outerjoin(SubscriptionPlan, col(SubscriptionPlan.id) == col(TenantSubscription.plan_id))
        .order_by(col(Tenant.slug))
    )
    if status is not None:
        statement = statement.where(Tenant.status == status)
    if search:
        escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        statement = statement.where(
            or_(
                func.lower(col(Tenant.slug)).like(pattern, escape="\\"),
                func.lower(col(Tenant.name)).like(pattern, escape="\\"),
                func.lower(col(Tenant.email)).like(pattern, escape="\\"),
            )
        )
    return session.exec(statement).all()
