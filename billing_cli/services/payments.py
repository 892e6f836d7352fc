"""One-off charges and saved payment methods.

A charge is a confirmed off-session PaymentIntent. Its idempotency key ties it to the tenant,
the amount, the currency, the description and the tenant's generation (see
:mod:`.stripe_ops`), so a re-run after a timeout cannot charge twice, while a deliberate second
charge tomorrow is a new charge. A declined charge is recorded in the audit trail too: support
needs to see the attempt, and nothing else was changed.
"""

from __future__ import annotations

from typing import Any

from billing_cli.errors import Conflict, GatewayError, UsageError
from billing_cli.gateway import Gateway
from billing_cli.models import Change, Invocation
from billing_cli.money import format_money
from billing_cli.repository import Database
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.services import audit
from billing_cli.services import tenants as tenant_rules
from billing_cli.services.customers import ensure_customer
from billing_cli.services.stripe_ops import planned_writes, stripe_row, tenant_key

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
    if not description.strip() or len(description) > MAX_DESCRIPTION:
        raise UsageError(f"--description must be 1-{MAX_DESCRIPTION} characters")
    shown = format_money(amount, currency)
    try:
        with db.transaction(dry_run=invocation.dry_run) as session:
            tenant = tenant_rules.require_tenant(session, tenant_slug, for_update=True)
            row = stripe_row(session, tenant, create=False)
            if not row.stripe_customer_id:
                raise Conflict(
                    f"tenant {tenant.slug} has no Stripe customer yet; attach a payment method "
                    "with `billing payments methods attach` first"
                )
            payment = gateway.create_payment(
                customer_id=row.stripe_customer_id,
                amount=amount,
                currency=currency,
                description=description.strip(),
                payment_method=None,
                idempotency_key=tenant_key(
                    session, tenant, "payment.create", amount, currency, description.strip()
                ),
            )
            after = {
                "payment_intent": payment.id,
                "status": payment.status,
                "amount": payment.amount,
                "currency": payment.currency,
                "description": payment.description,
            }
            audit.record(
                session,
                invocation=invocation,
                target=f"payment:{tenant.slug}",
                tenant_slug=tenant.slug,
                outcome=f"charged {shown} ({payment.status})",
                before=None,
                after=after,
            )
    except GatewayError as error:
        if not invocation.dry_run:
            _record_failure(db, invocation, tenant_slug, f"charge of {shown} failed: {error}")
        raise
    verb = "would charge" if invocation.dry_run else "charged"
    return Change(
        target=f"payment:{tenant_slug}",
        action="charge",
        before=None,
        after=after,
        dry_run=invocation.dry_run,
        message=f"{verb} {tenant_slug} {shown}: {description.strip()} ({payment.id}, "
        f"{payment.status})",
        stripe_writes=planned_writes(gateway),
    )


def list_methods(db: Database, gateway: Gateway, *, tenant_slug: str) -> list[dict[str, Any]]:
    """The tenant's saved payment methods, the default one marked."""
    with db.read() as session:
        tenant = tenant_rules.require_tenant(session, tenant_slug)
        assert tenant.id is not None
        row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id)
        customer_id = row.stripe_customer_id if row else None
    if not customer_id:
        return []
    default = gateway.retrieve_customer(customer_id).default_payment_method
    return [
        {
            "id": method.id,
            "brand": method.brand,
            "last4": method.last4,
            "expires": f"{method.exp_month:02d}/{method.exp_year}"
            if method.exp_month and method.exp_year
            else None,
            "default": method.id == default,
        }
        for method in gateway.list_payment_methods(customer_id)
    ]


def attach_method(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    tenant_slug: str,
    payment_method: str,
    make_default: bool,
) -> Change:
    """Attach a payment method (creating the customer on first need), optionally as default."""
    if not payment_method.startswith("pm_"):
        raise UsageError(f"payment method must be an id like pm_..., not {payment_method!r}")
    with db.transaction(dry_run=invocation.dry_run) as session:
        tenant = tenant_rules.require_tenant(session, tenant_slug, for_update=True)
        row = stripe_row(session, tenant)
        customer_id = ensure_customer(session, gateway, tenant, row)
        method = gateway.attach_payment_method(
            payment_method,
            customer_id=customer_id,
            idempotency_key=tenant_key(session, tenant, "payment_method.attach", payment_method),
        )
        if make_default:
            gateway.set_default_payment_method(
                customer_id,
                method.id,
                idempotency_key=tenant_key(
                    session, tenant, "payment_method.default", payment_method
                ),
            )
        after = {
            "payment_method": method.id,
            "brand": method.brand,
            "last4": method.last4,
            "default": make_default,
            "customer": customer_id,
        }
        audit.record(
            session,
            invocation=invocation,
            target=f"payment_method:{tenant.slug}",
            tenant_slug=tenant.slug,
            outcome=f"attached {method.id}" + (" as default" if make_default else ""),
            before=None,
            after=after,
        )
    verb = "would attach" if invocation.dry_run else "attached"
    default = " as the default" if make_default else ""
    return Change(
        target=f"payment_method:{tenant_slug}",
        action="attach",
        before=None,
        after=after,
        dry_run=invocation.dry_run,
        message=f"{verb} {payment_method} to {tenant_slug}{default}",
        stripe_writes=planned_writes(gateway),
    )


def _record_failure(db: Database, invocation: Invocation, tenant_slug: str, outcome: str) -> None:
    with db.transaction() as session:
        audit.record(
            session,
            invocation=invocation,
            target=f"payment:{tenant_slug}",
            tenant_slug=tenant_slug,
            outcome=outcome[:500],
            before=None,
            after=None,
        )
