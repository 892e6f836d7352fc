"""``subs refresh``: pull one tenant's state back from Stripe; and the local write it shares with
``reconcile --fix``.

Plan, read, apply: the tenant's stored ids are read in one short transaction, Stripe is read
with none open (:func:`.stripe_state.read_tenant`), and the answer is applied in a second
transaction that locks the tenant and its row and judges the answer against the row *as it is
then* (a webhook may have moved it meanwhile). :func:`apply_from_stripe` writes Stripe's
subscription through the same last-writer-wins registers as the CLI's own writes
(``subscription_updates.apply_subscription``), forgets a customer Stripe deleted the way
``customer.deleted`` does, applies the billing policy to the tenant
(``subscriptions.follow_billing_policy``) and records one audit entry with the row before and
after. Nothing is ever written to Stripe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from billing_cli.gateway import Gateway
from billing_cli.models import Change, Invocation, Tenant, TenantSubscription, utcnow
from billing_cli.repository import Database
from billing_cli.repository import plans as plans_repo
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.services import audit
from billing_cli.services.reconcile.drift import Drift, LocalTenant, compare
from billing_cli.services.reconcile.stripe_state import StripeState, TenantInStripe, read_tenant
from billing_cli.services.subscriptions.lifecycle import follow_billing_policy
from billing_cli.services.subscriptions.updates import apply_subscription, subscription_row_view
from billing_cli.services.tenants import rules as tenant_rules
from billing_cli.services.webhooks import policy
from billing_cli.services.webhooks.deferred import apply_parked


@dataclass(frozen=True)
class Applied:
    """What one tenant's apply did: the drift it saw, the row before and after, what remains."""

    drift: list[Drift]
    remaining: list[Drift]
    stripe: TenantInStripe
    change: Change


@dataclass(frozen=True)
class RefreshResult:
    """``subs refresh``'s answer: the change, Stripe's subscription and why it was taken."""

    applied: Applied

    def to_dict(self) -> dict[str, Any]:
        data = self.applied.change.to_dict()
        chosen = self.applied.stripe.chosen
        data["subscription"] = chosen.id if chosen else None
        data["choice"] = self.applied.stripe.reason
        data["drift"] = [d.to_dict() for d in self.applied.drift]
        data["remaining"] = [d.to_dict() for d in self.applied.remaining]
        return data


def refresh_subscription(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    tenant_slug: str,
    max_failed_attempts: int = 3,
) -> RefreshResult:
    """Make one tenant's local rows follow Stripe."""
    with db.read() as session:
        tenant = tenant_rules.require_tenant(session, tenant_slug)
        assert tenant.id is not None
        row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id)
        slug, email = tenant.slug, tenant.email
        stored_customer = row.stripe_customer_id if row else None
        recorded = row.stripe_subscription_id if row else None
    state = read_tenant(
        gateway,
        slug=slug,
        email=email,
        stored_customer_id=stored_customer,
        recorded_subscription_id=recorded,
    )
    with db.transaction(dry_run=invocation.dry_run) as session:
        tenant = tenant_rules.require_tenant(session, slug, for_update=True)
        applied = apply_from_stripe(
            session,
            tenant,
            state,
            invocation=invocation,
            max_failed_attempts=max_failed_attempts,
            plan_for_price=plan_prices(session),
        )
    return RefreshResult(applied)


def plan_prices(session: Session) -> dict[str, str]:
    """Plan slug by the Stripe price id each plan stores."""
    return {
        plan.stripe_price_id: plan.slug
        for plan in plans_repo.list_all(session=session)
        if plan.stripe_price_id
    }


def plan_slugs(session: Session) -> dict[int, str]:
    """Plan slug by plan id."""
    return {
        plan.id: plan.slug for plan in plans_repo.list_all(session=session) if plan.id is not None
    }


def apply_from_stripe(
    session: Session,
    tenant: Tenant,
    state: StripeState,
    *,
    invocation: Invocation,
    max_failed_attempts: int,
    plan_for_price: dict[str, str],
) -> Applied:
    """Write Stripe's state for ``tenant`` (locked by the caller) onto its row; audit it."""
    assert tenant.id is not None
    row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id, for_update=True)
    slugs = plan_slugs(session)
    stripe = state.for_tenant(
        tenant.slug,
        stored_customer_id=row.stripe_customer_id if row else None,
        recorded_subscription_id=row.stripe_subscription_id if row else None,
    )
    local = LocalTenant.of(tenant, row, slugs)
    drift = compare(
        local, stripe, plan_for_price=plan_for_price, max_failed_attempts=max_failed_attempts
    )
    target = f"subscription:{tenant.slug}"
    if row is None and stripe.chosen is None:
        return Applied(drift, drift, stripe, _unchanged(target, None, invocation, stripe))
    if row is None:
        row = TenantSubscription(tenant_id=tenant.id, updated_at=utcnow())
        subscriptions_repo.save(session=session, subscription=row)
    before = subscription_row_view(session, row)
    tenant_before = (tenant.status, tenant.suspended_by)
    if stripe.chosen is not None:
        apply_subscription(session, row, stripe.chosen)
    if row.stripe_customer_id and state.customer_gone(row.stripe_customer_id):
        _forget_customer(session, row)
    if row.stripe_customer_id:  # events parked for this customer apply now that it is linked
        subscriptions_repo.save(session=session, subscription=row)
        apply_parked(
            session,
            row.stripe_customer_id,
            max_failed_attempts=max_failed_attempts,
            dry_run=invocation.dry_run,
        )
    if row.status is not None:
        follow_billing_policy(
            session, tenant, row, invocation=invocation, max_failed_attempts=max_failed_attempts
        )
    after = subscription_row_view(session, row)
    remaining = compare(
        LocalTenant.of(tenant, row, slugs),
        stripe,
        plan_for_price=plan_for_price,
        max_failed_attempts=max_failed_attempts,
    )
    if before == after and tenant_before == (tenant.status, tenant.suspended_by):
        return Applied(drift, remaining, stripe, _unchanged(target, before, invocation, stripe))
    fixed = sorted({d.kind for d in drift} - {d.kind for d in remaining})
    outcome = f"followed Stripe ({', '.join(fixed) or 'registers'})"
    if before != after:
        audit.record(
            session,
            invocation=invocation,
            target=target,
            tenant_slug=tenant.slug,
            outcome=outcome,
            before=before,
            after=after,
        )
    verb = "would make" if invocation.dry_run else "made"
    change = Change(
        target=target,
        action="refresh",
        before=before,
        after=after,
        dry_run=invocation.dry_run,
        message=f"{verb} {tenant.slug} follow Stripe: {stripe.reason}",
    )
    return Applied(drift, remaining, stripe, change)


def _forget_customer(session: Session, row: TenantSubscription) -> None:
    """As ``customer.deleted`` does: set the register's terminal flag, clear the stored id.

    Also when the id was just copied from a subscription of that deleted customer."""
    row.customer_event_key = policy.customer_register(row.customer_event_key, deleted=True)
    row.stripe_customer_id = None
    row.updated_at = utcnow()
    subscriptions_repo.save(session=session, subscription=row)


def _unchanged(
    target: str, view: dict[str, Any] | None, invocation: Invocation, stripe: TenantInStripe
) -> Change:
    return Change(
        target=target,
        action="none",
        before=view,
        after=view,
        dry_run=invocation.dry_run,
        changed=False,
        message=f"{target.split(':', 1)[1]} already follows Stripe: {stripe.reason}",
    )
