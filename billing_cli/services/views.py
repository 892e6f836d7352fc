"""Plain-dict views of rows: what tables render, what ``--json`` prints, what audits store."""

from __future__ import annotations

from typing import Any

from billing_cli.models import (
    AuditEntry,
    Notification,
    SubscriptionPlan,
    Tenant,
    TenantSubscription,
    WebhookEvent,
)
from billing_cli.money import format_money
from billing_cli.timeparse import iso


def tenant_view(tenant: Tenant) -> dict[str, Any]:
    return {
        "slug": tenant.slug,
        "name": tenant.name,
        "email": tenant.email,
        "status": tenant.status,
        "suspended_at": iso(tenant.suspended_at),
        "suspension_reason": tenant.suspension_reason,
        "suspended_by": tenant.suspended_by,
        "created_at": iso(tenant.created_at),
    }


def plan_view(plan: SubscriptionPlan) -> dict[str, Any]:
    return {
        "slug": plan.slug,
        "name": plan.name,
        "amount": plan.amount,
        "currency": plan.currency,
        "price": format_money(plan.amount, plan.currency),
        "interval": plan.interval,
        "interval_count": plan.interval_count,
        "trial_days": plan.trial_days,
        "per_seat": plan.per_seat,
        "active": plan.active,
        "stripe_product_id": plan.stripe_product_id,
        "stripe_price_id": plan.stripe_price_id,
    }


def subscription_view(
    subscription: TenantSubscription, plan: SubscriptionPlan | None = None
) -> dict[str, Any]:
    return {
        "plan": plan.slug if plan else None,
        "stripe_customer_id": subscription.stripe_customer_id,
        "stripe_subscription_id": subscription.stripe_subscription_id,
        "status": subscription.status,
        "current_period_start": iso(subscription.current_period_start),
        "current_period_end": iso(subscription.current_period_end),
        "trial_end": iso(subscription.trial_end),
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "canceled_at": iso(subscription.canceled_at),
        "failed_payment_attempts": subscription.failed_payment_attempts,
        "last_event_created": subscription.last_event_created,
    }


def audit_view(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": iso(entry.at),
        "operator": entry.operator,
        "command": entry.command,
        "arguments": entry.arguments,
        "target": entry.target,
        "dry_run": entry.dry_run,
        "outcome": entry.outcome,
        "before": entry.before,
        "after": entry.after,
    }


def event_view(event: WebhookEvent, *, with_payload: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": event.stripe_event_id,
        "type": event.type,
        "created": iso_from_unix(event.created),
        "api_version": event.api_version,
        "livemode": event.livemode,
        "source": event.source,
        "status": event.status,
        "attempts": event.attempts,
        "error": event.error,
        "received_at": iso(event.received_at),
        "processed_at": iso(event.processed_at),
    }
    if with_payload:
        view["payload"] = event.payload
    return view


def notification_view(notification: Notification, tenant: Tenant) -> dict[str, Any]:
    return {
        "id": notification.id,
        "tenant": tenant.slug,
        "kind": notification.kind,
        "payload": notification.payload,
        "created_at": iso(notification.created_at),
        "state": notification_state(notification),
        "sent_at": iso(notification.sent_at),
        "attempts": notification.attempts,
        "last_error": notification.last_error,
        "next_attempt_at": iso(notification.next_attempt_at),
        "failed_at": iso(notification.failed_at),
        "withdrawn_at": iso(notification.withdrawn_at),
        "withdrawn_reason": notification.withdrawn_reason,
    }


def notification_state(notification: Notification) -> str:
    """sent (the server accepted it), withdrawn (never to be sent), failed (given up) or
    pending (to send or to retry)."""
    if notification.sent_at is not None:
        return "sent"
    if notification.withdrawn_at is not None:
        return "withdrawn"
    return "failed" if notification.failed_at is not None else "pending"


def iso_from_unix(value: int | None) -> str | None:
    from billing_cli.timeparse import from_unix

    return iso(from_unix(value))
