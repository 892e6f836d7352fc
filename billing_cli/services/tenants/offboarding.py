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
from billing_cli.services import audit, journal
from billing_cli.services.journal import Intent
from billing_cli.services.stripe_ops import TenantRef, planned_writes, stripe_row
from billing_cli.services.subscriptions.updates import ENDED_STATUSES, subscription_row_view
from billing_cli.services.tenants import rules as tenant_rules
from billing_cli.services.views import tenant_view


def remove_tenant(db: Database, gateway: Gateway, *, invocation: Invocation, slug: str) -> Change:
    """Cancel the tenant's subscription now, delete its Stripe customer, delete it locally."""
    with db.read() as session:
        tenant = tenant_rules.require_tenant(session, slug)
        ref = TenantRef.of(session, tenant)
        row = stripe_row(session, tenant, create=False)
        before = {
            "tenant": tenant_view(tenant),
            "subscription": subscription_row_view(session, row) if row.id else None,
        }
    intent = journal.begin(
        db,
        operation="tenant.remove",
        target=f"tenant:{slug}",
        tenant_slug=slug,
        params={"tenant": slug},
        invocation=invocation,
    )
    steps = _stripe_steps(db, gateway, intent, ref)
    with db.transaction(dry_run=invocation.dry_run) as session:
        tenant = tenant_rules.require_tenant(session, slug, for_update=True)
        assert tenant.id is not None
        row = stripe_row(session, tenant, create=False)
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
        journal.close(session, intent, succeeded=True, object_id=ref.customer_id)
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


def _stripe_steps(db: Database, gateway: Gateway, intent: Intent, tenant: TenantRef) -> list[str]:
    """Phase 2: end the subscription, then delete the customer; either may already be gone."""
    steps: list[str] = []
    if tenant.subscription_id and tenant.subscription_status not in ENDED_STATUSES:
        subscription_id = tenant.subscription_id
        try:
            live = gateway.retrieve_subscription(subscription_id)
            if live.status not in ENDED_STATUSES:
                journal.call(
                    db,
                    intent,
                    "cancel",
                    lambda key: gateway.cancel_subscription_now(
                        subscription_id, idempotency_key=key
                    ),
                    what=f"canceling {subscription_id}",
                )
                steps.append(f"cancel subscription {subscription_id}")
        except NotFoundInStripe:
            steps.append(f"subscription {subscription_id} already gone")
    if tenant.customer_id:
        customer_id = tenant.customer_id
        try:
            journal.call(
                db,
                intent,
                "delete",
                lambda key: gateway.delete_customer(customer_id, idempotency_key=key),
                what=f"deleting customer {customer_id}",
            )
            steps.append(f"delete customer {customer_id}")
        except NotFoundInStripe:
            steps.append(f"customer {customer_id} already gone")
    return steps
