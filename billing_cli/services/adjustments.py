"""Subscription adjustments support staff make every day: the trial's end, paused collection.

Each is one Stripe update through the intent journal (:mod:`.journal`), in the three phases of
:mod:`.subscriptions`: read the live subscription and record the intent; call Stripe with the
intent's key and no transaction open; apply Stripe's answer through the registers with the
audit entry, the tenant's access and the intent's close in one transaction. A re-run after an
ambiguous failure finds the open intent, sees from the live subscription whether Stripe already
made the change, and finishes it.

Choices where Stripe leaves room:

- ``extend-trial --days N`` adds N days to the trial's *current* end. A re-run of an interrupted
  extension reuses the end date its open intent recorded, so it never extends twice.
- Trial changes are sent with ``proration_behavior=none``: a trial bills nothing, so there is
  nothing to prorate. Ending a trial now starts a paid period at once: Stripe resets the billing
  cycle to now and invoices the full first period immediately (the dry run shows that invoice).
- Pausing keeps the subscription ``active`` in Stripe (``pause_collection``); what it does to the
  tenant's access is ``BILLING_PAUSED_ACCESS`` (:mod:`.paused_access`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from billing_cli.errors import Conflict, UsageError
from billing_cli.gateway import (
    Gateway,
    InvoicePreview,
    PauseBehavior,
    SubscriptionInfo,
    SubscriptionPreview,
)
from billing_cli.models import Change, Invocation, Tenant, TenantSubscription, utcnow
from billing_cli.repository import Database
from billing_cli.repository import intents as intents_repo
from billing_cli.repository import plans as plans_repo
from billing_cli.services import audit, journal, notices, paused_access
from billing_cli.services import tenants as tenant_rules
from billing_cli.services.invoice_views import preview_view
from billing_cli.services.journal import Intent
from billing_cli.services.stripe_ops import TenantRef, planned_writes, stripe_row
from billing_cli.services.subscription_updates import (
    NothingToDo,
    apply_subscription,
    begin_update,
    check_proration,
    live_subscription,
    subscription_row_view,
    sync_unchanged,
    update_step,
)
from billing_cli.services.subscriptions import side_effects
from billing_cli.services.webhooks import policy
from billing_cli.timeparse import iso

MAX_TRIAL_AHEAD = timedelta(days=730)  # Stripe: trial_end at most two years from now
PAUSE_BEHAVIORS: tuple[PauseBehavior, ...] = ("keep_as_draft", "mark_uncollectible", "void")


@dataclass(frozen=True)
class BillingRules:
    """The settings that decide a tenant's access after a change."""

    max_failed_attempts: int = 3
    paused_access: str = "keep"


@dataclass(frozen=True)
class AdjustmentResult:
    """A change, with Stripe's preview of the invoice it makes when money is involved."""

    change: Change
    preview: InvoicePreview | None = None

    def to_dict(self) -> dict[str, Any]:
        data = self.change.to_dict()
        data["invoice_preview"] = None if self.preview is None else preview_view(self.preview)
        return data


def extend_trial(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    tenant_slug: str,
    until: datetime | None = None,
    days: int | None = None,
    rules: BillingRules = BillingRules(),
) -> AdjustmentResult:
    """Move a trialing subscription's trial end later (``until``, or ``days`` more)."""
    if (until is None) == (days is None):
        raise UsageError("give exactly one of --until DATE or --days N")
    if days is not None and days < 1:
        raise UsageError("--days must be at least 1")
    if until is not None and until <= utcnow():
        raise UsageError(f"the new trial end {iso(until)} is in the past")
    tenant, live = live_subscription(db, gateway, tenant_slug)
    asked = {"until": iso(until), "days": days}
    pending = _open_params(db, tenant.slug, "subscription.extend_trial")
    if pending is not None and {k: pending.get(k) for k in asked} == asked:
        target = datetime.fromisoformat(str(pending["trial_end"]))  # the interrupted run's date
    else:
        _require_trialing(live)
        assert live.trial_end is not None
        target = until if until is not None else live.trial_end + timedelta(days=days or 0)
        _check_trial_end(target, current=live.trial_end)
    params = {"subscription": live.id, "trial_end": target.isoformat(), **asked}
    done = live.trial_end == target
    try:
        intent = begin_update(
            db, invocation, "subscription.extend_trial", tenant, params, done=done, live=live
        )
    except NothingToDo:
        why = f"{tenant.slug}'s trial already ends {iso(target)}"
        return AdjustmentResult(sync_unchanged(db, invocation, tenant, live, why))
    info = update_step(
        db,
        invocation,
        intent,
        live,
        done=done,
        what=f"extending {tenant.slug}'s trial",
        send=lambda key: gateway.set_trial_end(live.id, target, idempotency_key=key),
    )
    verb = "would extend" if invocation.dry_run else "extended"
    return AdjustmentResult(
        apply_change(
            db,
            gateway,
            invocation,
            intent,
            info,
            tenant=tenant,
            action="extend-trial",
            outcome=f"trial end {iso(live.trial_end)} -> {iso(target)}",
            message=f"{verb} {tenant.slug}'s trial to {iso(target)}",
            rules=rules,
            also=lambda session, locked: notices.withdraw_trial_notices(
                session, locked, trial_end=target, invocation=invocation
            ),
        )
    )


def end_trial(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    tenant_slug: str,
    preview: bool | None = None,
    rules: BillingRules = BillingRules(),
) -> AdjustmentResult:
    """End the trial now: Stripe starts the first paid period and invoices it at once."""
    tenant, live = live_subscription(db, gateway, tenant_slug)
    done = live.status != "trialing"
    params = {"subscription": live.id}
    try:
        intent = begin_update(
            db, invocation, "subscription.end_trial", tenant, params, done=done, live=live
        )
    except NothingToDo:
        raise _not_trialing(live) from None
    invoice = None
    if not done and (invocation.dry_run if preview is None else preview):
        invoice = gateway.preview_subscription_invoice(
            live.id, SubscriptionPreview(trial_end_now=True, proration_behavior="none")
        )
    info = update_step(
        db,
        invocation,
        intent,
        live,
        done=done,
        what=f"ending {tenant.slug}'s trial",
        send=lambda key: gateway.set_trial_end(live.id, None, idempotency_key=key),
    )
    verb = "would end" if invocation.dry_run else "ended"
    change = apply_change(
        db,
        gateway,
        invocation,
        intent,
        info,
        tenant=tenant,
        action="end-trial",
        outcome=f"trial ended now ({info.status}; first period invoiced, no proration)",
        message=f"{verb} {tenant.slug}'s trial now: the first paid period starts and is "
        "invoiced at once (no proration)",
        rules=rules,
    )
    return AdjustmentResult(change, invoice)


def pause_collection(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    tenant_slug: str,
    behavior: str = "keep_as_draft",
    resumes_at: datetime | None = None,
    rules: BillingRules = BillingRules(),
) -> AdjustmentResult:
    """Stop collecting payment on the subscription (Stripe's ``pause_collection``)."""
    how = _check_behavior(behavior)
    if resumes_at is not None and resumes_at <= utcnow():
        raise UsageError(f"--resumes-at {iso(resumes_at)} is in the past")
    tenant, live = live_subscription(db, gateway, tenant_slug)
    params = {"subscription": live.id, "behavior": how, "resumes_at": iso(resumes_at)}
    done = live.pause_behavior == how and live.pause_resumes_at == resumes_at
    try:
        intent = begin_update(
            db, invocation, "subscription.pause", tenant, params, done=done, live=live
        )
    except NothingToDo:
        why = f"{tenant.slug}'s subscription {live.id} is already paused ({how})"
        return AdjustmentResult(sync_unchanged(db, invocation, tenant, live, why))
    info = update_step(
        db,
        invocation,
        intent,
        live,
        done=done,
        what=f"pausing {tenant.slug}'s collection",
        send=lambda key: gateway.set_pause_collection(
            live.id, how, resumes_at, idempotency_key=key
        ),
    )
    until = f" until {iso(resumes_at)}" if resumes_at else ""
    verb = "would pause" if invocation.dry_run else "paused"
    return AdjustmentResult(
        apply_change(
            db,
            gateway,
            invocation,
            intent,
            info,
            tenant=tenant,
            action="pause",
            outcome=f"collection paused ({how}){until}",
            message=f"{verb} collection of {tenant.slug}'s subscription {live.id} "
            f"({how}){until}; access while paused: {rules.paused_access}",
            rules=rules,
        )
    )


def unpause_collection(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    tenant_slug: str,
    rules: BillingRules = BillingRules(),
) -> AdjustmentResult:
    """Resume collecting payment on a paused subscription."""
    tenant, live = live_subscription(db, gateway, tenant_slug)
    done = live.pause_behavior is None
    try:
        intent = begin_update(
            db,
            invocation,
            "subscription.unpause",
            tenant,
            {"subscription": live.id},
            done=done,
            live=live,
        )
    except NothingToDo:
        why = f"{tenant.slug}'s subscription {live.id} is not paused"
        return AdjustmentResult(sync_unchanged(db, invocation, tenant, live, why))
    info = update_step(
        db,
        invocation,
        intent,
        live,
        done=done,
        what=f"resuming {tenant.slug}'s collection",
        send=lambda key: gateway.set_pause_collection(live.id, None, None, idempotency_key=key),
    )
    verb = "would resume" if invocation.dry_run else "resumed"
    return AdjustmentResult(
        apply_change(
            db,
            gateway,
            invocation,
            intent,
            info,
            tenant=tenant,
            action="unpause",
            outcome="collection resumed",
            message=f"{verb} collection of {tenant.slug}'s subscription {live.id}",
            rules=rules,
        )
    )


def change_quantity(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    tenant_slug: str,
    quantity: int,
    proration: str = "create_prorations",
    preview: bool | None = None,
    rules: BillingRules = BillingRules(),
) -> AdjustmentResult:
    """Set the number of seats (the subscription item's quantity); the dry run shows Stripe's
    preview of the invoice with the proration the change makes."""
    if not 1 <= quantity <= 10_000:
        raise UsageError("the quantity must be between 1 and 10000")
    behavior = check_proration(proration)
    tenant, live = live_subscription(db, gateway, tenant_slug)
    if live.item_id is None:
        raise Conflict(f"subscription {live.id} has no item to change")
    _require_per_seat(db, live, quantity)
    item_id = live.item_id
    params = {"subscription": live.id, "quantity": quantity, "proration": behavior}
    done = live.quantity == quantity
    try:
        intent = begin_update(
            db, invocation, "subscription.quantity", tenant, params, done=done, live=live
        )
    except NothingToDo:
        why = f"{tenant.slug}'s subscription already has quantity {quantity}"
        return AdjustmentResult(sync_unchanged(db, invocation, tenant, live, why))
    if not done and "from_quantity" not in intent.steps:
        journal.record_step(db, intent, "from_quantity", live.quantity)
    was = int(intent.steps.get("from_quantity", live.quantity))
    invoice = None
    if not done and (invocation.dry_run if preview is None else preview):
        invoice = gateway.preview_subscription_invoice(
            live.id,
            SubscriptionPreview(
                item_id=item_id,
                quantity=quantity,
                proration_behavior=behavior,
                proration_date=int(utcnow().timestamp()),
            ),
        )
    info = update_step(
        db,
        invocation,
        intent,
        live,
        done=done,
        what=f"changing {tenant.slug}'s quantity",
        send=lambda key: gateway.set_subscription_quantity(
            live.id,
            item_id=item_id,
            quantity=quantity,
            proration_behavior=behavior,
            idempotency_key=key,
        ),
    )
    verb = "would change" if invocation.dry_run else "changed"
    change = apply_change(
        db,
        gateway,
        invocation,
        intent,
        info,
        tenant=tenant,
        action="quantity",
        outcome=f"quantity {was} -> {quantity} ({behavior})",
        message=f"{verb} {tenant.slug}'s quantity from {was} to {quantity} (proration: {behavior})",
        rules=rules,
        extra_before={"quantity": was},
        extra_after={"quantity": info.quantity},
    )
    return AdjustmentResult(change, invoice)


# -- the apply phase ---------------------------------------------------------------------------


def adjusted_view(session: Session, row: TenantSubscription) -> dict[str, Any]:
    """The row as these commands show it: the usual view plus the paused collection."""
    return {**subscription_row_view(session, row), "pause_collection": row.pause_collection}


def apply_adjusted(session: Session, row: TenantSubscription, info: SubscriptionInfo) -> None:
    """:func:`.subscription_updates.apply_subscription` plus the paused collection, which belongs to
    the same snapshot register: copied only when the snapshot was applied."""
    key = row.subscription_event_key
    apply_subscription(session, row, info)
    if row.subscription_event_key != key:
        row.pause_collection = info.pause_behavior


def billing_reason(row: TenantSubscription, rules: BillingRules) -> str | None:
    """Why billing wants the tenant suspended: the webhook engine's rule, paused access too."""
    return paused_access.suspension(
        policy.billing_suspension(
            status=row.status,
            attempts=row.failed_payment_attempts,
            max_attempts=rules.max_failed_attempts,
        ),
        status=row.status,
        pause_collection=row.pause_collection,
        access=rules.paused_access,
    )


def apply_change(
    db: Database,
    gateway: Gateway,
    invocation: Invocation,
    intent: Intent,
    info: SubscriptionInfo,
    *,
    tenant: TenantRef,
    action: str,
    outcome: str,
    message: str,
    rules: BillingRules,
    extra_before: dict[str, Any] | None = None,
    extra_after: dict[str, Any] | None = None,
    also: Callable[[Session, Tenant], list[Change]] | None = None,
) -> Change:
    """Phase 3: Stripe's answer, the tenant's access, the audit entry, the intent's close.

    ``extra_before``/``extra_after``: Stripe-side facts the row does not hold (a discount),
    shown and audited with it. ``also``: more local changes in the same transaction (a trial
    extension withdraws the pending trial notice), listed as side effects."""
    target = f"subscription:{tenant.slug}"
    with db.transaction(dry_run=invocation.dry_run) as session:
        locked = tenant_rules.require_tenant(session, tenant.slug, for_update=True)
        row = stripe_row(session, locked)
        before = adjusted_view(session, row) | (extra_before or {})
        apply_adjusted(session, row, info)
        effect = tenant_rules.follow_billing(
            session,
            reason=billing_reason(row, rules),
            status=locked.status,
            suspended_by=locked.suspended_by,
            load=lambda: locked,
            invocation=invocation,
        )
        after = adjusted_view(session, row) | (extra_after or {})
        audit.record(
            session,
            invocation=invocation,
            target=target,
            tenant_slug=tenant.slug,
            outcome=outcome,
            before=before,
            after=after,
        )
        extra = also(session, locked) if also else []
        journal.close(session, intent, succeeded=True, object_id=info.id)
    return Change(
        target=target,
        action=action,
        before=before,
        after=after,
        dry_run=invocation.dry_run,
        message=message,
        stripe_writes=planned_writes(gateway),
        side_effects=side_effects(effect) + tuple(c.message for c in extra),
    )


# -- checks ------------------------------------------------------------------------------------


def _open_params(db: Database, tenant_slug: str, operation: str) -> dict[str, Any] | None:
    """The parameters of the tenant's open intent of ``operation``, if one is open."""
    with db.read() as session:
        scope = f"{journal.FAMILIES[operation]}:{tenant_slug}"
        found = intents_repo.open_in_scope(session=session, scope=scope)
        if found is None or found.operation != operation:
            return None
        return dict(found.params or {})


def _require_per_seat(db: Database, live: SubscriptionInfo, quantity: int) -> None:
    """Seats only on a plan priced per seat (``plans add/update --per-seat``)."""
    with db.read() as session:
        plan = plans_repo.get_by_price_id(session=session, price_id=live.price_id or "")
        if quantity != 1 and (plan is None or not plan.per_seat):
            name = plan.slug if plan else live.price_id
            raise Conflict(
                f"plan {name} is not priced per seat; mark it with "
                f"`billing plans update {name} --per-seat` first"
            )


def _not_trialing(live: SubscriptionInfo) -> Conflict:
    return Conflict(
        f"subscription {live.id} is not trialing ({live.status}); only a trial can be "
        "extended or ended"
    )


def _require_trialing(live: SubscriptionInfo) -> None:
    if live.status != "trialing" or live.trial_end is None:
        raise _not_trialing(live)


def _check_trial_end(target: datetime, *, current: datetime) -> None:
    now = utcnow()
    if target <= now:
        raise UsageError(f"the new trial end {iso(target)} is in the past")
    if target <= current:
        raise UsageError(
            f"the new trial end {iso(target)} is not after the current one ({iso(current)}); "
            "use `billing subs end-trial` to end a trial"
        )
    if target > now + MAX_TRIAL_AHEAD:
        raise UsageError(
            f"the new trial end {iso(target)} is beyond Stripe's limit of two years from now"
        )


def _check_behavior(behavior: str) -> PauseBehavior:
    for known in PAUSE_BEHAVIORS:
        if behavior == known:
            return known
    raise UsageError(f"--behavior must be one of {', '.join(PAUSE_BEHAVIORS)}")


def parse_future_date(text: str) -> datetime:
    """``2026-12-31`` or ``2026-12-31T12:00`` (UTC unless an offset is given)."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"cannot read {text!r} as a date; use 2026-12-31 or 2026-12-31T12:00"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
