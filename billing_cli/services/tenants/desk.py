"""Finding and editing tenants at the support desk.

``list_tenants`` adds each tenant's plan and subscription status and a search over slug, name
and e-mail; ``show_tenant`` adds the default card (brand, last 4, expiry) read from Stripe, which
is the card that pays (:func:`.payment_methods.paying_method_id`); and
``update_tenant`` changes a tenant's name or e-mail here and on its Stripe customer, the Stripe
write through the intent journal (:mod:`.journal`) before the local change, so the two agree.
Stripe is only asked when the tenant has a customer: tenants without one need no API key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from billing_cli.errors import ConfigError, GatewayError, UsageError
from billing_cli.gateway import Gateway
from billing_cli.models import Change, Invocation
from billing_cli.repository import Database
from billing_cli.repository import tenants as tenants_repo
from billing_cli.services import audit, journal
from billing_cli.services.payments.methods import default_card
from billing_cli.services.stripe_ops import ENDED, TenantRef, planned_writes
from billing_cli.services.tenants import rules as tenant_rules
from billing_cli.services.views import tenant_view

MAX_SEARCH = 200


def list_tenants(
    db: Database, *, status: str | None = None, search: str | None = None
) -> list[dict[str, Any]]:
    """Tenants by slug, each with its plan and subscription status (None when it has none)."""
    text = (search or "").strip()
    if len(text) > MAX_SEARCH:
        raise UsageError(f"--search must be at most {MAX_SEARCH} characters")
    with db.read() as session:
        rows = tenants_repo.search_with_subscriptions(
            session=session, status=status, search=text or None
        )
        return [
            {
                **tenant_view(tenant),
                "plan": plan.slug if plan else None,
                "subscription_status": row.status if row else None,
            }
            for tenant, row, plan in rows
        ]


def show_tenant(db: Database, gateway: Callable[[], Gateway], *, slug: str) -> dict[str, Any]:
    """The tenant, its subscription row, recent audit entries, and its default card."""
    detail = tenant_rules.show_tenant(db, slug=slug).to_dict()
    subscription = detail["subscription"] or {}
    customer_id = subscription.get("stripe_customer_id")
    live = (
        subscription.get("stripe_subscription_id")
        if subscription.get("status") not in ENDED
        else None
    )
    detail["default_card"] = None
    if customer_id:
        try:
            detail["default_card"] = default_card(gateway(), customer_id, live)
        except (GatewayError, ConfigError) as error:  # no Stripe key, Stripe down: the local
            detail["default_card_error"] = error.message  # part is still worth showing
    return detail


def update_tenant(
    db: Database,
    gateway: Callable[[], Gateway],
    *,
    invocation: Invocation,
    slug: str,
    name: str | None,
    email: str | None,
) -> Change:
    """Change the tenant's name and/or e-mail, on its Stripe customer first when it has one."""
    if name is None and email is None:
        raise UsageError("nothing to change: give --name and/or --email")
    new_name = tenant_rules.check_name(name) if name is not None else None
    if email is not None:
        tenant_rules.check_email(email)
    with db.read() as session:
        tenant = TenantRef.of(session, tenant_rules.require_tenant(session, slug))
    changes = {
        key: value
        for key, value, old in (("name", new_name, tenant.name), ("email", email, tenant.email))
        if value is not None and value != old
    }
    target = f"tenant:{tenant.slug}"
    if not changes:
        return Change(
            target=target,
            action="update",
            before=None,
            after=None,
            dry_run=invocation.dry_run,
            changed=False,
            message=f"tenant {tenant.slug} already has that name and e-mail",
        )
    writes: tuple[dict[str, Any], ...] = ()
    intent = None
    if tenant.customer_id:
        stripe = gateway()
        intent = journal.begin(
            db,
            operation="customer.update",
            target=target,
            tenant_slug=tenant.slug,
            params=changes,
            invocation=invocation,
        )
        customer_id = tenant.customer_id
        with journal.failure_closes(
            db, intent, invocation=invocation, what=f"updating customer {customer_id}"
        ):
            journal.call(
                db,
                intent,
                "update",
                lambda key: stripe.update_customer(
                    customer_id,
                    name=changes.get("name"),
                    email=changes.get("email"),
                    idempotency_key=key,
                ),
                what=f"updating Stripe customer {customer_id}",
            )
        writes = planned_writes(stripe)
    with db.transaction(dry_run=invocation.dry_run) as session:
        row = tenant_rules.require_tenant(session, slug, for_update=True)
        before = tenant_view(row)
        row.name = changes.get("name", row.name)
        row.email = changes.get("email", row.email)
        session.add(row)
        after = tenant_view(row)
        audit.record(
            session,
            invocation=invocation,
            target=target,
            tenant_slug=tenant.slug,
            outcome="updated " + " and ".join(changes),
            before=before,
            after=after,
        )
        if intent is not None:
            journal.close(session, intent, succeeded=True, object_id=tenant.customer_id)
    verb = "would update" if invocation.dry_run else "updated"
    where = " and its Stripe customer" if tenant.customer_id else ""
    return Change(
        target=target,
        action="update",
        before=before,
        after=after,
        dry_run=invocation.dry_run,
        message=f"{verb} tenant {tenant.slug}{where}: {', '.join(changes)}",
        stripe_writes=writes,
    )
