"""What each handled event type does to the tenant database, inside the engine's transaction.

Every handler finds the tenant (by subscription id, then customer id, then the object's
``metadata.tenant`` slug, which this tool sets on the customers and subscriptions it creates),
writes the field group its event owns only when the event is newer than what the group already
holds (see :mod:`.policy` for why that makes delivery order and duplicates irrelevant), then
re-derives the effective status and the tenant's billing suspension. Suspensions and
reactivations go through :func:`billing_cli.services.tenants.suspend`/``reactivate`` so they
write the same audit entry and notification as a person's would, with operator
``webhook:<event id>``.

``customer.updated`` syncs the tenant's name and e-mail from the Stripe customer (the customers
are created from them, and support staff edit the billing e-mail in the Dashboard); only
non-empty values are copied, with an audit entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from billing_cli.models import Change, Invocation, Notification, Tenant, TenantSubscription, utcnow
from billing_cli.repository import notifications as notifications_repo
from billing_cli.repository import plans as plans_repo
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.repository import tenants as tenants_repo
from billing_cli.services import audit, tenants
from billing_cli.services.views import subscription_view, tenant_view
from billing_cli.services.webhooks import policy, queries
from billing_cli.services.webhooks.payloads import (
    ParsedEvent,
    read_customer,
    read_invoice,
    read_subscription,
)
from billing_cli.timeparse import iso

log = logging.getLogger("billing.webhooks")


@dataclass
class Context:
    """One event being applied in one transaction."""

    session: Session
    event: ParsedEvent
    invocation: Invocation
    max_failed_attempts: int
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HandlerResult:
    status: str  # "processed" | "ignored"
    reason: str = ""


Handler = Callable[[Context], HandlerResult]
Found = tuple[TenantSubscription, Tenant]


def resolve(
    session: Session, *, subscription_id: str | None, customer_id: str | None, slug: str | None
) -> Found | None:
    """The tenant's row (locked), found by subscription id, customer id, then tenant slug.

    A tenant found by slug that has no row yet gets a new, unsaved one.
    """
    found = None
    if subscription_id:
        found = queries.row_and_tenant(session=session, subscription_id=subscription_id)
    if found is None and customer_id:
        found = queries.row_and_tenant(session=session, customer_id=customer_id)
    if found is not None:
        return found
    if not slug:
        return None
    tenant = tenants_repo.get_by_slug(session=session, slug=slug, for_update=True)
    if tenant is None or tenant.id is None:
        return None
    row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id, for_update=True)
    return (row or TenantSubscription(tenant_id=tenant.id)), tenant


def _unknown(kind: str, object_id: str | None, customer_id: str | None, slug: str | None) -> str:
    return (
        f"unknown {kind} {object_id or '(no id)'}: no tenant has it, customer "
        f"{customer_id or '(none)'} or metadata tenant {slug or '(none)'}"
    )


def _row_view(row: TenantSubscription) -> dict[str, Any]:
    view = subscription_view(row)
    del view["plan"]
    view["plan_id"] = row.plan_id
    view["stripe_price_id"] = row.stripe_price_id
    return view


def on_subscription(ctx: Context) -> HandlerResult:
    """customer.subscription.created/updated/deleted/trial_will_end: the snapshot register."""
    facts = read_subscription(ctx.event.obj)
    found = resolve(
        ctx.session,
        subscription_id=facts.id,
        customer_id=facts.customer_id,
        slug=facts.tenant_slug,
    )
    if found is None:
        return HandlerResult("ignored", _unknown("subscription", facts.id, facts.customer_id, None))
    row, tenant = found
    before = _row_view(row)
    event = ctx.event
    key = policy.subscription_key(
        event_id=event.id, created=event.created, event_type=event.type, status=facts.status
    )
    stored = row.subscription_event_key
    if row.stripe_subscription_id not in (None, facts.id):
        # Another subscription of the tenant: the newer one wins, and brings fresh registers.
        if event.created < policy.subscription_created(stored):
            ctx.notes.append(f"older than the tenant's subscription {row.stripe_subscription_id}")
            return _finish(ctx, row, tenant, before)
        stored = row.payment_event_key = None
        row.failed_payment_attempts = 0
    if policy.is_newer(key, stored):
        row.subscription_event_key = key
        row.stripe_subscription_id = facts.id
        if facts.customer_id and not policy.is_terminal(row.customer_event_key):
            row.stripe_customer_id = facts.customer_id
        row.stripe_status = facts.status
        if facts.price_id != row.stripe_price_id or row.plan_id is None:
            plan = (
                plans_repo.get_by_price_id(session=ctx.session, price_id=facts.price_id)
                if facts.price_id
                else None
            )
            row.plan_id = plan.id if plan else None
            if plan is None:
                ctx.notes.append(f"price {facts.price_id} matches no plan")
        row.stripe_price_id = facts.price_id
        row.current_period_start = facts.period_start
        row.current_period_end = facts.period_end
        row.trial_end = facts.trial_end
        row.cancel_at_period_end = facts.cancel_at_period_end
        row.canceled_at = facts.canceled_at
    else:
        ctx.notes.append("older than the subscription state already applied")
    if event.type == "customer.subscription.trial_will_end" and row.status != "canceled":
        payload = {"subscription": facts.id, "trial_end": iso(facts.trial_end)}
        _notify(ctx, tenant, "trial_will_end", payload)
    return _finish(ctx, row, tenant, before)


def on_invoice(ctx: Context) -> HandlerResult:
    """invoice.paid/payment_succeeded/payment_failed: the payment register; upcoming: notify."""
    facts = read_invoice(ctx.event.obj)
    if facts.subscription_id is None:
        return HandlerResult("ignored", f"invoice {facts.id} is not for a subscription")
    found = resolve(
        ctx.session,
        subscription_id=facts.subscription_id,
        customer_id=facts.customer_id,
        slug=facts.tenant_slug,
    )
    if found is None:
        return HandlerResult(
            "ignored",
            _unknown("subscription", facts.subscription_id, facts.customer_id, facts.tenant_slug),
        )
    row, tenant = found
    if row.stripe_subscription_id not in (None, facts.subscription_id):
        return HandlerResult(
            "ignored",
            f"invoice for subscription {facts.subscription_id}, but tenant {tenant.slug}'s "
            f"subscription is {row.stripe_subscription_id}",
        )
    before = _row_view(row)
    event = ctx.event
    money = {"amount_due": facts.amount_due, "currency": facts.currency, "invoice": facts.id}
    if event.type == "invoice.upcoming":
        _notify(ctx, tenant, "upcoming_invoice", {**money, "subscription": facts.subscription_id})
        return _finish(ctx, row, tenant, before)
    paid = event.type != "invoice.payment_failed"
    attempts = 0 if paid else max(1, facts.attempt_count)
    key = policy.payment_key(
        event_id=event.id,
        created=event.created,
        invoice_created=facts.created,
        invoice_period_end=facts.period_end,
        paid=paid,
        attempt_count=facts.attempt_count,
    )
    if policy.is_newer(key, row.payment_event_key):
        row.payment_event_key = key
        row.failed_payment_attempts = attempts
        row.stripe_subscription_id = facts.subscription_id
        terminal = policy.is_terminal(row.customer_event_key)
        if facts.customer_id and row.stripe_customer_id is None and not terminal:
            row.stripe_customer_id = facts.customer_id
        if not paid:
            payload = {**money, "attempt_count": attempts}
            payload["next_payment_attempt"] = facts.next_payment_attempt
            _notify(ctx, tenant, "payment_failed", payload)
    else:
        ctx.notes.append("older than the payment state already applied")
    return _finish(ctx, row, tenant, before)


def on_customer(ctx: Context) -> HandlerResult:
    """customer.created: log; updated: sync name and e-mail; deleted: forget the customer id."""
    facts = read_customer(ctx.event.obj)
    found = resolve(ctx.session, subscription_id=None, customer_id=facts.id, slug=facts.tenant_slug)
    if found is None:
        return HandlerResult("ignored", _unknown("customer", facts.id, None, facts.tenant_slug))
    row, tenant = found
    event = ctx.event
    if event.type == "customer.created":
        log.info("customer %s created for tenant %s", facts.id, tenant.slug)
        return HandlerResult("processed", f"customer of tenant {tenant.slug}; nothing to change")
    before = _row_view(row)
    if facts.deleted or event.type == "customer.deleted":
        row.customer_event_key = policy.customer_register(row.customer_event_key, deleted=True)
        if row.stripe_customer_id in (None, facts.id):
            row.stripe_customer_id = None
        return _finish(ctx, row, tenant, before)
    key = policy.customer_key(event_id=event.id, created=event.created)
    if not policy.customer_update_is_newer(key, row.customer_event_key):
        ctx.notes.append("older than the customer state already applied")
    else:
        row.customer_event_key = policy.customer_register(row.customer_event_key, update=key)
        if not policy.is_terminal(row.customer_event_key):
            row.stripe_customer_id = row.stripe_customer_id or facts.id
        _sync_tenant(ctx, tenant, name=facts.name, email=facts.email)
    return _finish(ctx, row, tenant, before)


def _sync_tenant(ctx: Context, tenant: Tenant, *, name: str | None, email: str | None) -> None:
    before = tenant_view(tenant)
    tenant.name = name or tenant.name
    tenant.email = email or tenant.email
    after = tenant_view(tenant)
    if after == before:
        return
    ctx.session.add(tenant)
    target = f"tenant:{tenant.slug}"
    audit.record(
        ctx.session,
        invocation=ctx.invocation,
        target=target,
        tenant_slug=tenant.slug,
        outcome="synced name and email from Stripe",
        before=before,
        after=after,
    )
    ctx.changes.append(
        Change(
            target=target,
            action="sync",
            before=before,
            after=after,
            dry_run=ctx.invocation.dry_run,
            message=f"synced tenant {tenant.slug}'s name and email from Stripe",
        )
    )


def _notify(ctx: Context, tenant: Tenant, kind: str, payload: dict[str, Any]) -> None:
    assert tenant.id is not None
    payload = {**payload, "event": ctx.event.id}
    notifications_repo.add(
        session=ctx.session,
        notification=Notification(
            tenant_id=tenant.id, kind=kind, payload=payload, created_at=utcnow()
        ),
    )
    ctx.notes.append(f"notification {kind} for {tenant.slug}")


def _finish(
    ctx: Context, row: TenantSubscription, tenant: Tenant, before: dict[str, Any]
) -> HandlerResult:
    """Re-derive the effective status and the tenant's suspension; record what changed.

    ``last_event_created`` is the newest event that reached the row, applied or stale, so it
    too is the same whatever the delivery order.
    """
    row.status = policy.effective_status(row)
    row.last_event_created = max(row.last_event_created or 0, ctx.event.created)
    after = _row_view(row)
    changed = {k: v for k, v in after.items() if before.get(k) != v}
    changed.pop("last_event_created", None)
    if changed:
        row.updated_at = utcnow()
        ctx.changes.append(
            Change(
                target=f"subscription:{tenant.slug}",
                action=ctx.event.type,
                before=before,
                after=after,
                dry_run=ctx.invocation.dry_run,
                message=f"subscription of {tenant.slug}: {before['status']} -> {after['status']}",
            )
        )
    if row.id is None:
        subscriptions_repo.save(session=ctx.session, subscription=row)
    if row.status is None:  # nothing known about the subscription: no grounds to act
        return HandlerResult("processed", "; ".join(ctx.notes))
    reason = policy.billing_suspension(
        status=row.status,
        attempts=row.failed_payment_attempts,
        max_attempts=ctx.max_failed_attempts,
    )
    change = None
    if reason is not None and tenant.status == "active":
        change = tenants.suspend(
            ctx.session, tenant, reason=reason, by="billing", invocation=ctx.invocation
        )
    elif reason is None and tenant.status == "suspended" and tenant.suspended_by == "billing":
        change = tenants.reactivate(ctx.session, tenant, invocation=ctx.invocation)
    if change is not None:
        ctx.changes.append(change)
    return HandlerResult("processed", "; ".join(ctx.notes))


HANDLERS: dict[str, Handler] = {
    "customer.subscription.created": on_subscription,
    "customer.subscription.updated": on_subscription,
    "customer.subscription.deleted": on_subscription,
    "customer.subscription.trial_will_end": on_subscription,
    "invoice.paid": on_invoice,
    "invoice.payment_succeeded": on_invoice,
    "invoice.payment_failed": on_invoice,
    "invoice.upcoming": on_invoice,
    "customer.created": on_customer,
    "customer.updated": on_customer,
    "customer.deleted": on_customer,
}
