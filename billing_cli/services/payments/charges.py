"""One-off charges and saved payment methods, through the intent journal.

A charge is a confirmed off-session PaymentIntent made under its intent's key (:mod:`.journal`):
a re-run after a timeout, a cut response or a crash reuses the open intent and its key, so
Stripe answers with the first PaymentIntent instead of charging again, whatever was committed
for the tenant in between. A declined charge closes the intent as failed and is audited:
support needs to see the attempt; a new attempt is then a new intent (and a new charge).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from billing_cli.errors import Conflict, UsageError
from billing_cli.gateway import Gateway, PaymentInfo
from billing_cli.models import Change, Invocation
from billing_cli.money import format_money
from billing_cli.repository import Database
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.services import audit, journal
from billing_cli.services.journal import INTENT_METADATA_KEY, Intent
from billing_cli.services.payments.methods import card_view, paying_method_id
from billing_cli.services.stripe_ops import (
    TENANT_METADATA_KEY,
    TenantRef,
    attach_step,
    customer_step,
    default_method_step,
    live_subscription,
    planned_writes,
    stripe_row,
)
from billing_cli.services.tenants import rules as tenant_rules
from billing_cli.services.webhooks.deferred import apply_parked
from billing_cli.text import stripe_text

MAX_DESCRIPTION = 500


def charge(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    tenant_slug: str,
    amount: int,
    currency: str,
    description: str,
) -> Change:
    """Charge ``amount`` (minor units) to the tenant's default payment method."""
    text = stripe_text(description, option="--description", limit=MAX_DESCRIPTION)
    shown = format_money(amount, currency)
    with db.read() as session:
        tenant = TenantRef.of(session, tenant_rules.require_tenant(session, tenant_slug))
    customer_id = tenant.customer_id
    if not customer_id:
        raise Conflict(
            f"tenant {tenant.slug} has no Stripe customer yet; attach a payment method "
            "with `billing payments methods attach` first"
        )
    target = f"payment:{tenant.slug}"
    intent = journal.begin(
        db,
        operation="payment.charge",
        target=target,
        tenant_slug=tenant.slug,
        params={"customer": customer_id, "amount": amount, "currency": currency, "text": text},
        invocation=invocation,
    )
    with journal.failure_closes(db, intent, invocation=invocation, what=f"charge of {shown}"):
        payment = _payment_step(db, gateway, intent, tenant, customer_id, amount, currency, text)
    after = {
        "payment_intent": payment.id,
        "status": payment.status,
        "amount": payment.amount,
        "currency": payment.currency,
        "description": payment.description,
    }
    with db.transaction(dry_run=invocation.dry_run) as session:
        audit.record(
            session,
            invocation=invocation,
            target=target,
            tenant_slug=tenant.slug,
            outcome=f"charged {shown} ({payment.status})",
            before=None,
            after=after,
        )
        journal.close(session, intent, succeeded=True, object_id=payment.id)
    if invocation.dry_run:
        message = (
            f"would attempt to charge {tenant.slug} {shown}: {text} "
            "(the card may still decline; nothing was sent)"
        )
    else:
        message = f"charged {tenant.slug} {shown}: {text} ({payment.id}, {payment.status})"
    return Change(
        target=target,
        action="charge",
        before=None,
        after=after,
        dry_run=invocation.dry_run,
        message=message,
        stripe_writes=planned_writes(gateway),
    )


def _payment_step(
    db: Database,
    gateway: Gateway,
    intent: Intent,
    tenant: TenantRef,
    customer_id: str,
    amount: int,
    currency: str,
    text: str,
) -> PaymentInfo:
    """Create the PaymentIntent once; past Stripe's key window, find it by metadata first."""
    if intent.key_may_have_expired():
        for found in gateway.list_payments(customer_id=customer_id):
            if found.metadata.get(INTENT_METADATA_KEY) == intent.id:
                return found
    return journal.call(
        db,
        intent,
        "payment",
        lambda key: gateway.create_payment(
            customer_id=customer_id,
            amount=amount,
            currency=currency,
            description=text,
            payment_method=None,
            idempotency_key=key,
            metadata={TENANT_METADATA_KEY: tenant.slug} | intent.metadata(),
        ),
        what=f"the charge of {format_money(amount, currency)} to {tenant.slug}",
    )


def list_methods(db: Database, gateway: Gateway, *, tenant_slug: str) -> list[dict[str, Any]]:
    """The tenant's saved payment methods, the card that pays marked as the default."""
    with db.read() as session:
        tenant = TenantRef.of(session, tenant_rules.require_tenant(session, tenant_slug))
    if not tenant.customer_id:
        return []
    paying = paying_method_id(gateway, tenant.customer_id, live_subscription(tenant))
    return [
        {**view, "default": method.id == paying}
        for method in gateway.list_payment_methods(tenant.customer_id)
        if (view := card_view(method)) is not None
    ]


def attach_method(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    tenant_slug: str,
    payment_method: str,
    make_default: bool,
    max_failed_attempts: int = 3,
) -> Change:
    """Attach a payment method (creating the customer on first need); with ``make_default``
    it becomes the card that pays, for the customer and the live subscription alike."""
    if not payment_method.startswith("pm_"):
        raise UsageError(f"payment method must be an id like pm_..., not {payment_method!r}")
    with db.read() as session:
        tenant = TenantRef.of(session, tenant_rules.require_tenant(session, tenant_slug))
    target = f"payment_method:{tenant.slug}"
    previous = (
        paying_method_id(gateway, tenant.customer_id, live_subscription(tenant))
        if tenant.customer_id
        else None
    )
    intent = journal.begin(
        db,
        operation="payment_method.attach",
        target=target,
        tenant_slug=tenant.slug,
        params={"payment_method": payment_method, "default": make_default},
        invocation=invocation,
    )
    with journal.failure_closes(
        db, intent, invocation=invocation, what=f"attaching {payment_method}"
    ):
        customer_id = customer_step(db, gateway, intent, tenant)
        if make_default:
            method_id = default_method_step(
                db,
                gateway,
                intent,
                customer_id,
                payment_method,
                subscription_id=live_subscription(tenant),
            )
        else:
            method_id = attach_step(db, gateway, intent, customer_id, payment_method)
    before = {"payment_method": None, "default": previous}
    after = {
        "payment_method": method_id,
        "default": method_id if make_default else previous,
        "customer": customer_id,
    }
    with db.transaction(dry_run=invocation.dry_run) as session:
        _link_customer(session, tenant_slug, customer_id, max_failed_attempts, invocation.dry_run)
        audit.record(
            session,
            invocation=invocation,
            target=target,
            tenant_slug=tenant.slug,
            outcome=f"attached {method_id}" + (" as default" if make_default else ""),
            before=before,
            after=after,
        )
        journal.close(session, intent, succeeded=True, object_id=method_id)
    verb = "would attach" if invocation.dry_run else "attached"
    default = ""
    if make_default:
        subscription = live_subscription(tenant)
        also = f", also of subscription {subscription}" if subscription else ""
        default = f" as the default card{also}"
    return Change(
        target=target,
        action="attach",
        before=before,
        after=after,
        dry_run=invocation.dry_run,
        message=f"{verb} {payment_method} to {tenant_slug}{default}",
        stripe_writes=planned_writes(gateway),
    )


def _link_customer(
    session: Session, tenant_slug: str, customer_id: str, max_failed_attempts: int, dry_run: bool
) -> None:
    """Store the tenant's customer; events parked for that customer apply now."""
    tenant = tenant_rules.require_tenant(session, tenant_slug, for_update=True)
    row = stripe_row(session, tenant)
    if row.stripe_customer_id != customer_id:
        row.stripe_customer_id = customer_id
        subscriptions_repo.save(session=session, subscription=row)
        apply_parked(session, customer_id, max_failed_attempts=max_failed_attempts, dry_run=dry_run)
