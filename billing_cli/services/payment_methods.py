"""A tenant's cards: which one is the default, detaching one, making one the default.

Both writes go through the intent journal (:mod:`.journal`). Detaching the default card while
the tenant's subscription is live would leave its next invoice with nothing to charge, so that
is refused unless the operator forces it. Making a card the default sets it on the customer
(one-off charges and invoices) and on the live subscription (which would otherwise keep the
card it was created with): two steps, each its own idempotency key, each a recovery point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session

from billing_cli.errors import Conflict, NotFound, UsageError
from billing_cli.gateway import Gateway, PaymentMethodInfo
from billing_cli.models import Change, Invocation
from billing_cli.repository import Database
from billing_cli.services import audit, journal
from billing_cli.services import tenants as tenant_rules
from billing_cli.services.journal import Intent
from billing_cli.services.stripe_ops import TenantRef, planned_writes

ENDED = frozenset({"canceled", "incomplete_expired"})


def card_view(method: PaymentMethodInfo | None) -> dict[str, Any] | None:
    """A card as support reads it out: brand, last 4, expiry."""
    if method is None:
        return None
    expires = (
        f"{method.exp_month:02d}/{method.exp_year}"
        if method.exp_month and method.exp_year
        else None
    )
    return {"id": method.id, "brand": method.brand, "last4": method.last4, "expires": expires}


def default_card(gateway: Gateway, customer_id: str | None) -> dict[str, Any] | None:
    """The customer's default card, or None when there is no customer or no default."""
    if not customer_id:
        return None
    default = gateway.retrieve_customer(customer_id).default_payment_method
    if not default:
        return None
    for method in gateway.list_payment_methods(customer_id):
        if method.id == default:
            return card_view(method)
    return {"id": default, "brand": None, "last4": None, "expires": None}


def detach(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    tenant_slug: str,
    payment_method: str,
    force: bool,
) -> Change:
    """Detach a card from the tenant's customer."""
    tenant, _customer, attached, default = _cards(db, gateway, tenant_slug, payment_method)
    live = bool(tenant.subscription_id) and tenant.subscription_status not in ENDED
    target = f"payment_method:{tenant.slug}"

    def check(_session: Session) -> None:
        if attached is None:
            raise NotFound(f"{payment_method} is not one of {tenant.slug}'s saved cards")
        if default == payment_method and live and not force:
            raise Conflict(
                f"{payment_method} is the default card of {tenant.slug}, whose subscription "
                f"{tenant.subscription_id} is {tenant.subscription_status}: its next invoice "
                "would have nothing to charge. Make another card the default first "
                "(`billing payments methods default`), or pass --force"
            )

    intent = _begin(db, invocation, "payment_method.detach", tenant, payment_method, check)
    if attached is not None:  # else an interrupted run already detached it
        _step(
            db,
            invocation,
            intent,
            "detach",
            lambda key: gateway.detach_payment_method(payment_method, idempotency_key=key).id,
            what=f"detaching {payment_method} from {tenant.slug}",
        )
    before = {"payment_method": payment_method, "attached": True, "default": default}
    after = {
        "payment_method": payment_method,
        "attached": False,
        "default": None if default == payment_method else default,
    }
    was_default = " (it was the default)" if default == payment_method else ""
    _finish(
        db, invocation, intent, tenant.slug, target, f"detached {payment_method}", before, after
    )
    verb = "would detach" if invocation.dry_run else "detached"
    return Change(
        target=target,
        action="detach",
        before=before,
        after=after,
        dry_run=invocation.dry_run,
        message=f"{verb} {payment_method} from {tenant.slug}{was_default}",
        stripe_writes=planned_writes(gateway),
    )


def make_default(
    db: Database, gateway: Gateway, *, invocation: Invocation, tenant_slug: str, payment_method: str
) -> Change:
    """Make an attached card the default of the customer and of its live subscription."""
    tenant, customer_id, attached, default = _cards(db, gateway, tenant_slug, payment_method)
    live = bool(tenant.subscription_id) and tenant.subscription_status not in ENDED
    target = f"payment_method:{tenant.slug}"

    def check(_session: Session) -> None:
        if attached is None:
            raise NotFound(
                f"{payment_method} is not one of {tenant.slug}'s saved cards; attach it with "
                "`billing payments methods attach` first"
            )

    intent = _begin(db, invocation, "payment_method.default", tenant, payment_method, check)
    _step(
        db,
        invocation,
        intent,
        "customer",
        lambda key: (
            gateway.set_default_payment_method(customer_id, payment_method, idempotency_key=key).id
        ),
        what=f"making {payment_method} {tenant.slug}'s default card",
    )
    if live and tenant.subscription_id:
        subscription_id = tenant.subscription_id
        _step(
            db,
            invocation,
            intent,
            "subscription",
            lambda key: (
                gateway.set_subscription_payment_method(
                    subscription_id, payment_method, idempotency_key=key
                ).id
            ),
            what=f"making {payment_method} the card of subscription {subscription_id}",
        )
    before = {"default": default}
    after = {"default": payment_method, "subscription": tenant.subscription_id if live else None}
    _finish(
        db, invocation, intent, tenant.slug, target, f"default card {payment_method}", before, after
    )
    verb = "would make" if invocation.dry_run else "made"
    also = f" and of subscription {tenant.subscription_id}" if live else ""
    return Change(
        target=target,
        action="default",
        before=before,
        after=after,
        dry_run=invocation.dry_run,
        message=f"{verb} {payment_method} the default card of {tenant.slug}{also}",
        stripe_writes=planned_writes(gateway),
    )


# -- helpers ---------------------------------------------------------------------------------


def _cards(
    db: Database, gateway: Gateway, tenant_slug: str, payment_method: str
) -> tuple[TenantRef, str, PaymentMethodInfo | None, str | None]:
    """The tenant, its customer, the named card (None if not attached) and the default."""
    if not payment_method.startswith("pm_"):
        raise UsageError(f"payment method must be an id like pm_..., not {payment_method!r}")
    with db.read() as session:
        tenant = TenantRef.of(session, tenant_rules.require_tenant(session, tenant_slug))
    if not tenant.customer_id:
        raise NotFound(f"tenant {tenant.slug} has no Stripe customer, so no saved cards")
    methods = gateway.list_payment_methods(tenant.customer_id)
    attached = next((m for m in methods if m.id == payment_method), None)
    default = gateway.retrieve_customer(tenant.customer_id).default_payment_method
    return tenant, tenant.customer_id, attached, default


def _begin(
    db: Database,
    invocation: Invocation,
    operation: str,
    tenant: TenantRef,
    payment_method: str,
    check: Callable[[Session], None],
) -> Intent:
    return journal.begin(
        db,
        operation=operation,
        target=f"payment_method:{tenant.slug}",
        tenant_slug=tenant.slug,
        params={"payment_method": payment_method},
        invocation=invocation,
        check=check,
    )


def _step(
    db: Database,
    invocation: Invocation,
    intent: Intent,
    step: str,
    send: Callable[[str], str],
    *,
    what: str,
) -> None:
    with journal.failure_closes(db, intent, invocation=invocation, what=f"{what}"):
        journal.call(db, intent, step, send, what=what)


def _finish(
    db: Database,
    invocation: Invocation,
    intent: Intent,
    tenant_slug: str,
    target: str,
    outcome: str,
    before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    with db.transaction(dry_run=invocation.dry_run) as session:
        audit.record(
            session,
            invocation=invocation,
            target=target,
            tenant_slug=tenant_slug,
            outcome=outcome,
            before=before,
            after=after,
        )
        journal.close(session, intent, succeeded=True, object_id=after.get("payment_method"))
