"""What every service that writes to Stripe shares between the journal's phases.

Phase 1 and phase 3 are short transactions; between them, with no session open, a service holds
only plain values: a :class:`TenantRef` instead of the ORM tenant. The Stripe steps that several
commands share (the tenant's customer, a payment method made the default) are here, each a
recovery point of its intent (:mod:`.journal`), so a re-run resumes after the last step done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from billing_cli.gateway import DryRunGateway, Gateway
from billing_cli.models import Tenant, TenantSubscription, utcnow
from billing_cli.repository import Database
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.services import journal
from billing_cli.services.journal import Intent

TENANT_METADATA_KEY = "tenant"
ENDED = frozenset({"canceled", "incomplete_expired"})  # a subscription that bills no more


@dataclass(frozen=True)
class TenantRef:
    """The tenant as read in phase 1: what the Stripe steps need, detached from any session."""

    id: int
    slug: str
    name: str
    email: str
    customer_id: str | None
    subscription_id: str | None
    subscription_status: str | None

    @classmethod
    def of(cls, session: Session, tenant: Tenant) -> TenantRef:
        assert tenant.id is not None
        row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id)
        return cls(
            id=tenant.id,
            slug=tenant.slug,
            name=tenant.name,
            email=tenant.email,
            customer_id=row.stripe_customer_id if row else None,
            subscription_id=row.stripe_subscription_id if row else None,
            subscription_status=row.status if row else None,
        )


def planned_writes(gateway: Gateway) -> tuple[dict[str, Any], ...]:
    """The Stripe writes a dry run would have sent (empty for a real gateway)."""
    if not isinstance(gateway, DryRunGateway):
        return ()
    return tuple(
        {"operation": write.operation, "target": write.target, "params": write.params}
        for write in gateway.planned
    )


def stripe_row(session: Session, tenant: Tenant, *, create: bool = True) -> TenantSubscription:
    """The tenant's TenantSubscription row (created empty on first need), locked for update."""
    assert tenant.id is not None
    row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id, for_update=True)
    if row is None:
        row = TenantSubscription(tenant_id=tenant.id, updated_at=utcnow())
        if create:
            subscriptions_repo.save(session=session, subscription=row)
    return row


def customer_step(db: Database, gateway: Gateway, intent: Intent, tenant: TenantRef) -> str:
    """The tenant's Stripe customer id: stored, made by an earlier run, adopted, or created.

    An existing customer tagged with the tenant's slug is adopted before one is created (a run
    may have created it and died before recording it, possibly more than a day ago).
    """
    known = tenant.customer_id or intent.steps.get("customer")
    if known:
        return str(known)
    customer_id = _adopt(gateway, tenant) or journal.call(
        db,
        intent,
        "customer",
        lambda key: (
            gateway.create_customer(
                email=tenant.email,
                name=tenant.name,
                metadata={TENANT_METADATA_KEY: tenant.slug, "tenant_id": str(tenant.id)}
                | intent.metadata(),
                idempotency_key=key,
            ).id
        ),
        what=f"creating {tenant.slug}'s Stripe customer",
    )
    journal.record_step(db, intent, "customer", customer_id)
    return customer_id


def default_method_step(
    db: Database,
    gateway: Gateway,
    intent: Intent,
    customer_id: str,
    payment_method: str,
    *,
    subscription_id: str | None = None,
) -> str:
    """Attach ``payment_method`` and make it the card that pays; returns the attached id.

    A test token such as pm_card_visa becomes a new PaymentMethod with an id of its own, so the
    default is set to the id ``attach`` returned (remembered as a recovery point). A card already
    attached to the customer is not attached again. ``subscription_id`` names the live
    subscription, whose own default Stripe charges first (:func:`paying_card_step`).
    """
    method_id = attach_step(db, gateway, intent, customer_id, payment_method, reuse_attached=True)
    paying_card_step(db, gateway, intent, customer_id, method_id, subscription_id)
    return method_id


def attach_step(
    db: Database,
    gateway: Gateway,
    intent: Intent,
    customer_id: str,
    payment_method: str,
    *,
    reuse_attached: bool = False,
) -> str:
    """Attach ``payment_method`` to the customer once, as a recovery point; returns its id.

    A re-run takes the id the interrupted run recorded; ``reuse_attached`` also takes a card
    already on the customer (a real ``pm_`` id) instead of attaching it again.
    """
    method_id = intent.steps.get("payment_method")
    if method_id:
        return str(method_id)
    if reuse_attached and _attached(gateway, customer_id, payment_method):
        method_id = payment_method
    else:
        method_id = journal.call(
            db,
            intent,
            "attach",
            lambda key: (
                gateway.attach_payment_method(
                    payment_method, customer_id=customer_id, idempotency_key=key
                ).id
            ),
            what=f"attaching {payment_method}",
        )
    journal.record_step(db, intent, "payment_method", method_id)
    return str(method_id)


def paying_card_step(
    db: Database,
    gateway: Gateway,
    intent: Intent,
    customer_id: str,
    method_id: str,
    subscription_id: str | None,
) -> None:
    """Make an attached card the one that pays (docs/architecture.md, "The card that pays").

    Stripe charges a subscription's own ``default_payment_method`` before the customer's
    invoice default, so setting only the customer's would leave renewals and retries on the old
    card. Two writes, each a recovery point: the customer's default, then the live
    subscription's (when there is one).
    """
    writes: list[tuple[str, str, Callable[[str], object]]] = [
        (
            "default",
            f"making {method_id} the default payment method",
            lambda key: gateway.set_default_payment_method(
                customer_id, method_id, idempotency_key=key
            ),
        )
    ]
    if subscription_id:
        writes.append(
            (
                "subscription_default",
                f"making {method_id} the card of subscription {subscription_id}",
                lambda key: gateway.set_subscription_payment_method(
                    subscription_id, method_id, idempotency_key=key
                ),
            )
        )
    for step, what, send in writes:
        if not intent.steps.get(step):
            journal.call(db, intent, step, send, what=what)
            journal.record_step(db, intent, step, True)


def live_subscription(tenant: TenantRef) -> str | None:
    """The tenant's subscription while it can still be billed (None once it has ended)."""
    if tenant.subscription_id and tenant.subscription_status not in ENDED:
        return tenant.subscription_id
    return None


def _attached(gateway: Gateway, customer_id: str, payment_method: str) -> bool:
    """Whether this very card (not a test token, which makes a new one) is already attached."""
    if payment_method.startswith("pm_card_"):
        return False
    return any(m.id == payment_method for m in gateway.list_payment_methods(customer_id))


def _adopt(gateway: Gateway, tenant: TenantRef) -> str | None:
    for customer in gateway.list_customers(email=tenant.email):
        if not customer.deleted and customer.metadata.get(TENANT_METADATA_KEY) == tenant.slug:
            return customer.id
    return None
