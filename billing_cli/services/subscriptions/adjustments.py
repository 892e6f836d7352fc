"""Subscription adjustments support staff make every day: the trial's end, paused collection.

Each is one Stripe update of the tenant's live subscription, described by what differs (the
operation, its parameters, how to tell it is already done, the call, the messages) and carried
out over the intent journal by :func:`.changes.run`. :class:`SubscriptionUpdate` adds what all of
them share: Stripe's answer applied through the registers with the tenant's access following
it, the price before kept as a recovery point, and the answer when Stripe already shows the
change (the local row still follows Stripe; no audit entry). A re-run after an ambiguous failure
finds the open intent, sees from the live subscription whether Stripe already made the change,
and finishes it.

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from billing_cli.errors import BillingError, Conflict, UsageError
from billing_cli.gateway import (
    Gateway,
    InvoicePreview,
    PauseBehavior,
    SubscriptionInfo,
    SubscriptionPreview,
)
from billing_cli.models import Change, Invocation, TenantSubscription, utcnow
from billing_cli.repository import Database
from billing_cli.repository import intents as intents_repo
from billing_cli.repository import plans as plans_repo
from billing_cli.services import journal
from billing_cli.services.changes import Applied, ChangeResult, StripeChange, run
from billing_cli.services.journal import Intent
from billing_cli.services.observe import notices
from billing_cli.services.stripe_ops import TenantRef, stripe_row
from billing_cli.services.subscriptions import paused_access
from billing_cli.services.subscriptions.lifecycle import side_effects
from billing_cli.services.subscriptions.updates import (
    apply_subscription,
    check_proration,
    live_subscription,
    subscription_row_view,
    sync_unchanged,
)
from billing_cli.services.tenants import rules as tenant_rules
from billing_cli.services.webhooks import policy
from billing_cli.timeparse import iso

MAX_TRIAL_AHEAD = timedelta(days=730)  # Stripe: trial_end at most two years from now
PAUSE_BEHAVIORS: tuple[PauseBehavior, ...] = ("keep_as_draft", "mark_uncollectible", "void")


@dataclass(frozen=True)
class BillingRules:
    """The settings that decide a tenant's access after a change."""

    max_failed_attempts: int = 3
    paused_access: str = "keep"


AdjustmentResult = ChangeResult  # the name the commands and `intents resume` know


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
    update = SubscriptionUpdate.read(db, gateway, invocation, tenant_slug, rules)
    tenant, live = update.tenant, update.live
    asked = {"until": iso(until), "days": days}
    pending = _open_params(db, tenant.slug, "subscription.extend_trial")
    if pending is not None and {k: pending.get(k) for k in asked} == asked:
        target = datetime.fromisoformat(str(pending["trial_end"]))  # the interrupted run's date
    else:
        _require_trialing(live)
        assert live.trial_end is not None
        target = until if until is not None else live.trial_end + timedelta(days=days or 0)
        _check_trial_end(target, current=live.trial_end)
    change = update.change(
        operation="subscription.extend_trial",
        params={"subscription": live.id, "trial_end": target.isoformat(), **asked},
        done=live.trial_end == target,
        why=f"{tenant.slug}'s trial already ends {iso(target)}",
        action="extend-trial",
        what=f"extending {tenant.slug}'s trial",
        verbs=("extend", "extended"),
        send=lambda key: gateway.set_trial_end(live.id, target, idempotency_key=key),
        outcome=f"trial end {iso(live.trial_end)} -> {iso(target)}",
        message=f"{tenant.slug}'s trial to {iso(target)}",
        # Stripe sends a new trial_will_end before the new end: the pending notice is withdrawn
        after_apply=lambda session, _info: [
            withdrawn.message
            for withdrawn in notices.withdraw_trial_notices(
                session,
                tenant_rules.require_tenant(session, tenant.slug),
                trial_end=target,
                invocation=invocation,
            )
        ],
    )
    return run(db, gateway, invocation, change)


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
    update = SubscriptionUpdate.read(db, gateway, invocation, tenant_slug, rules)
    tenant, live = update.tenant, update.live
    change = update.change(
        operation="subscription.end_trial",
        params={"subscription": live.id},
        done=live.status != "trialing",
        why=_not_trialing(live),
        action="end-trial",
        what=f"ending {tenant.slug}'s trial",
        verbs=("end", "ended"),
        send=lambda key: gateway.set_trial_end(live.id, None, idempotency_key=key),
        outcome=lambda info, _: (
            f"trial ended now ({info.status}; first period invoiced, no proration)"
        ),
        message=f"{tenant.slug}'s trial now: the first paid period starts and is "
        "invoiced at once (no proration)",
        preview=lambda: gateway.preview_subscription_invoice(
            live.id, SubscriptionPreview(trial_end_now=True, proration_behavior="none")
        ),
        want_preview=preview,
    )
    return run(db, gateway, invocation, change)


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
    update = SubscriptionUpdate.read(db, gateway, invocation, tenant_slug, rules)
    tenant, live = update.tenant, update.live
    until = f" until {iso(resumes_at)}" if resumes_at else ""
    change = update.change(
        operation="subscription.pause",
        params={"subscription": live.id, "behavior": how, "resumes_at": iso(resumes_at)},
        done=live.pause_behavior == how and live.pause_resumes_at == resumes_at,
        why=f"{tenant.slug}'s subscription {live.id} is already paused ({how})",
        action="pause",
        what=f"pausing {tenant.slug}'s collection",
        verbs=("pause", "paused"),
        send=lambda key: gateway.set_pause_collection(
            live.id, how, resumes_at, idempotency_key=key
        ),
        outcome=f"collection paused ({how}){until}",
        message=f"collection of {tenant.slug}'s subscription {live.id} "
        f"({how}){until}; access while paused: {rules.paused_access}",
    )
    return run(db, gateway, invocation, change)


def unpause_collection(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    tenant_slug: str,
    rules: BillingRules = BillingRules(),
) -> AdjustmentResult:
    """Resume collecting payment on a paused subscription."""
    update = SubscriptionUpdate.read(db, gateway, invocation, tenant_slug, rules)
    tenant, live = update.tenant, update.live
    change = update.change(
        operation="subscription.unpause",
        params={"subscription": live.id},
        done=live.pause_behavior is None,
        why=f"{tenant.slug}'s subscription {live.id} is not paused",
        action="unpause",
        what=f"resuming {tenant.slug}'s collection",
        verbs=("resume", "resumed"),
        send=lambda key: gateway.set_pause_collection(live.id, None, None, idempotency_key=key),
        outcome="collection resumed",
        message=f"collection of {tenant.slug}'s subscription {live.id}",
    )
    return run(db, gateway, invocation, change)


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
    update = SubscriptionUpdate.read(db, gateway, invocation, tenant_slug, rules)
    tenant, live = update.tenant, update.live
    if live.item_id is None:
        raise Conflict(f"subscription {live.id} has no item to change")
    _require_per_seat(db, live, quantity)
    item_id = live.item_id

    def was(intent: Intent) -> int:
        """The quantity before: recorded by the first run, so a re-run still knows it."""
        return int(intent.steps.get("from_quantity", live.quantity))

    change = update.change(
        operation="subscription.quantity",
        params={"subscription": live.id, "quantity": quantity, "proration": behavior},
        done=live.quantity == quantity,
        why=f"{tenant.slug}'s subscription already has quantity {quantity}",
        action="quantity",
        what=f"changing {tenant.slug}'s quantity",
        verbs=("change", "changed"),
        send=lambda key: gateway.set_subscription_quantity(
            live.id,
            item_id=item_id,
            quantity=quantity,
            proration_behavior=behavior,
            idempotency_key=key,
        ),
        outcome=lambda _, intent: f"quantity {was(intent)} -> {quantity} ({behavior})",
        message=lambda _, intent: (
            f"{tenant.slug}'s quantity from {was(intent)} to {quantity} (proration: {behavior})"
        ),
        extra=lambda info, intent: ({"quantity": was(intent)}, {"quantity": info.quantity}),
        remember={"from_quantity": live.quantity},
        preview=lambda: gateway.preview_subscription_invoice(
            live.id,
            SubscriptionPreview(
                item_id=item_id,
                quantity=quantity,
                proration_behavior=behavior,
                proration_date=int(utcnow().timestamp()),
            ),
        ),
        want_preview=preview,
    )
    return run(db, gateway, invocation, change)


# -- the shape of a subscription update ---------------------------------------------------------

Said = str | Callable[[SubscriptionInfo, Intent], str]
Extra = Callable[[SubscriptionInfo, Intent], tuple[dict[str, Any], dict[str, Any]]]


@dataclass(frozen=True)
class SubscriptionUpdate:
    """What every update of a tenant's live subscription shares, so that each operation above
    states only its own parts (:meth:`change`) and :func:`.changes.run` does the rest."""

    db: Database
    invocation: Invocation
    tenant: TenantRef
    live: SubscriptionInfo
    rules: BillingRules

    @classmethod
    def read(
        cls,
        db: Database,
        gateway: Gateway,
        invocation: Invocation,
        tenant_slug: str,
        rules: BillingRules,
    ) -> SubscriptionUpdate:
        """The tenant and its subscription as Stripe has it now (refused when ended)."""
        tenant, live = live_subscription(db, gateway, tenant_slug)
        return cls(db, invocation, tenant, live, rules)

    def change(
        self,
        *,
        operation: str,
        params: dict[str, Any],
        done: bool,
        why: str | BillingError,
        action: str,
        what: str,
        verbs: tuple[str, str],
        send: Callable[[str], SubscriptionInfo],
        outcome: Said,
        message: Said,
        extra: Extra | None = None,
        remember: dict[str, Any] | None = None,
        preview: Callable[[], InvoicePreview] | None = None,
        want_preview: bool | None = None,
        after_apply: Callable[[Session, SubscriptionInfo], Sequence[str]] | None = None,
    ) -> StripeChange[SubscriptionInfo]:
        """The update as the runner takes it.

        ``done``: Stripe's live subscription already shows the change; ``why`` is then the
        answer (the local row still follows Stripe, no audit entry), or the refusal to raise.
        The price before is always a recovery point (``from``); ``remember`` adds others.
        ``extra``: Stripe-side facts the row does not hold (a discount, the quantity), shown
        and audited before/after with it.
        """
        tenant = self.tenant

        def apply(session: Session, info: SubscriptionInfo, intent: Intent) -> Applied:
            before, after = extra(info, intent) if extra is not None else ({}, {})
            return apply_change(
                session,
                self.invocation,
                info,
                tenant=tenant,
                rules=self.rules,
                outcome=_said(outcome, info, intent),
                extra_before=before,
                extra_after=after,
            )

        def unchanged() -> Change:
            if isinstance(why, BillingError):
                raise why
            return sync_unchanged(self.db, self.invocation, tenant, self.live, why)

        return StripeChange(
            operation=operation,
            target=f"subscription:{tenant.slug}",
            tenant_slug=tenant.slug,
            params=params,
            action=action,
            what=what,
            verbs=verbs,
            send=lambda key, _intent: send(key),
            apply=apply,
            message=lambda info, intent: _said(message, info, intent),
            already=self.live if done else None,
            unchanged=unchanged,
            remember={"from": self.live.price_id, **(remember or {})},
            preview=preview,
            want_preview=want_preview,
            after_apply=after_apply,
        )


def _said(text: Said, info: SubscriptionInfo, intent: Intent) -> str:
    return text if isinstance(text, str) else text(info, intent)


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
    session: Session,
    invocation: Invocation,
    info: SubscriptionInfo,
    *,
    tenant: TenantRef,
    rules: BillingRules,
    outcome: str,
    extra_before: dict[str, Any],
    extra_after: dict[str, Any],
) -> Applied:
    """Phase 3 of an update, in the runner's transaction: Stripe's answer onto the row and the
    tenant's access following it (the runner adds the audit entry and the intent's close)."""
    locked = tenant_rules.require_tenant(session, tenant.slug, for_update=True)
    row = stripe_row(session, locked)
    before = adjusted_view(session, row) | extra_before
    apply_adjusted(session, row, info)
    effect = tenant_rules.follow_billing(
        session,
        reason=billing_reason(row, rules),
        status=locked.status,
        suspended_by=locked.suspended_by,
        load=lambda: locked,
        invocation=invocation,
    )
    after = adjusted_view(session, row) | extra_after
    return Applied(before, after, outcome, side_effects(effect))


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
