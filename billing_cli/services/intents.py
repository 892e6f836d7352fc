"""What on-call needs of the Stripe write journal: see open intents, finish one, give one up.

``resume`` re-runs the command an intent was recorded for, with its recorded parameters: the
journal then finds the open intent and finishes it under the same keys (see :mod:`.journal`).
``abandon`` closes an open intent without touching Stripe; it exists for the case a person has
checked in Stripe's dashboard that the write did not happen and the command cannot be re-run
as it was (the tenant or plan changed since). It is audited.
"""

from __future__ import annotations

from typing import Any

from billing_cli.errors import Conflict, NotFound, UsageError
from billing_cli.gateway import Gateway
from billing_cli.models import OPEN_INTENT_STATUSES, Change, Invocation, StripeIntent, utcnow
from billing_cli.repository import Database
from billing_cli.repository import intents as intents_repo
from billing_cli.services import audit
from billing_cli.timeparse import iso


def intent_view(intent: StripeIntent) -> dict[str, Any]:
    """An intent as people and scripts see it (never its idempotency key)."""
    return {
        "id": intent.id,
        "operation": intent.operation,
        "target": intent.target,
        "tenant": intent.tenant_slug,
        "status": intent.status,
        "stripe_object": intent.stripe_object_id,
        "attempts": intent.attempts,
        "operator": intent.operator,
        "command": intent.command,
        "params": intent.params,
        "steps": intent.steps,
        "error": intent.error,
        "created_at": iso(intent.created_at),
        "finished_at": iso(intent.finished_at),
    }


def list_intents(
    db: Database, *, open_only: bool = False, tenant_slug: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    with db.read() as session:
        rows = intents_repo.list_recent(
            session=session, open_only=open_only, tenant_slug=tenant_slug, limit=limit
        )
        return [intent_view(row) for row in rows]


def show_intent(db: Database, *, intent_id: str) -> dict[str, Any]:
    with db.read() as session:
        return intent_view(_require(db, session, intent_id))


def resume_intent(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    intent_id: str,
    max_failed_attempts: int,
) -> Change:
    """Re-run an open intent's command with its recorded parameters."""
    with db.read() as session:
        intent = _require(db, session, intent_id)
        if intent.status not in OPEN_INTENT_STATUSES:
            raise Conflict(f"intent {intent_id} is already {intent.status}; nothing to resume")
        operation, params, tenant = intent.operation, dict(intent.params or {}), intent.tenant_slug
    return _run(db, gateway, invocation, operation, params, tenant, max_failed_attempts)


def abandon_intent(db: Database, *, invocation: Invocation, intent_id: str, reason: str) -> Change:
    """Close an open intent as failed without calling Stripe (audited, with the reason)."""
    if not reason.strip():
        raise UsageError("--reason is required: say what was checked in Stripe")
    with db.transaction(dry_run=invocation.dry_run) as session:
        intent = intents_repo.get(session=session, intent_id=intent_id, for_update=True)
        if intent is None:
            raise NotFound(f"no intent {intent_id}; `billing intents list` shows them")
        if intent.status not in OPEN_INTENT_STATUSES:
            raise Conflict(f"intent {intent_id} is already {intent.status}")
        before = intent_view(intent)
        now = utcnow()
        intent.status = "failed"
        intent.open_scope = None
        intent.error = f"abandoned by {invocation.operator}: {reason.strip()}"[:2000]
        intent.finished_at = now
        intent.updated_at = now
        session.add(intent)
        after = intent_view(intent)
        audit.record(
            session,
            invocation=invocation,
            target=f"intent:{intent_id}",
            tenant_slug=intent.tenant_slug,
            outcome=f"abandoned {intent.operation} on {intent.target}",
            before={"status": before["status"]},
            after={"status": after["status"], "error": after["error"]},
        )
    verb = "would abandon" if invocation.dry_run else "abandoned"
    return Change(
        target=f"intent:{intent_id}",
        action="abandon",
        before={"status": before["status"]},
        after={"status": after["status"]},
        dry_run=invocation.dry_run,
        message=f"{verb} intent {intent_id} ({before['operation']} on {before['target']}); "
        "Stripe was not called",
    )


def _require(db: Database, session: Any, intent_id: str) -> StripeIntent:
    intent = intents_repo.get(session=session, intent_id=intent_id)
    if intent is None:
        raise NotFound(f"no intent {intent_id}; `billing intents list` shows them")
    return intent


def _run(
    db: Database,
    gateway: Gateway,
    invocation: Invocation,
    operation: str,
    params: dict[str, Any],
    tenant: str | None,
    max_failed_attempts: int,
) -> Change:
    """Dispatch to the service that recorded the intent (imports kept local: no cycles)."""
    from billing_cli.services.catalog import plan_sync
    from billing_cli.services.payments import charges as payments
    from billing_cli.services.payments import history as payment_history
    from billing_cli.services.payments import invoices, recovery
    from billing_cli.services.payments import methods as payment_methods
    from billing_cli.services.subscriptions import lifecycle as subscriptions
    from billing_cli.services.tenants import desk as tenant_desk
    from billing_cli.services.tenants import offboarding
    from billing_cli.services.webhooks import endpoints as webhook_endpoints

    common: dict[str, Any] = {"invocation": invocation}
    if operation == "subscription.create":
        return subscriptions.create_subscription(
            db,
            gateway,
            **common,
            tenant_slug=str(tenant),
            plan_slug=params["plan"],
            payment_method=params.get("payment_method"),
            trial_days=params.get("trial_days"),
            max_failed_attempts=max_failed_attempts,
        )
    if operation == "subscription.upgrade":
        return subscriptions.upgrade_subscription(
            db,
            gateway,
            **common,
            tenant_slug=str(tenant),
            plan_slug=params["plan"],
            proration=params["proration"],
            preview=False,
            max_failed_attempts=max_failed_attempts,
        ).change
    if operation == "subscription.cancel":
        return subscriptions.cancel_subscription(
            db,
            gateway,
            **common,
            tenant_slug=str(tenant),
            now=bool(params["now"]),
            max_failed_attempts=max_failed_attempts,
        )
    if operation == "subscription.resume":
        return subscriptions.resume_subscription(
            db, gateway, **common, tenant_slug=str(tenant), max_failed_attempts=max_failed_attempts
        )
    if operation == "payment.charge":
        return payments.charge(
            db,
            gateway,
            **common,
            tenant_slug=str(tenant),
            amount=int(params["amount"]),
            currency=params["currency"],
            description=params["text"],
        )
    if operation == "payment_method.attach":
        return payments.attach_method(
            db,
            gateway,
            **common,
            tenant_slug=str(tenant),
            payment_method=params["payment_method"],
            make_default=bool(params["default"]),
        )
    if operation == "invoice.pay":
        return invoices.pay_invoice(
            db,
            gateway,
            **common,
            invoice_id=params["invoice"],
            payment_method=params.get("payment_method"),
            max_failed_attempts=max_failed_attempts,
        )
    if operation == "invoice.void":
        return invoices.void_invoice(db, gateway, **common, invoice_id=params["invoice"])
    if operation == "invoice.mark_uncollectible":
        return invoices.mark_uncollectible(db, gateway, **common, invoice_id=params["invoice"])
    if operation == "payment.refund":
        return payment_history.refund_minor(
            db,
            gateway,
            **common,
            payment_id=params["payment"],
            amount=params.get("amount"),
            reason=params.get("reason"),
        )
    if operation == "payment_method.detach":
        return payment_methods.detach(
            db,
            gateway,
            **common,
            tenant_slug=str(tenant),
            payment_method=params["payment_method"],
            force=True,
        )
    if operation == "payment_method.default":
        return payment_methods.make_default(
            db, gateway, **common, tenant_slug=str(tenant), payment_method=params["payment_method"]
        )
    if operation == "payment.recover":
        return recovery.recover(
            db,
            gateway,
            **common,
            tenant_slug=str(tenant),
            payment_method=params["payment_method"],
            max_failed_attempts=max_failed_attempts,
        )
    if operation == "customer.update":
        return tenant_desk.update_tenant(
            db,
            lambda: gateway,
            **common,
            slug=str(tenant),
            name=params.get("name"),
            email=params.get("email"),
        )
    if operation == "tenant.remove":
        return offboarding.remove_tenant(db, gateway, **common, slug=str(tenant))
    if operation in _ADJUSTMENTS:
        return _adjustment(
            db, gateway, invocation, operation, params, str(tenant), max_failed_attempts
        )
    if operation == "plan.sync":
        report = plan_sync.sync_plans(
            db, gateway, **common, archive_stale=bool(params.get("archive_stale"))
        )
        mine = [result for result in report.plans if result.slug == params["slug"]]
        done = mine[0].action if mine else "unchanged"
        return Change(
            target=f"plan:{params['slug']}",
            action="sync",
            before=mine[0].before if mine else None,
            after=mine[0].after if mine else None,
            dry_run=invocation.dry_run,
            message=f"plans sync finished; plan {params['slug']}: {done}",
        )
    if operation == "reconcile.cancel":
        from billing_cli.services.reconcile import compare as reconcile

        subscription_id = params["subscription"]
        after = reconcile.cancel_unwanted(
            db,
            gateway,
            **common,
            subscription_id=subscription_id,
            target=f"subscription:{tenant}" if tenant else f"stripe_subscription:{subscription_id}",
            tenant=tenant,
            outcome=f"canceled {subscription_id} in Stripe (reconcile, resumed)",
        )
        return Change(
            target=f"stripe_subscription:{subscription_id}",
            action="cancel",
            before=None,
            after={"subscription": after.id, "status": after.status},
            dry_run=invocation.dry_run,
            message=f"canceled {subscription_id} ({after.status})",
        )
    if operation == "webhook_endpoint.create":
        # the answer to finish it carries the signing secret, which only the command prints
        raise Conflict(
            f"re-run `billing webhooks setup {params.get('url', 'URL')}` to finish this "
            "intent: it prints (or writes) the endpoint's signing secret"
        )
    if operation in webhook_endpoints.OPERATIONS:
        return webhook_endpoints.change_endpoint(
            db,
            gateway,
            **common,
            endpoint_id=str(params["endpoint"]),
            action=webhook_endpoints.OPERATIONS[operation],
        )
    raise Conflict(f"intent operation {operation!r} cannot be resumed by this version")


_ADJUSTMENTS = frozenset(
    {
        "coupon.create",
        "coupon.delete",
        "subscription.quantity",
        "subscription.discount",
        "subscription.remove_discount",
        "customer.credit",
        "subscription.extend_trial",
        "subscription.end_trial",
        "subscription.pause",
        "subscription.unpause",
    }
)


def _adjustment(
    db: Database,
    gateway: Gateway,
    invocation: Invocation,
    operation: str,
    params: dict[str, Any],
    tenant: str,
    max_failed_attempts: int,
) -> Change:
    """Finish a subscription adjustment (services/subscriptions/adjustments.py) with its
    recorded parameters.

    The paused-access policy is read from the settings the resuming command runs with."""
    from billing_cli.config import load_settings
    from billing_cli.services.subscriptions import adjustments
    from billing_cli.timeparse import from_iso

    if operation == "coupon.create":
        from billing_cli.services.catalog import discounts as coupons

        currency = params.get("currency")
        minor = params.get("amount_off")
        return coupons.create_coupon(
            db,
            gateway,
            invocation=invocation,
            coupon_id=params["coupon"],
            percent_off=params.get("percent_off"),
            amount_off=None if minor is None or currency is None else _major(int(minor), currency),
            currency=currency,
            duration=params["duration"],
            months=params.get("months"),
        )
    if operation == "coupon.delete":
        from billing_cli.services.catalog import discounts as coupons

        return coupons.delete_coupon(db, gateway, invocation=invocation, coupon_id=params["coupon"])
    rules = adjustments.BillingRules(
        max_failed_attempts=max_failed_attempts, paused_access=load_settings().paused_access
    )
    common: dict[str, Any] = {"invocation": invocation, "tenant_slug": tenant, "rules": rules}
    if operation == "subscription.extend_trial":
        return adjustments.extend_trial(
            db, gateway, **common, until=from_iso(params.get("until")), days=params.get("days")
        ).change
    if operation == "subscription.end_trial":
        return adjustments.end_trial(db, gateway, **common, preview=False).change
    if operation == "subscription.pause":
        return adjustments.pause_collection(
            db,
            gateway,
            **common,
            behavior=params["behavior"],
            resumes_at=from_iso(params.get("resumes_at")),
        ).change
    if operation == "subscription.unpause":
        return adjustments.unpause_collection(db, gateway, **common).change
    if operation == "subscription.quantity":
        return adjustments.change_quantity(
            db,
            gateway,
            **common,
            quantity=int(params["quantity"]),
            proration=params["proration"],
            preview=False,
        ).change
    from billing_cli.services.catalog import discounts

    if operation in ("subscription.discount", "subscription.remove_discount"):
        return discounts.set_discount(
            db, gateway, **common, coupon_id=params.get("coupon"), preview=False
        ).change
    if operation == "customer.credit":
        amount = int(params["amount"])  # Stripe's sign: negative was a credit
        return discounts.credit(
            db,
            gateway,
            invocation=invocation,
            tenant_slug=tenant,
            amount=_major(-amount, params["currency"]),
            currency=params["currency"],
            reason=params["text"],
            debit=amount > 0,
        )
    if operation == "webhook_endpoint.create":
        # the answer to finish it carries the signing secret, which only the command prints
        raise Conflict(
            f"re-run `billing webhooks setup {params.get('url', 'URL')}` to finish this "
            "intent: it prints (or writes) the endpoint's signing secret"
        )
    raise Conflict(f"intent operation {operation!r} cannot be resumed by this version")


def _major(minor: int, currency: str) -> str:
    """Minor units back to the major-unit text the command took (``-1250`` -> ``"-12.50"``)."""
    from decimal import Decimal

    from billing_cli.money import decimals

    return str(Decimal(minor).scaleb(-decimals(currency)))
