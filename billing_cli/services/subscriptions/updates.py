"""Updating a tenant's live Stripe subscription through the intent journal.

``subs upgrade/cancel/resume`` (:mod:`.subscriptions`), the trial and pause adjustments
(:mod:`.adjustments`) and the discount changes (:mod:`.discounts`) all change one existing
subscription, and all do it the same way; this module is that shared way, so that a re-run after
a crash or a timeout behaves alike whichever command was interrupted:

0. :func:`live_subscription` reads the tenant in a short transaction, then Stripe's subscription
   with none open. Whether the change is already *done* is judged from that live state, never
   from the local row, which may lag behind a webhook.
1. :func:`begin_update` records (or reuses) the intent. When Stripe already shows the change and
   no interrupted run is open, it raises :class:`NothingToDo` instead, and the command answers
   with :func:`sync_unchanged`: no Stripe write, no audit entry, the local row still follows
   Stripe.
2. :func:`update_step` sends the write with the intent's key and no transaction open, or skips it
   when the interrupted run's write already shows in Stripe.
3. The caller applies Stripe's answer in one transaction: :func:`apply_subscription` writes it
   onto the row through the webhook engine's registers, beside the caller's audit entry and the
   intent's close.

The module also holds what those steps read and write with: the statuses that mean a
subscription has ended, the row's view for before/after, the plan a price belongs to, and the
proration choices Stripe accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session

from billing_cli.errors import Conflict, NotFound, UsageError
from billing_cli.gateway import Gateway, ProrationBehavior, SubscriptionInfo
from billing_cli.models import (
    Change,
    Invocation,
    SubscriptionPlan,
    TenantSubscription,
    utcnow,
)
from billing_cli.repository import Database
from billing_cli.repository import plans as plans_repo
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.services import journal
from billing_cli.services.journal import Intent
from billing_cli.services.stripe_ops import TenantRef, stripe_row
from billing_cli.services.tenants import rules as tenant_rules
from billing_cli.services.views import subscription_view
from billing_cli.services.webhooks import policy

ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})
PRORATION_BEHAVIORS: tuple[ProrationBehavior, ...] = ("create_prorations", "none", "always_invoice")


class NothingToDo(Exception):
    """Raised inside a phase-1 check when Stripe already shows the asked-for state.

    An exception rather than a return value because it has to leave :func:`journal.begin`'s
    transaction before any intent is recorded: a command that changes nothing leaves no intent.
    """


def live_subscription(
    db: Database, gateway: Gateway, tenant_slug: str, *, allow_ended: bool = False
) -> tuple[TenantRef, SubscriptionInfo]:
    """The tenant (read in a short transaction) and its subscription as Stripe has it now.

    Every update decides from Stripe's live state, not the local row, whether there is anything
    to do. An ended subscription is refused unless ``allow_ended`` (cancel and resume explain
    the ended state themselves).
    """
    with db.read() as session:
        tenant = TenantRef.of(session, tenant_rules.require_tenant(session, tenant_slug))
    if not tenant.subscription_id:
        raise NotFound(
            f"tenant {tenant.slug} has no subscription; start one with `billing subs create`"
        )
    live = gateway.retrieve_subscription(tenant.subscription_id)
    if live.status in ENDED_STATUSES and not allow_ended:
        raise Conflict(
            f"subscription {live.id} has ended ({live.status}); "
            "start a new one with `billing subs create`"
        )
    return tenant, live


def begin_subscription_intent(
    db: Database,
    invocation: Invocation,
    operation: str,
    tenant_slug: str,
    params: dict[str, Any],
    check: Callable[[Session], None] | None,
) -> Intent:
    """Phase 1 of any write to a tenant's subscription (creating one too).

    One place names the journal target ``subscription:<tenant>``, so every subscription write,
    whichever command makes it, is recorded and found again under the same target.
    """
    return journal.begin(
        db,
        operation=operation,
        target=f"subscription:{tenant_slug}",
        tenant_slug=tenant_slug,
        params=params,
        invocation=invocation,
        check=check,
    )


def begin_update(
    db: Database,
    invocation: Invocation,
    operation: str,
    tenant: TenantRef,
    params: dict[str, Any],
    *,
    done: bool,
    live: SubscriptionInfo,
) -> Intent:
    """Phase 1 of an update; raises :class:`NothingToDo` when Stripe already shows the change
    and no interrupted run of it is open (an open one is finished: applied and audited).

    The price the subscription had before is recorded as the intent's ``from`` step, so a re-run
    that finds the change already made in Stripe can still say what it changed from.
    """

    def check(_session: Session) -> None:
        if done:
            raise NothingToDo

    intent = begin_subscription_intent(db, invocation, operation, tenant.slug, params, check)
    if not done and "from" not in intent.steps:
        journal.record_step(db, intent, "from", live.price_id)
    return intent


def update_step(
    db: Database,
    invocation: Invocation,
    intent: Intent,
    live: SubscriptionInfo,
    *,
    done: bool,
    what: str,
    send: Callable[[str], SubscriptionInfo],
) -> SubscriptionInfo:
    """Phase 2 of an update: skipped when an interrupted run's write already shows in Stripe.

    ``send`` gets the intent's idempotency key; a definite failure closes the intent, an
    ambiguous one leaves it open for a re-run to finish.
    """
    if done:
        return live
    with journal.failure_closes(db, intent, invocation=invocation, what=f"{what}"):
        return journal.call(db, intent, "update", send, what=what)


def sync_unchanged(
    db: Database, invocation: Invocation, tenant: TenantRef, live: SubscriptionInfo, why: str
) -> Change:
    """Nothing to send: the local row still takes Stripe's live state (no audit entry).

    The answer to :class:`NothingToDo`: a command that finds its change already made still
    leaves the local row as Stripe has it, and says ``why`` there was nothing to do.
    """
    with db.transaction(dry_run=invocation.dry_run) as session:
        locked = tenant_rules.require_tenant(session, tenant.slug, for_update=True)
        row = stripe_row(session, locked, create=False)
        before = subscription_row_view(session, row)
        if row.id is not None:
            apply_subscription(session, row, live)
        after = subscription_row_view(session, row)
    return Change(
        target=f"subscription:{tenant.slug}",
        action="none",
        before=before,
        after=after,
        dry_run=invocation.dry_run,
        changed=False,
        message=why,
    )


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
        plan = plan_for_price(session, info.price_id)
        row.stripe_customer_id = info.customer_id or row.stripe_customer_id
        row.plan_id = plan.id if plan else row.plan_id
        row.current_period_start = info.current_period_start
        row.current_period_end = info.current_period_end
        row.trial_end = info.trial_end
        row.cancel_at_period_end = info.cancel_at_period_end
        row.canceled_at = info.canceled_at
    row.updated_at = now
    subscriptions_repo.save(session=session, subscription=row)


def subscription_row_view(session: Session, row: TenantSubscription) -> dict[str, Any]:
    """The local row, with its plan's slug, as changes and audit entries show it before and
    after a write."""
    plan = plans_repo.get(session=session, plan_id=row.plan_id) if row.plan_id else None
    view = subscription_view(row, plan)
    if row.plan_id and plan is None:
        view["plan"] = None
    return view


def plan_for_price(session: Session, price_id: str | None) -> SubscriptionPlan | None:
    """The plan whose current Stripe price is ``price_id``: Stripe names prices, the row plans."""
    return plans_repo.get_by_price_id(session=session, price_id=price_id) if price_id else None


def check_proration(proration: str) -> ProrationBehavior:
    """``--proration`` checked against what Stripe accepts, before anything is read or sent."""
    for behavior in PRORATION_BEHAVIORS:
        if proration == behavior:
            return behavior
    raise UsageError(f"--proration must be one of {', '.join(PRORATION_BEHAVIORS)}")
