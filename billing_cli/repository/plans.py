"""Queries on the subscription_plan table."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func
from sqlmodel import Session, col, select

from billing_cli.models import SubscriptionPlan, TenantSubscription


def get_by_slug(*, session: Session, slug: str) -> SubscriptionPlan | None:
    return session.exec(select(SubscriptionPlan).where(SubscriptionPlan.slug == slug)).first()


def get(*, session: Session, plan_id: int) -> SubscriptionPlan | None:
    return session.get(SubscriptionPlan, plan_id)


def get_by_price_id(*, session: Session, price_id: str) -> SubscriptionPlan | None:
    statement = select(SubscriptionPlan).where(SubscriptionPlan.stripe_price_id == price_id)
    return session.exec(statement).first()


def list_all(*, session: Session, active: bool | None = None) -> Sequence[SubscriptionPlan]:
    statement = select(SubscriptionPlan).order_by(col(SubscriptionPlan.slug))
    if active is not None:
        statement = statement.where(SubscriptionPlan.active == active)
    return session.exec(statement).all()


def add(*, session: Session, plan: SubscriptionPlan) -> SubscriptionPlan:
    session.add(plan)
    session.flush()
    return plan


def subscription_count(*, session: Session, plan_id: int) -> int:
    """How many tenant subscriptions (of any status) name the plan."""
    statement = (
        select(func.count())
        .select_from(TenantSubscription)
        .where(TenantSubscription.plan_id == plan_id)
    )
    return int(session.exec(statement).one())


def delete(*, session: Session, plan: SubscriptionPlan) -> None:
    session.delete(plan)
    session.flush()
