"""A tenant's cards: which one pays, detaching one, making one the default.

"The default card" means *the card that pays* (docs/architecture.md): Stripe charges the live
subscription's own ``default_payment_method`` first and the customer's invoice default only
when the subscription has none, so :func:`paying_method_id` reads them in that order, and every
screen that names a default card asks it.

Both writes go through the intent journal (:mod:`.journal`). Detaching the default card while
the tenant's subscription is live would leave its next invoice with nothing to charge, so that
is refused unless the operator forces it. Making a card the default sets it on the customer
(one-off charges and invoices) and on the live subscription (which would otherwise keep the
card it was created with): two steps, each its own idempotency key, each a recovery point
(:func:`.stripe_ops.paying_card_step`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session

from billing_cli.errors import Conflict, NotFound, NotFoundInStripe, UsageError
from billing_cli.gateway import Gateway, PaymentMethodInfo
from billing_cli.models import Change, Invocation
from billing_cli.repository import Database
from billing_cli.services import audit, journal
from billing_cli.services.journal import Intent
from billing_cli.services.stripe_ops import (
    ENDED,
    TenantRef,
    live_subscription,
    paying_card_step,
    planned_writes,
)
from billing_cli.services.tenants import rules as tenant_rules


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


def paying_method_id(
    gateway: Gateway, customer_id: str, subscription_id: str | None = None
) -> str | None:
    """The id of the card that pays: the live subscription's own default, else the customer's
    invoice default (None when neither is set)."""
    if subscription_id:
        try:
            live = gateway.retrieve_subscription(subscription_id)
        except NotFoundInStripe:  # gone from Stripe: it bills no more
            live = None
        if live is not None and live.status not in ENDED and live.default_payment_method:
            return live.default_payment_method
    return gateway.retrieve_customer(customer_id).default_payment_method


def default_card(
    gateway: Gateway, customer_id: str | None, subscription_id: str | None = None
) -> dict[str, Any] | None:
    """The card that pays, or None when there is no customer or no default."""
    if not customer_id:
        return None
    return card_of(gateway, customer_id, paying_method_id(gateway, customer_id, subscription_id))


def card_of(gateway: Gateway, customer_id: str, method_id: str | None) -> dict[str, Any] | None:
    """One of the customer's cards as :func:`card_view` shows it (id only if not found)."""
    if not method_id:
        return None
    for method in gateway.list_payment_methods(customer_id):
        if method.id == method_id:
            return card_view(method)
    return {"id": method_id, "brand": None, "last4": None, "expires": None}


def card_label(card: dict[str, Any] | None) -> str:
    """A card in a sentence: ``visa ending 4242 (pm_...)``."""
    if card is None:
        return "no card"
    if not card.get("brand"):
        return str(card["id"])
    return f"{card['brand']} ending {card['last4']} ({card['id']})"


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
    live = live_subscription(tenant) is not None
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
    live = live_subscription(tenant) is not None
    target = f"payment_method:{tenant.slug}"

    def check(_session: Session) -> None:
        if attached is None:
            raise NotFound(
                f"{payment_method} is not one of {tenant.slug}'s saved cards; attach it with "
                "`billing payments methods attach` first"
            )

    intent = _begin(db, invocation, "payment_method.default", tenant, payment_method, check)
    with journal.failure_closes(
        db, intent, invocation=invocation, what=f"making {payment_method} the card that pays"
    ):
        paying_card_step(
            db, gateway, intent, customer_id, payment_method, live_subscription(tenant)
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
    """The tenant, its customer, the named card (None if not attached) and the card that pays."""
    if not payment_method.startswith("pm_"):
        raise UsageError(f"payment method must be an id like pm_..., not {payment_method!r}")
    with db.read() as session:
        tenant = TenantRef.of(session, tenant_rules.require_tenant(session, tenant_slug))
    if not tenant.customer_id:
        raise NotFound(f"tenant {tenant.slug} has no Stripe customer, so no saved cards")
    methods = gateway.list_payment_methods(tenant.customer_id)
    attached = next((m for m in methods if m.id == payment_method), None)
    default = paying_method_id(gateway, tenant.customer_id, live_subscription(tenant))
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
