"""Stripe customers for tenants: created on first need, never twice.

A tenant's customer id lives on its TenantSubscription row. When the row has none, an existing
customer tagged with the tenant's slug is adopted (a previous run may have created it and then
failed before the local commit); only then is one created, under an idempotency key tied to the
tenant, so even two racing runs get the same customer back from Stripe.
"""

from __future__ import annotations

from sqlmodel import Session

from billing_cli.gateway import Gateway
from billing_cli.models import Tenant, TenantSubscription, utcnow
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.services.stripe_ops import tenant_key

TENANT_METADATA_KEY = "tenant"


def ensure_customer(
    session: Session, gateway: Gateway, tenant: Tenant, row: TenantSubscription
) -> str:
    """The tenant's Stripe customer id, adopting or creating the customer when needed."""
    if row.stripe_customer_id:
        return row.stripe_customer_id
    customer_id = _adopt(gateway, tenant) or _create(session, gateway, tenant)
    row.stripe_customer_id = customer_id
    row.updated_at = utcnow()
    subscriptions_repo.save(session=session, subscription=row)
    return customer_id


def _adopt(gateway: Gateway, tenant: Tenant) -> str | None:
    for customer in gateway.list_customers(email=tenant.email):
        if not customer.deleted and customer.metadata.get(TENANT_METADATA_KEY) == tenant.slug:
            return customer.id
    return None


def _create(session: Session, gateway: Gateway, tenant: Tenant) -> str:
    customer = gateway.create_customer(
        email=tenant.email,
        name=tenant.name,
        metadata={TENANT_METADATA_KEY: tenant.slug, "tenant_id": str(tenant.id)},
        idempotency_key=tenant_key(session, tenant, "customer.create", tenant.email),
    )
    return customer.id
