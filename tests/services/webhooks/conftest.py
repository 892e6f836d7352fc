"""Fixtures for the webhook engine: a tenant with a known customer, plans with price ids, and an
engine on the ``db`` fixture (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from billing_cli.models import SubscriptionPlan, TenantSubscription, utcnow
from billing_cli.repository import Database
from billing_cli.repository import plans as plans_repo
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.repository import tenants as tenants_repo
from billing_cli.services.views import subscription_view, tenant_view
from billing_cli.services.webhooks import WebhookEngine
from tests.factories import add_tenant

PRICE_BASIC = "price_basic_monthly"
PRICE_PRO = "price_pro_monthly"


@dataclass(frozen=True)
class Acme:
    """The tenant every engine test works on, as the subscribe command would have left it."""

    slug: str = "acme"
    customer_id: str = "cus_acme"
    subscription_id: str = "sub_acme"


def add_plans(db: Database) -> None:
    with db.transaction() as session:
        for slug, price, amount in (("basic", PRICE_BASIC, 1000), ("pro", PRICE_PRO, 3000)):
            plans_repo.add(
                session=session,
                plan=SubscriptionPlan(
                    slug=slug,
                    name=slug.title(),
                    amount=amount,
                    currency="usd",
                    interval="month",
                    stripe_price_id=price,
                    created_at=utcnow(),
                ),
            )


def link_customer(db: Database, slug: str, customer_id: str, subscription_id: str | None) -> None:
    """The row the subscribe command writes: the tenant's customer (and subscription) ids."""
    with db.transaction() as session:
        tenant = tenants_repo.get_by_slug(session=session, slug=slug)
        assert tenant is not None and tenant.id is not None
        subscriptions_repo.save(
            session=session,
            subscription=TenantSubscription(
                tenant_id=tenant.id,
                stripe_customer_id=customer_id,
                stripe_subscription_id=subscription_id,
            ),
        )


@pytest.fixture
def acme(db: Database) -> Acme:
    add_plans(db)
    add_tenant(db, "acme")
    link_customer(db, "acme", "cus_acme", "sub_acme")
    return Acme()


@pytest.fixture
def engine(db: Database) -> WebhookEngine:
    """An engine whose outcomes carry their changes (the tests look at them); the endpoint's
    engine leaves them out, see test_engine.test_the_endpoint_engine_*."""
    return WebhookEngine(db, live_mode=False, max_failed_attempts=3, collect_changes=True)


def state(db: Database, slug: str = "acme") -> dict[str, Any]:
    """The tenant and its subscription row, as plain dicts."""
    with db.read() as session:
        tenant = tenants_repo.get_by_slug(session=session, slug=slug)
        assert tenant is not None and tenant.id is not None
        row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id)
        plan = plans_repo.get(session=session, plan_id=row.plan_id) if row and row.plan_id else None
        return {
            "tenant": tenant_view(tenant),
            "subscription": subscription_view(row, plan) if row else None,
        }
