"""Removing a tenant: its subscription ends, its Stripe customer goes, then its local rows.

Stripe first, database last: if the run dies in between, the tenant is still listed locally and
a re-run finishes the job (an already-deleted customer or canceled subscription is not an
error). Audit entries stay, naming the tenant's slug, because the trail must outlive the tenant.
"""

from __future__ import annotations

from billing_cli.errors import NotFoundInStripe
from billing_cli.gateway import Gateway
from billing_cli.models import Change, Invocation
from billing_cli.repository import Database
from billing_cli.repository import notifications as notifications_repo
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.repository import tenants as tenants_repo
from billing_cli.services import audit
from billing_cli.services import tenants as tenant_rules
from billing_cli.services.stripe_ops import planned_writes, stripe_row, tenant_key
from billing_cli.services.subscriptions import ENDED_STATUSES, subscription_row_view
from billing_cli.services.views import tenant_view


def remove_tenant(db: Database, gateway: Gateway, *, invocation: Invocation, slug: str) -> Change:
    """Cancel the tenant's subscription now, delete its Stripe customer, delete it locally."""
    with db.transaction(dry_run=invocation.dry_run) as session:
        tenant = tenant_rules.require_tenant(session, slug, for_update=True)
        assert tenant.id is not None
        row = stripe_row(session, tenant, create=False)
        before = {
            "tenant": tenant_view(tenant),
            "subscription": subscription_row_view(session, row) if row.id else None,
        }
        steps: list[str] = []
        if row.stripe_subscription_id and row.status not in ENDED_STATUSES:
            try:
                live = gateway.retrieve_subscription(row.stripe_subscription_id)
                if live.status not in ENDED_STATUSES:
                    gateway.cancel_subscription_now(
                        live.id,
                        idempotency_key=tenant_key(
                            session, tenant, "subscription.cancel", live.id, "remove"
                        ),
                    )
                    steps.append(f"cancel subscription {live.id}")
            except NotFoundInStripe:
                steps.append(f"subscription {row.stripe_subscription_id} already gone")
        if row.stripe_customer_id:
            try:
                gateway.delete_customer(
                    row.stripe_customer_id,
                    idempotency_key=tenant_key(
                        session, tenant, "customer.delete", row.stripe_customer_id
                    ),
                )
                steps.append(f"delete customer {row.stripe_customer_id}")
            except NotFoundInStripe:
                steps.append(f"customer {row.stripe_customer_id} already gone")
        notifications_repo.delete_for_tenant(session=session, tenant_id=tenant.id)
        if row.id is not None:
            subscriptions_repo.delete(session=session, subscription=row)
        tenants_repo.delete(session=session, tenant=tenant)
        audit.record(
            session,
            invocation=invocation,
            target=f"tenant:{slug}",
            tenant_slug=slug,
            outcome="removed" + (f" ({'; '.join(steps)})" if steps else ""),
            before=before,
            after=None,
        )
    verb = "would remove" if invocation.dry_run else "removed"
    detail = f": {'; '.join(steps)}" if steps else ""
    return Change(
        target=f"tenant:{slug}",
        action="remove",
        before=before,
        after=None,
        dry_run=invocation.dry_run,
        message=f"{verb} tenant {slug}{detail}",
        stripe_writes=planned_writes(gateway),
    )
