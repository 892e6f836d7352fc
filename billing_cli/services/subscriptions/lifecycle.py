"""The subscription lifecycle as support staff say it: create, upgrade, cancel, resume.

Every Stripe write goes through the intent journal (:mod:`.journal`) in three phases: check and
record the intent in one short transaction; call Stripe with the intent's keys and no
transaction open; apply Stripe's answer through the webhook engine's registers, with the audit
entry and the intent's close, in one transaction. A re-run after a timeout or a crash finds the
open intent and finishes it (same keys, so Stripe hands back its first answer, and the audit
entry is written then); an update that Stripe already applied is recognised from the live
subscription. A subscription that ends here suspends the tenant (``suspended_by=billing``), as
the ``customer.subscription.deleted`` webhook would, so local state does not wait for the
webhook.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from billing_cli.errors import CardDeclined, Conflict, GatewayError, NotFound, UsageError
from billing_cli.gateway import Gateway, InvoicePreview, SubscriptionInfo
from billing_cli.models import (
    Change,
    Invocation,
    SubscriptionPlan,
    Tenant,
    TenantSubscription,
    utcnow,
)
from billing_cli.money import format_money
from billing_cli.repository import Database
from billing_cli.repository import plans as plans_repo
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.services import audit, journal
from billing_cli.services.journal import INTENT_METADATA_KEY, Intent
from billing_cli.services.payments.methods import card_label, default_card
from billing_cli.services.stripe_ops import (
    TENANT_METADATA_KEY,
    TenantRef,
    customer_step,
    default_method_step,
    planned_writes,
    stripe_row,
)
from billing_cli.services.subscriptions.updates import (
    ENDED_STATUSES,
    NothingToDo,
    apply_subscription,
    begin_subscription_intent,
    begin_update,
    check_proration,
    live_subscription,
    plan_for_price,
    subscription_row_view,
    sync_unchanged,
    update_step,
)
from billing_cli.services.tenants import rules as tenant_rules
from billing_cli.services.views import subscription_view
from billing_cli.services.webhooks import policy
from billing_cli.services.webhooks.deferred import apply_parked

MAX_TRIAL_DAYS = 730  # Stripe's limit on trial_period_days
_LOCAL_ONLY = frozenset({"failed_payment_attempts", "last_event_created"})


@dataclass(frozen=True)
class UpgradeResult:
    """A price change, with Stripe's invoice preview when one was asked for."""

    change: Change
    preview: InvoicePreview | None

    def to_dict(self) -> dict[str, Any]:
        data = self.change.to_dict()
        data["proration_preview"] = None if self.preview is None else _preview_view(self.preview)
        return data


@dataclass(frozen=True)
class _PlanRef:
    """The plan as read in phase 1."""

    slug: str
    amount: int
    currency: str
    interval: str
    interval_count: int
    trial_days: int
    price_id: str


def create_subscription(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    tenant_slug: str,
    plan_slug: str,
    payment_method: str | None = None,
    trial_days: int | None = None,
    max_failed_attempts: int = 3,
) -> Change:
    """Subscribe a tenant to a plan; refused while it has a subscription that has not ended.

    Steps, each a recovery point of the intent: the customer (adopted or created), the payment
    method (attached and made the default), the subscription. A first payment that fails
    leaves Stripe's subscription ``incomplete``: that is recorded, audited, and reported as a
    failure (exit 1) with the reason.
    """
    _check_payment_method(payment_method)
    if trial_days is not None and not 0 <= trial_days <= MAX_TRIAL_DAYS:
        raise UsageError(f"--trial-days must be between 0 and {MAX_TRIAL_DAYS}")
    with db.read() as session:
        tenant = TenantRef.of(session, tenant_rules.require_tenant(session, tenant_slug))
        plan = _plan_ref(_require_synced_plan(session, plan_slug))
        started = _row_at_start(session, tenant)
    _check_price_matches(gateway, plan)
    days = plan.trial_days if trial_days is None else trial_days
    params = {
        "tenant": tenant.slug,
        "plan": plan.slug,
        "price": plan.price_id,
        "payment_method": payment_method,
        "trial_days": days,
    }

    def check(session: Session) -> None:
        row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id, for_update=True)
        if row is not None and row.stripe_subscription_id and row.status not in ENDED_STATUSES:
            raise Conflict(
                f"tenant {tenant.slug} already has subscription {row.stripe_subscription_id} "
                f"({row.status}); use `billing subs upgrade` or cancel it first"
            )

    intent = begin_subscription_intent(
        db, invocation, "subscription.create", tenant.slug, params, check
    )
    with journal.failure_closes(
        db, intent, invocation=invocation, what=f"subscribing to {plan.slug}"
    ):
        customer_id = customer_step(db, gateway, intent, tenant)
        method_id = (
            default_method_step(db, gateway, intent, customer_id, payment_method)
            if payment_method
            else None
        )
        info = _subscription_step(db, gateway, intent, tenant, plan, customer_id, method_id, days)
    incomplete = info.status in {"incomplete", "incomplete_expired"}
    trial = f", trial until {info.trial_end:%Y-%m-%d}" if info.trial_end else ""
    verb = "would subscribe" if invocation.dry_run else "subscribed"
    change = _apply(
        db,
        gateway,
        invocation,
        intent,
        info,
        tenant_slug=tenant.slug,
        customer_id=customer_id,
        started=started,
        action="create",
        outcome=f"subscribed to {plan.slug} ({info.status})"
        + (": first payment failed" if incomplete else ""),
        message=f"{verb} {tenant.slug} to {plan.slug} "
        f"({format_money(plan.amount, plan.currency)}/{plan.interval}){trial}",
        max_failed_attempts=max_failed_attempts,
        succeeded=not incomplete,
    )
    if incomplete:
        raise CardDeclined(
            f"subscription {info.id} for {tenant.slug} is {info.status}: its first payment "
            f"failed ({_payment_failure(gateway, info)}); nothing else was charged. Attach a "
            "working card and pay the open invoice, or cancel it with `billing subs cancel "
            f"{tenant.slug} --now`"
        )
    return change


def upgrade_subscription(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    tenant_slug: str,
    plan_slug: str,
    proration: str = "create_prorations",
    preview: bool | None = None,
    max_failed_attempts: int = 3,
) -> UpgradeResult:
    """Move a tenant's subscription to another plan's price.

    ``preview`` (default: under ``--dry-run``) asks Stripe's invoice preview what the change
    would bill; the preview is a read, it changes nothing in Stripe.
    """
    behavior = check_proration(proration)
    with db.read() as session:
        plan = _plan_ref(_require_synced_plan(session, plan_slug))
    tenant, live = live_subscription(db, gateway, tenant_slug)
    _check_price_matches(gateway, plan)
    if live.item_id is None:
        raise Conflict(f"subscription {live.id} has no item to change")
    item_id = live.item_id
    params = {
        "subscription": live.id,
        "plan": plan.slug,
        "price": plan.price_id,
        "proration": behavior,
    }
    done = live.price_id == plan.price_id
    try:
        intent = begin_update(
            db, invocation, "subscription.upgrade", tenant, params, done=done, live=live
        )
    except NothingToDo:
        return UpgradeResult(
            sync_unchanged(
                db, invocation, tenant, live, f"{tenant.slug} is already on {plan.slug}"
            ),
            None,
        )
    invoice_preview = None
    if not done and (invocation.dry_run if preview is None else preview):
        invoice_preview = gateway.preview_price_change(
            live.id,
            item_id=item_id,
            price_id=plan.price_id,
            proration_behavior=behavior,
            proration_date=int(utcnow().timestamp()),
        )
    info = update_step(
        db,
        invocation,
        intent,
        live,
        done=done,
        what=f"moving {tenant.slug} to {plan.slug}",
        send=lambda key: gateway.change_subscription_price(
            live.id,
            item_id=item_id,
            price_id=plan.price_id,
            proration_behavior=behavior,
            idempotency_key=key,
        ),
    )
    old_plan = _plan_slug_of(db, live.price_id if not done else intent.steps.get("from"))
    verb = "would move" if invocation.dry_run else "moved"
    change = _apply(
        db,
        gateway,
        invocation,
        intent,
        info,
        tenant_slug=tenant.slug,
        action="upgrade",
        outcome=f"plan {old_plan or '?'} -> {plan.slug} ({behavior})",
        message=f"{verb} {tenant.slug} from {old_plan or 'its plan'} to {plan.slug} "
        f"(proration: {behavior})",
        max_failed_attempts=max_failed_attempts,
    )
    return UpgradeResult(change, invoice_preview)


def cancel_subscription(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    tenant_slug: str,
    now: bool,
    max_failed_attempts: int = 3,
) -> Change:
    """Cancel at the end of the period (default) or at once (``now``, suspends the tenant)."""
    tenant, live = live_subscription(db, gateway, tenant_slug, allow_ended=True)
    with db.read() as session:
        started = _row_at_start(session, tenant)
    params = {"subscription": live.id, "now": now}
    done = live.status in ENDED_STATUSES or (not now and live.cancel_at_period_end)
    try:
        intent = begin_update(
            db, invocation, "subscription.cancel", tenant, params, done=done, live=live
        )
    except NothingToDo:
        why = (
            f"subscription {live.id} is already canceled"
            if live.status in ENDED_STATUSES
            else f"subscription {live.id} already cancels at period end "
            f"({_date(live.current_period_end)})"
        )
        return sync_unchanged(db, invocation, tenant, live, why)

    def send(key: str) -> SubscriptionInfo:
        if now:
            return gateway.cancel_subscription_now(live.id, idempotency_key=key)
        return gateway.set_cancel_at_period_end(live.id, True, idempotency_key=key)

    info = update_step(
        db, invocation, intent, live, done=done, what=f"canceling {live.id}", send=send
    )
    when = "now" if now else f"at period end ({_date(info.current_period_end)})"
    if now:
        verb = "would cancel" if invocation.dry_run else "canceled"
    else:
        verb = (
            "would schedule cancellation of" if invocation.dry_run else "scheduled cancellation of"
        )
    return _apply(
        db,
        gateway,
        invocation,
        intent,
        info,
        tenant_slug=tenant.slug,
        started=started,
        action="cancel",
        outcome=f"canceled {when}",
        message=f"{verb} {tenant.slug}'s subscription {live.id} {when}",
        max_failed_attempts=max_failed_attempts,
    )


def resume_subscription(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    tenant_slug: str,
    max_failed_attempts: int = 3,
) -> Change:
    """Withdraw a pending cancellation; refused once the period has ended."""
    tenant, live = live_subscription(db, gateway, tenant_slug, allow_ended=True)
    period_over = live.current_period_end is not None and live.current_period_end <= utcnow()
    if live.status in ENDED_STATUSES or (live.cancel_at_period_end and period_over):
        raise Conflict(
            f"subscription {live.id} has ended ({live.status}) and cannot be resumed; "
            "start a new one with `billing subs create`"
        )
    params = {"subscription": live.id}
    done = not live.cancel_at_period_end
    try:
        intent = begin_update(
            db, invocation, "subscription.resume", tenant, params, done=done, live=live
        )
    except NothingToDo:
        return sync_unchanged(
            db, invocation, tenant, live, f"subscription {live.id} is not scheduled to cancel"
        )
    info = update_step(
        db,
        invocation,
        intent,
        live,
        done=done,
        what=f"resuming {live.id}",
        send=lambda key: gateway.set_cancel_at_period_end(live.id, False, idempotency_key=key),
    )
    verb = "would resume" if invocation.dry_run else "resumed"
    return _apply(
        db,
        gateway,
        invocation,
        intent,
        info,
        tenant_slug=tenant.slug,
        action="resume",
        outcome="pending cancellation withdrawn",
        message=f"{verb} {tenant.slug}'s subscription {live.id}",
        max_failed_attempts=max_failed_attempts,
    )


def show_subscription(db: Database, gateway: Gateway, *, tenant_slug: str) -> dict[str, Any]:
    """The local row and Stripe's live subscription side by side, with their differences.

    A subscription left on a plan's older price (kept on purpose when the plan's price changed:
    existing subscriptions keep theirs) is a normal state, not a difference: both sides show the
    plan as ``pro (older price)``, and Stripe's side shows the amount actually billed.
    """
    with db.read() as session:
        tenant = TenantRef.of(session, tenant_rules.require_tenant(session, tenant_slug))
    if not tenant.subscription_id:
        raise NotFound(f"tenant {tenant.slug} has no subscription")
    live = gateway.retrieve_subscription(tenant.subscription_id)  # no session open meanwhile
    with db.read() as session:
        row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id)
        if row is None or not row.stripe_subscription_id:
            raise NotFound(f"tenant {tenant.slug} has no subscription")
        local = subscription_row_view(session, row)
        current = plan_for_price(session, live.price_id)
        older = None
        if current is None and live.price_id:
            # The plan this earlier price was made for (``plans sync`` tags its prices), else
            # the row's plan when the row recorded this very price.
            from billing_cli.services.catalog.plan_catalog import METADATA_KEY

            made_for = live.price_metadata.get(METADATA_KEY)
            if made_for:
                older = plans_repo.get_by_slug(session=session, slug=made_for)
            elif row.plan_id and live.price_id == row.stripe_price_id:
                older = plans_repo.get(session=session, plan_id=row.plan_id)
        remote = subscription_view(_as_row(row, live), current or older)
        older_slug = older.slug if older is not None else None
    local = {key: value for key, value in local.items() if key not in _LOCAL_ONLY}
    remote = {key: value for key, value in remote.items() if key not in _LOCAL_ONLY}
    if older_slug is not None and local.get("plan") == older_slug:
        local["plan"] = remote["plan"] = f"{older_slug} (older price)"
    remote["billed"] = format_money(live.price_amount, live.price_currency) or None
    # The card that pays (the subscription's own, else the customer's): Stripe's side only.
    remote["card"] = card_label(default_card(gateway, live.customer_id, live.id))
    differences = [key for key in local if local.get(key) != remote.get(key)]
    return {
        "tenant": tenant_slug,
        "local": local,
        "stripe": remote,
        "differences": differences,
        "reconcile": (
            f"Stripe's side is the truth: `billing subs refresh {tenant_slug}` makes the local "
            "row follow it"
            if differences
            else None
        ),
    }


def list_subscriptions(db: Database, *, status: str | None = None) -> list[dict[str, Any]]:
    with db.read() as session:
        return [
            {"tenant": tenant.slug, **subscription_row_view(session, row)}
            for row, tenant in subscriptions_repo.list_with_tenants(session=session, status=status)
            if row.stripe_subscription_id
        ]


def follow_billing_policy(
    session: Session,
    tenant: Tenant,
    row: TenantSubscription,
    *,
    invocation: Invocation,
    max_failed_attempts: int,
) -> Change | None:
    """Suspend or reactivate the tenant as the webhook engine would for this row's state."""
    reason = policy.billing_suspension(
        status=row.status, attempts=row.failed_payment_attempts, max_attempts=max_failed_attempts
    )
    return tenant_rules.follow_billing(
        session,
        reason=reason,
        status=tenant.status,
        suspended_by=tenant.suspended_by,
        load=lambda: tenant,
        invocation=invocation,
    )


# -- helpers ---------------------------------------------------------------------------------


def _subscription_step(
    db: Database,
    gateway: Gateway,
    intent: Intent,
    tenant: TenantRef,
    plan: _PlanRef,
    customer_id: str,
    method_id: str | None,
    days: int,
) -> SubscriptionInfo:
    """Create the subscription once: a recorded one is read back; past Stripe's key window
    one carrying this intent's id is looked for before anything is created."""
    known = intent.steps.get("subscription")
    if known:
        return gateway.retrieve_subscription(str(known))
    if intent.key_may_have_expired():
        for found in gateway.list_subscriptions(customer_id=customer_id):
            if found.metadata.get(INTENT_METADATA_KEY) == intent.id:
                journal.record_step(db, intent, "subscription", found.id)
                return found
    info = journal.call(
        db,
        intent,
        "subscription",
        lambda key: gateway.create_subscription(
            customer_id=customer_id,
            price_id=plan.price_id,
            trial_days=days or None,
            default_payment_method=method_id,
            metadata={TENANT_METADATA_KEY: tenant.slug, "plan": plan.slug} | intent.metadata(),
            idempotency_key=key,
        ),
        what=f"creating {tenant.slug}'s subscription",
    )
    journal.record_step(db, intent, "subscription", info.id)
    return info


def _apply(
    db: Database,
    gateway: Gateway,
    invocation: Invocation,
    intent: Intent,
    info: SubscriptionInfo,
    *,
    tenant_slug: str,
    action: str,
    outcome: str,
    message: str,
    max_failed_attempts: int,
    customer_id: str | None = None,
    succeeded: bool = True,
    started: dict[str, Any] | None = None,
) -> Change:
    """Phase 3: Stripe's answer through the registers, the tenant policy, the audit entry and
    the intent's close, in one transaction.

    ``started`` is the row as the command found it (:func:`_row_at_start`): the change is
    shown against it, not against the row as locked now, which a webhook may have written
    meanwhile (the trial's $0 invoice, the cancellation's own event) and would hide what the
    command changed.
    """
    target = f"subscription:{tenant_slug}"
    with db.transaction(dry_run=invocation.dry_run) as session:
        tenant = tenant_rules.require_tenant(session, tenant_slug, for_update=True)
        row = stripe_row(session, tenant)
        before = started if started is not None else subscription_row_view(session, row)
        if customer_id:
            row.stripe_customer_id = customer_id
        apply_subscription(session, row, info)
        if customer_id:  # events that arrived before this link apply now, in order
            apply_parked(
                session,
                customer_id,
                max_failed_attempts=max_failed_attempts,
                dry_run=invocation.dry_run,
            )
        effect = follow_billing_policy(
            session, tenant, row, invocation=invocation, max_failed_attempts=max_failed_attempts
        )
        after = subscription_row_view(session, row)
        audit.record(
            session,
            invocation=invocation,
            target=target,
            tenant_slug=tenant_slug,
            outcome=outcome,
            before=before,
            after=after,
        )
        journal.close(
            session,
            intent,
            succeeded=succeeded,
            object_id=info.id,
            error=None if succeeded else outcome,
        )
    return Change(
        target=target,
        action=action,
        before=before,
        after=after,
        dry_run=invocation.dry_run,
        message=message,
        stripe_writes=planned_writes(gateway),
        side_effects=side_effects(effect),
    )


def _row_at_start(session: Session, tenant: TenantRef) -> dict[str, Any]:
    """The tenant's subscription row as the command found it (empty if it has none yet)."""
    row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id)
    return subscription_row_view(session, row or TenantSubscription(tenant_id=tenant.id))


def side_effects(effect: Change | None) -> tuple[str, ...]:
    """What else the change does to the tenant: its suspension or reactivation, and the
    notification that goes with it (shown by dry runs too)."""
    if effect is None or not effect.changed:
        return ()
    kind = "suspended" if effect.action == "suspend" else "reactivated"
    return (effect.message, f"{'would queue' if effect.dry_run else 'queued'} notification: {kind}")


def _plan_ref(plan: SubscriptionPlan) -> _PlanRef:
    return _PlanRef(
        slug=plan.slug,
        amount=plan.amount,
        currency=plan.currency,
        interval=plan.interval,
        interval_count=plan.interval_count,
        trial_days=plan.trial_days,
        price_id=_price_id(plan),
    )


def _check_price_matches(gateway: Gateway, plan: _PlanRef) -> None:
    """Refuse a plan changed locally but not synced: Stripe would bill its old price."""
    price = gateway.retrieve_price(plan.price_id)
    local = (plan.amount, plan.currency, plan.interval, plan.interval_count)
    remote = (price.unit_amount, price.currency, price.interval, price.interval_count or 1)
    if local != remote or not price.active:
        billed = (
            f"{format_money(price.unit_amount or 0, price.currency)}/{price.interval}"
            if price.active
            else "an archived price"
        )
        raise Conflict(
            f"plan {plan.slug} is {format_money(plan.amount, plan.currency)}/{plan.interval} "
            f"here but its Stripe price {plan.price_id} is {billed}; "
            "run `billing plans sync` first"
        )


def _plan_slug_of(db: Database, price_id: str | None) -> str | None:
    with db.read() as session:
        plan = plan_for_price(session, price_id)
        return plan.slug if plan else price_id


def _payment_failure(gateway: Gateway, info: SubscriptionInfo) -> str:
    """Why the first payment failed, from the customer's newest PaymentIntent when it says."""
    try:
        payments = gateway.list_payments(customer_id=info.customer_id)
    except GatewayError:
        payments = []
    for payment in payments:
        if payment.failure:
            return payment.failure
    return f"see invoice {info.latest_invoice_id}" if info.latest_invoice_id else "payment failed"


def _require_synced_plan(session: Session, slug: str) -> SubscriptionPlan:
    plan = plans_repo.get_by_slug(session=session, slug=slug)
    if plan is None:
        raise NotFound(f"no plan {slug!r}; `billing plans list` shows the plans")
    if not plan.active:
        raise Conflict(
            f"plan {slug} is deactivated; `billing plans activate {slug}` brings it back, "
            "or choose another (`billing plans list`)"
        )
    if not plan.stripe_price_id:
        raise Conflict(f"plan {slug} has no Stripe price yet; run `billing plans sync`")
    return plan


def _price_id(plan: SubscriptionPlan) -> str:
    assert plan.stripe_price_id is not None
    return plan.stripe_price_id


def _as_row(row: TenantSubscription, live: SubscriptionInfo) -> TenantSubscription:
    """A detached copy of the row carrying Stripe's values, for side-by-side display."""
    return TenantSubscription(
        tenant_id=row.tenant_id,
        stripe_customer_id=live.customer_id,
        stripe_subscription_id=live.id,
        status=live.status,
        current_period_start=live.current_period_start,
        current_period_end=live.current_period_end,
        trial_end=live.trial_end,
        cancel_at_period_end=live.cancel_at_period_end,
        canceled_at=live.canceled_at,
        failed_payment_attempts=row.failed_payment_attempts,
    )


def _check_payment_method(payment_method: str | None) -> None:
    if payment_method is not None and not payment_method.startswith("pm_"):
        raise UsageError(
            f"--payment-method must be a payment method id (pm_...), not {payment_method!r}"
        )


def _date(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d") if value else "unknown"


def _preview_view(preview: InvoicePreview) -> dict[str, Any]:
    return {
        "amount_due": preview.amount_due,
        "proration_amount": preview.proration_amount,
        "currency": preview.currency,
        "amount_due_display": format_money(preview.amount_due, preview.currency),
        "proration_display": format_money(preview.proration_amount, preview.currency),
        "lines": [
            {
                "description": line.description,
                "amount": line.amount,
                "proration": line.proration,
                "price_id": line.price_id,
            }
            for line in preview.lines
        ],
    }
