"""The subscription lifecycle as support staff say it: create, upgrade, cancel, resume.

Each command reads the live subscription from Stripe before acting, so a re-run after a crash
sees that the change already happened and reports it instead of repeating it; every write
carries a crash-stable idempotency key (see :mod:`.stripe_ops`). The local row is updated from
Stripe's answer in the same transaction as the audit entry. A subscription that ends here
suspends the tenant (``suspended_by=billing``), as the ``customer.subscription.deleted`` webhook
would, so local state does not wait for the webhook.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from billing_cli.errors import Conflict, NotFound, UsageError
from billing_cli.gateway import Gateway, InvoicePreview, ProrationBehavior, SubscriptionInfo
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
from billing_cli.services import audit
from billing_cli.services import tenants as tenant_rules
from billing_cli.services.customers import TENANT_METADATA_KEY, ensure_customer
from billing_cli.services.stripe_ops import planned_writes, stripe_row, tenant_key
from billing_cli.services.views import subscription_view
from billing_cli.services.webhooks import policy

ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})
PRORATION_BEHAVIORS: tuple[ProrationBehavior, ...] = ("create_prorations", "none", "always_invoice")
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
    """Subscribe a tenant to a plan; refused while it has a subscription that has not ended."""
    _check_payment_method(payment_method)
    if trial_days is not None and not 0 <= trial_days <= MAX_TRIAL_DAYS:
        raise UsageError(f"--trial-days must be between 0 and {MAX_TRIAL_DAYS}")
    with db.transaction(dry_run=invocation.dry_run) as session:
        tenant = tenant_rules.require_tenant(session, tenant_slug, for_update=True)
        plan = _require_synced_plan(session, plan_slug)
        row = stripe_row(session, tenant)
        if row.stripe_subscription_id and row.status not in ENDED_STATUSES:
            raise Conflict(
                f"tenant {tenant.slug} already has subscription {row.stripe_subscription_id} "
                f"({row.status}); use `billing subs upgrade` or cancel it first"
            )
        before = subscription_row_view(session, row)
        customer_id = ensure_customer(session, gateway, tenant, row)
        method_id = (
            _attach_default(session, gateway, tenant, customer_id, payment_method)
            if payment_method
            else None
        )
        days = plan.trial_days if trial_days is None else trial_days
        info = gateway.create_subscription(
            customer_id=customer_id,
            price_id=_price_id(plan),
            trial_days=days or None,
            default_payment_method=method_id,
            metadata={TENANT_METADATA_KEY: tenant.slug, "plan": plan.slug},
            idempotency_key=tenant_key(
                session, tenant, "subscription.create", customer_id, _price_id(plan), days
            ),
        )
        apply_subscription(session, row, info)
        follow_billing_policy(
            session, tenant, row, invocation=invocation, max_failed_attempts=max_failed_attempts
        )
        trial = f", trial until {info.trial_end:%Y-%m-%d}" if info.trial_end else ""
        verb = "would subscribe" if invocation.dry_run else "subscribed"
        return _finish(
            session,
            gateway,
            invocation,
            tenant,
            row,
            before,
            action="create",
            outcome=f"subscribed to {plan.slug} ({info.status})",
            message=f"{verb} {tenant.slug} to {plan.slug} "
            f"({format_money(plan.amount, plan.currency)}/{plan.interval}){trial}",
        )


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
    behavior = _check_proration(proration)
    with db.transaction(dry_run=invocation.dry_run) as session:
        tenant = tenant_rules.require_tenant(session, tenant_slug, for_update=True)
        plan = _require_synced_plan(session, plan_slug)
        row, live = _live_subscription(session, gateway, tenant)
        before = subscription_row_view(session, row)
        if live.price_id == plan.stripe_price_id:
            apply_subscription(session, row, live)
            return UpgradeResult(
                _unchanged(
                    tenant,
                    before,
                    subscription_row_view(session, row),
                    invocation,
                    f"{tenant.slug} is already on {plan.slug}",
                ),
                None,
            )
        if live.item_id is None:
            raise Conflict(f"subscription {live.id} has no item to change")
        invoice_preview = None
        if invocation.dry_run if preview is None else preview:
            invoice_preview = gateway.preview_price_change(
                live.id,
                item_id=live.item_id,
                price_id=_price_id(plan),
                proration_behavior=behavior,
                proration_date=int(utcnow().timestamp()),
            )
        info = gateway.change_subscription_price(
            live.id,
            item_id=live.item_id,
            price_id=_price_id(plan),
            proration_behavior=behavior,
            idempotency_key=tenant_key(
                session,
                tenant,
                "subscription.change_price",
                live.id,
                live.price_id or "",
                _price_id(plan),
                behavior,
            ),
        )
        apply_subscription(session, row, info)
        follow_billing_policy(
            session, tenant, row, invocation=invocation, max_failed_attempts=max_failed_attempts
        )
        old_plan = before.get("plan") or live.price_id
        verb = "would move" if invocation.dry_run else "moved"
        change = _finish(
            session,
            gateway,
            invocation,
            tenant,
            row,
            before,
            action="upgrade",
            outcome=f"plan {old_plan} -> {plan.slug} ({behavior})",
            message=f"{verb} {tenant.slug} from {old_plan} to {plan.slug} (proration: {behavior})",
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
    with db.transaction(dry_run=invocation.dry_run) as session:
        tenant = tenant_rules.require_tenant(session, tenant_slug, for_update=True)
        row, live = _live_subscription(session, gateway, tenant, allow_ended=True)
        before = subscription_row_view(session, row)
        if live.status in ENDED_STATUSES:
            apply_subscription(session, row, live)
            return _unchanged(
                tenant,
                before,
                subscription_row_view(session, row),
                invocation,
                f"subscription {live.id} is already canceled",
            )
        if not now and live.cancel_at_period_end:
            apply_subscription(session, row, live)
            return _unchanged(
                tenant,
                before,
                subscription_row_view(session, row),
                invocation,
                f"subscription {live.id} already cancels at period end "
                f"({_date(live.current_period_end)})",
            )
        key = tenant_key(session, tenant, "subscription.cancel", live.id, "now" if now else "end")
        if now:
            info = gateway.cancel_subscription_now(live.id, idempotency_key=key)
        else:
            info = gateway.set_cancel_at_period_end(live.id, True, idempotency_key=key)
        apply_subscription(session, row, info)
        follow_billing_policy(
            session, tenant, row, invocation=invocation, max_failed_attempts=max_failed_attempts
        )
        when = "now" if now else f"at period end ({_date(info.current_period_end)})"
        verb = "would cancel" if invocation.dry_run else "canceled"
        if not now:
            verb = (
                "would schedule cancellation of"
                if invocation.dry_run
                else "scheduled cancellation of"
            )
        return _finish(
            session,
            gateway,
            invocation,
            tenant,
            row,
            before,
            action="cancel",
            outcome=f"canceled {when}",
            message=f"{verb} {tenant.slug}'s subscription {live.id} {when}",
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
    with db.transaction(dry_run=invocation.dry_run) as session:
        tenant = tenant_rules.require_tenant(session, tenant_slug, for_update=True)
        row, live = _live_subscription(session, gateway, tenant, allow_ended=True)
        before = subscription_row_view(session, row)
        period_over = live.current_period_end is not None and live.current_period_end <= utcnow()
        if live.status in ENDED_STATUSES or (live.cancel_at_period_end and period_over):
            raise Conflict(
                f"subscription {live.id} has ended ({live.status}) and cannot be resumed; "
                "start a new one with `billing subs create`"
            )
        if not live.cancel_at_period_end:
            apply_subscription(session, row, live)
            return _unchanged(
                tenant,
                before,
                subscription_row_view(session, row),
                invocation,
                f"subscription {live.id} is not scheduled to cancel",
            )
        info = gateway.set_cancel_at_period_end(
            live.id,
            False,
            idempotency_key=tenant_key(session, tenant, "subscription.resume", live.id),
        )
        apply_subscription(session, row, info)
        follow_billing_policy(
            session, tenant, row, invocation=invocation, max_failed_attempts=max_failed_attempts
        )
        verb = "would resume" if invocation.dry_run else "resumed"
        return _finish(
            session,
            gateway,
            invocation,
            tenant,
            row,
            before,
            action="resume",
            outcome="pending cancellation withdrawn",
            message=f"{verb} {tenant.slug}'s subscription {live.id}",
        )


def show_subscription(db: Database, gateway: Gateway, *, tenant_slug: str) -> dict[str, Any]:
    """The local row and Stripe's live subscription side by side, with their differences.

    A subscription left on a plan's older price (kept on purpose when the plan's price changed:
    existing subscriptions keep theirs) is a normal state, not a difference: both sides show the
    plan as ``pro (older price)``, and Stripe's side shows the amount actually billed.
    """
    with db.read() as session:
        tenant = tenant_rules.require_tenant(session, tenant_slug)
        assert tenant.id is not None
        row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id)
        if row is None or not row.stripe_subscription_id:
            raise NotFound(f"tenant {tenant.slug} has no subscription")
        local = subscription_row_view(session, row)
        live = gateway.retrieve_subscription(row.stripe_subscription_id)
        current = _plan_for_price(session, live.price_id)
        older = None
        if current is None and live.price_id:
            # The plan this earlier price was made for (``plans sync`` tags its prices), else
            # the row's plan when the row recorded this very price.
            from billing_cli.services.plan_catalog import METADATA_KEY

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
    differences = [key for key in local if local.get(key) != remote.get(key)]
    return {
        "tenant": tenant_slug,
        "local": local,
        "stripe": remote,
        "differences": differences,
        "reconcile": (
            "Stripe's side is the truth: `billing webhooks replay --since 48h` applies the "
            "events the local row missed (widen --since up to 30d)"
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


def apply_subscription(session: Session, row: TenantSubscription, info: SubscriptionInfo) -> None:
    """Write Stripe's answer onto the local row through the webhook engine's registers.

    The answer is written like an event of this second (``policy.local_snapshot_key``), so a
    webhook delivered late about an older state of the subscription cannot undo it, while a
    newer one still wins. When the row already holds a newer snapshot, only the effective
    fields are recomputed.
    """
    now = utcnow()
    created = int((info.created or now).timestamp())
    key = policy.local_snapshot_key(
        subscription_created=created, status=info.status, at=now.timestamp()
    )
    applied = policy.apply_local_snapshot(
        row,
        subscription_id=info.id,
        subscription_created=created,
        status=info.status,
        price_id=info.price_id,
        key=key,
    )
    if applied:
        plan = _plan_for_price(session, info.price_id)
        row.stripe_customer_id = info.customer_id or row.stripe_customer_id
        row.plan_id = plan.id if plan else row.plan_id
        row.current_period_start = info.current_period_start
        row.current_period_end = info.current_period_end
        row.trial_end = info.trial_end
        row.cancel_at_period_end = info.cancel_at_period_end
        row.canceled_at = info.canceled_at
    row.updated_at = now
    subscriptions_repo.save(session=session, subscription=row)


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


def _finish(
    session: Session,
    gateway: Gateway,
    invocation: Invocation,
    tenant: Tenant,
    row: TenantSubscription,
    before: dict[str, Any],
    *,
    action: str,
    outcome: str,
    message: str,
) -> Change:
    after = subscription_row_view(session, row)
    audit.record(
        session,
        invocation=invocation,
        target=f"subscription:{tenant.slug}",
        tenant_slug=tenant.slug,
        outcome=outcome,
        before=before,
        after=after,
    )
    return Change(
        target=f"subscription:{tenant.slug}",
        action=action,
        before=before,
        after=after,
        dry_run=invocation.dry_run,
        message=message,
        stripe_writes=planned_writes(gateway),
    )


def _unchanged(
    tenant: Tenant, before: dict[str, Any], after: dict[str, Any], invocation: Invocation, why: str
) -> Change:
    return Change(
        target=f"subscription:{tenant.slug}",
        action="none",
        before=before,
        after=after,
        dry_run=invocation.dry_run,
        changed=False,
        message=why,
    )


def _live_subscription(
    session: Session, gateway: Gateway, tenant: Tenant, *, allow_ended: bool = False
) -> tuple[TenantSubscription, SubscriptionInfo]:
    row = stripe_row(session, tenant, create=False)
    if row.id is None or not row.stripe_subscription_id:
        raise NotFound(
            f"tenant {tenant.slug} has no subscription; start one with `billing subs create`"
        )
    live = gateway.retrieve_subscription(row.stripe_subscription_id)
    if live.status in ENDED_STATUSES and not allow_ended:
        raise Conflict(
            f"subscription {live.id} has ended ({live.status}); "
            "start a new one with `billing subs create`"
        )
    return row, live


def _attach_default(
    session: Session, gateway: Gateway, tenant: Tenant, customer_id: str, payment_method: str
) -> str:
    """Attach and make default; returns the attached method's id (a test token such as
    pm_card_visa becomes a new PaymentMethod with an id of its own)."""
    method = gateway.attach_payment_method(
        payment_method,
        customer_id=customer_id,
        idempotency_key=tenant_key(session, tenant, "payment_method.attach", payment_method),
    )
    gateway.set_default_payment_method(
        customer_id,
        method.id,
        idempotency_key=tenant_key(session, tenant, "payment_method.default", payment_method),
    )
    return method.id


def _require_synced_plan(session: Session, slug: str) -> SubscriptionPlan:
    plan = plans_repo.get_by_slug(session=session, slug=slug)
    if plan is None:
        raise NotFound(f"no plan {slug!r}; `billing plans list` shows the plans")
    if not plan.active:
        raise Conflict(f"plan {slug} is deactivated")
    if not plan.stripe_price_id:
        raise Conflict(f"plan {slug} has no Stripe price yet; run `billing plans sync`")
    return plan


def _price_id(plan: SubscriptionPlan) -> str:
    assert plan.stripe_price_id is not None
    return plan.stripe_price_id


def _plan_for_price(session: Session, price_id: str | None) -> SubscriptionPlan | None:
    return plans_repo.get_by_price_id(session=session, price_id=price_id) if price_id else None


def subscription_row_view(session: Session, row: TenantSubscription) -> dict[str, Any]:
    plan = plans_repo.get(session=session, plan_id=row.plan_id) if row.plan_id else None
    view = subscription_view(row, plan)
    if row.plan_id and plan is None:
        view["plan"] = None
    return view


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


def _check_proration(proration: str) -> ProrationBehavior:
    for behavior in PRORATION_BEHAVIORS:
        if proration == behavior:
            return behavior
    raise UsageError(f"--proration must be one of {', '.join(PRORATION_BEHAVIORS)}")


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
