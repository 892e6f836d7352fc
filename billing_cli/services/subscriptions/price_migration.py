"""``subs migrate``: move every live subscription kept on a plan's older price to its current one.

Why a bulk command: a plan's price is immutable in Stripe, so a new amount is a new Price and
every existing subscription keeps the old one (``pro (older price)``) until it is moved. Moving
them one ``subs upgrade`` at a time is thousands of commands; this one reads Stripe in bulk and
writes once per tenant.

How it reads: the plan's older prices come from the price list (same product, or tagged for the
plan by ``plans sync``; same currency and interval as the current price), then the live
subscriptions on each come from one paged list per price (``price=``, 100 a page). Stripe's
default status filter leaves canceled and incomplete_expired subscriptions out, and
``incomplete`` ones (a first payment that never succeeded) are skipped too: they are not live.
Subscriptions map to tenants through the local rows (the recorded subscription id); one no
tenant names is reported, never moved.

How it writes: one :class:`.changes.StripeChange` per tenant (operation
``subscription.migrate_price``) through :meth:`.adjustments.SubscriptionUpdate.change`, so each
tenant is one journal intent with its own idempotency key, audit entry and local apply through
the registers. The tenant's access follows billing as after any update: a manual hold is never
lifted. "Already done" is Stripe's live item on the plan's current price, so:

- a re-run skips every tenant already moved (its subscription no longer lists on an old price);
- a tenant whose run was interrupted (SIGKILL, a cut answer) has an open intent; the re-run reads
  its subscription and finishes it: applied and audited if Stripe moved it, sent again with the
  *same* key if not. The interrupted run's proration is reused so its parameters, and its key,
  stay the same.

Requests are paced by a token bucket (:class:`Pacer`, ``--rate`` requests/s, default 20, below
test mode's 25/s); a 429 that still comes is retried with backoff by the gateway's HTTP session.

``--at period-end``: Stripe's subscription update has no "from the next period" switch, and the
alternative, a subscription schedule, is another object to create and keep consistent per tenant
(the sandbox has none either). The price is changed now with ``proration_behavior=none``: nothing
is billed or credited for the current period, already paid at the old price, and the next
period's invoice is the first at the new price. So ``--at period-end`` means proration ``none``,
and another ``--proration`` with it is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from billing_cli.errors import BillingError, Conflict, NotFound, UsageError
from billing_cli.gateway import Gateway, InvoicePreview, PriceInfo, SubscriptionInfo
from billing_cli.models import (
    Change,
    Invocation,
    Tenant,
    TenantSubscription,
    utcnow,
)
from billing_cli.money import format_money
from billing_cli.repository import Database
from billing_cli.repository import intents as intents_repo
from billing_cli.repository import plans as plans_repo
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.services.catalog.plan_catalog import METADATA_KEY
from billing_cli.services.changes import StripeChange, run
from billing_cli.services.journal import Intent
from billing_cli.services.pacing import Pacer
from billing_cli.services.payments.invoice_views import preview_view
from billing_cli.services.stripe_ops import TenantRef, planned_writes
from billing_cli.services.subscriptions.adjustments import BillingRules, SubscriptionUpdate
from billing_cli.services.subscriptions.updates import ENDED_STATUSES, check_proration
from billing_cli.services.tenants import rules as tenant_rules

if TYPE_CHECKING:
    from billing_cli.services.reconcile.compare import ReconcileProgress

OPERATION = "subscription.migrate_price"
DEFAULT_RATE = 20.0  # requests/s: below Stripe's 25/s in test mode (100/s live)
NOT_LIVE = ENDED_STATUSES | {"incomplete"}
AT_CHOICES = ("now", "period-end")
MONTHS = {
    "month": Fraction(1),
    "year": Fraction(12),
    "week": Fraction(12, 52),
    "day": Fraction(12, 365),
}


@dataclass(frozen=True)
class MigrateOptions:
    """What ``subs migrate`` was asked: the plan, which tenants, how, how fast."""

    plan_slug: str
    tenants: tuple[str, ...] = ()
    limit: int | None = None
    proration: str | None = None  # None: create_prorations now, none at period end
    at: str = "now"
    rate: float = DEFAULT_RATE


@dataclass(frozen=True)
class TenantMove:
    """One tenant's line: moved, would move, skipped or failed, with the amounts."""

    tenant: str
    subscription: str
    outcome: str
    old_price: str | None
    old_amount: int | None
    new_amount: int
    currency: str
    quantity: int
    message: str
    preview: InvoicePreview | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "subscription": self.subscription,
            "outcome": self.outcome,
            "old_price": self.old_price,
            "old_amount": format_money(_times(self.old_amount, self.quantity), self.currency),
            "new_amount": format_money(self.new_amount * self.quantity, self.currency),
            "quantity": self.quantity,
            "message": self.message,
            "invoice_preview": None if self.preview is None else preview_view(self.preview),
        }


@dataclass(frozen=True)
class MigrationReport:
    """The whole run: every tenant's line, totals, and the monthly revenue it changes."""

    plan: str
    price: str
    currency: str
    months: Fraction  # one billing interval in months
    at: str
    proration: str
    dry_run: bool
    moves: tuple[TenantMove, ...]
    stripe_writes: tuple[dict[str, Any], ...] = ()
    requests: int = 0

    def count(self, *outcomes: str) -> int:
        return sum(1 for move in self.moves if move.outcome in outcomes)

    def monthly(self, *, after: bool) -> str:
        """Recurring revenue per month of the subscriptions this run moves (or would)."""
        moving = [m for m in self.moves if m.outcome in ("moved", "would move")]
        total = sum(
            (Fraction(_amount(m, after=after) * m.quantity) / self.months for m in moving),
            Fraction(0),
        )
        return format_money(round(total), self.currency)

    @property
    def failures(self) -> tuple[TenantMove, ...]:
        return tuple(m for m in self.moves if m.outcome == "failed")

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "price": self.price,
            "at": self.at,
            "proration": self.proration,
            "dry_run": self.dry_run,
            "moved": self.count("moved", "would move"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "monthly_revenue_before": self.monthly(after=False),
            "monthly_revenue_after": self.monthly(after=True),
            "requests": self.requests,
            "tenants": [move.to_dict() for move in self.moves],
            "stripe_writes": list(self.stripe_writes),
        }


@dataclass(frozen=True)
class _Target:
    """A subscription to move (or an interrupted move to finish), with its tenant."""

    tenant: TenantRef
    live: SubscriptionInfo
    proration: str  # an interrupted run's own, so its key stays the same
    old_price: str | None  # what it is moved from (an interrupted run's recorded ``from``)
    old_amount: int | None
    interrupted: bool = False


def migrate_plan(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    options: MigrateOptions,
    rules: BillingRules = BillingRules(),
    progress: ReconcileProgress | None = None,
) -> MigrationReport:
    """Move the plan's subscriptions on older prices to its current price, one intent each."""
    behavior = _check_options(options)
    pacer = Pacer(options.rate)
    with db.read() as session:
        plan = _require_plan(session, options.plan_slug)
        for slug in options.tenants:
            tenant_rules.require_tenant(session, slug)
    if progress is not None:
        progress.start("reading Stripe", None)
    targets, skipped = _targets(db, gateway, pacer, plan, options, behavior)
    if progress is not None:
        progress.start("moving subscriptions", len(targets))
    moves = list(skipped)
    for target in targets:
        moves.append(_move(db, gateway, invocation, pacer, plan, target, rules))
        if progress is not None:
            progress.advance()
    return MigrationReport(
        plan=plan.slug,
        price=plan.price_id,
        currency=plan.currency,
        months=_months(plan.interval, plan.interval_count),
        at=options.at,
        proration=behavior,
        dry_run=invocation.dry_run,
        moves=tuple(sorted(moves, key=lambda m: (m.tenant, m.subscription))),
        stripe_writes=planned_writes(gateway),
        requests=pacer.spent,
    )


def _check_options(options: MigrateOptions) -> str:
    """The proration to send, after every option is checked (nothing read yet)."""
    if options.at not in AT_CHOICES:
        raise UsageError(f"--at must be one of {', '.join(AT_CHOICES)}")
    if options.limit is not None and options.limit < 1:
        raise UsageError("--limit must be at least 1")
    if not 0 < options.rate <= 100:
        raise UsageError("--rate must be above 0 and at most 100 requests/s (Stripe's live limit)")
    if options.at == "period-end":
        if options.proration not in (None, "none"):
            raise UsageError(
                "--at period-end bills the new price from the next period (proration none); "
                "leave out --proration or pass --proration none"
            )
        return "none"
    return check_proration(options.proration or "create_prorations")


@dataclass(frozen=True)
class PlanPrice:
    """The plan as read in phase 1, with the Stripe price it bills now."""

    slug: str
    product_id: str
    price_id: str
    amount: int
    currency: str
    interval: str
    interval_count: int


def _require_plan(session: Session, slug: str) -> PlanPrice:
    plan = plans_repo.get_by_slug(session=session, slug=slug)
    if plan is None:
        raise NotFound(f"no plan {slug!r}; `billing plans list` shows the plans")
    if not plan.stripe_price_id or not plan.stripe_product_id:
        raise Conflict(f"plan {slug} has no Stripe price yet; run `billing plans sync`")
    return PlanPrice(
        slug=plan.slug,
        product_id=plan.stripe_product_id,
        price_id=plan.stripe_price_id,
        amount=plan.amount,
        currency=plan.currency,
        interval=plan.interval,
        interval_count=plan.interval_count,
    )


def _require_synced(prices: Sequence[PriceInfo], plan: PlanPrice) -> None:
    """Refuse a plan changed here but not synced: the move would be to a stale price."""
    current = next((price for price in prices if price.id == plan.price_id), None)
    shape = (plan.amount, plan.currency, plan.interval, plan.interval_count)
    if current is None or not current.active or shape != _shape(current):
        raise Conflict(
            f"plan {plan.slug} is {format_money(plan.amount, plan.currency)}/{plan.interval} "
            f"here but Stripe's price {plan.price_id} differs or is archived; "
            "run `billing plans sync` first"
        )


def _shape(price: PriceInfo) -> tuple[int | None, str, str | None, int]:
    return (price.unit_amount, price.currency, price.interval, price.interval_count or 1)


def _months(interval: str, count: int) -> Fraction:
    return MONTHS.get(interval, Fraction(1)) * max(count, 1)


def older_prices(prices: Iterable[PriceInfo], plan: PlanPrice) -> list[PriceInfo]:
    """The plan's earlier prices a subscription can be moved from without changing its cycle:
    same product (or tagged for the plan), same currency and interval, not the current one."""
    return sorted(
        (
            price
            for price in prices
            if price.id != plan.price_id
            and (
                price.product_id == plan.product_id or price.metadata.get(METADATA_KEY) == plan.slug
            )
            and _shape(price)[1:] == (plan.currency, plan.interval, plan.interval_count)
        ),
        key=lambda price: price.id,
    )


def _targets(
    db: Database,
    gateway: Gateway,
    pacer: Pacer,
    plan: PlanPrice,
    options: MigrateOptions,
    behavior: str,
) -> tuple[list[_Target], list[TenantMove]]:
    """Who to move (interrupted moves first to finish), and who is skipped, with why."""
    listed, amounts = _listed(gateway, pacer, plan)
    tenants, interrupted = _local_state(db, plan.slug)
    wanted = set(options.tenants)
    targets: dict[str, _Target] = {}
    skipped: list[TenantMove] = []
    for live in listed:
        tenant = tenants.get(live.id)
        if tenant is None or (wanted and tenant.slug not in wanted):
            if tenant is None:
                skipped.append(_line(plan, None, live, "skipped", "no tenant names it"))
            continue
        if live.status in NOT_LIVE:
            skipped.append(_line(plan, tenant.slug, live, "skipped", f"not live ({live.status})"))
            continue
        started = interrupted.pop(tenant.slug, None)
        proration = started[0] if started else behavior
        targets[tenant.slug] = _Target(
            tenant, live, proration, live.price_id, live.price_amount, started is not None
        )
    for slug, (proration, old) in sorted(interrupted.items()):  # moved in Stripe, unrecorded
        tenant = next((t for t in tenants.values() if t.slug == slug), None)
        if tenant is None or tenant.subscription_id is None or (wanted and slug not in wanted):
            continue
        pacer.spend()
        live = gateway.retrieve_subscription(tenant.subscription_id)
        targets[slug] = _Target(tenant, live, proration, old, amounts.get(old or ""), True)
    named = {move.tenant for move in skipped} | set(targets)
    skipped += [_not_listed(plan, slug) for slug in sorted(wanted - named)]
    chosen = sorted(targets.values(), key=lambda t: (not t.interrupted, t.tenant.slug))
    return (chosen if options.limit is None else chosen[: options.limit]), skipped


def _not_listed(plan: PlanPrice, slug: str) -> TenantMove:
    """A tenant asked for by name with no live subscription on an older price of the plan:
    already moved, on another plan, or without a subscription."""
    return TenantMove(
        tenant=slug,
        subscription="-",
        outcome="skipped",
        old_price=None,
        old_amount=None,
        new_amount=plan.amount,
        currency=plan.currency,
        quantity=1,
        message=f"no live subscription on an older price of {plan.slug}",
    )


def _listed(
    gateway: Gateway, pacer: Pacer, plan: PlanPrice
) -> tuple[list[SubscriptionInfo], dict[str, int | None]]:
    """The live subscriptions on the plan's older prices, and those prices' amounts: list
    pages only."""
    pacer.spend()
    listed: list[SubscriptionInfo] = []
    prices = _paid_list(pacer, gateway.list_prices)
    _require_synced(prices, plan)
    older = older_prices(prices, plan)
    for price in older:
        pacer.spend()
        listed += _paid_list(pacer, partial(gateway.list_subscriptions_for_price, price.id))
    return listed, {price.id: price.unit_amount for price in older}


def _paid_list(pacer: Pacer, read: Callable[[], Sequence[Any]]) -> list[Any]:
    """A paged list, its pages after the first paid for once their number is known."""
    found = list(read())
    pacer.spend(max(0, (len(found) - 1) // 100))
    return found


def _local_state(
    db: Database, plan_slug: str
) -> tuple[dict[str, TenantRef], dict[str, tuple[str, str | None]]]:
    """Subscription id -> tenant (the local rows), and the tenants with an interrupted move of
    this plan -> the proration it was started with and the price it recorded moving from."""
    with db.read() as session:
        tenants = {
            row.stripe_subscription_id: _ref(tenant, row)
            for row, tenant in subscriptions_repo.list_with_tenants(session=session)
            if row.stripe_subscription_id
        }
        open_moves = {
            str(intent.tenant_slug): (
                str((intent.params or {}).get("proration")),
                (intent.steps or {}).get("from"),
            )
            for intent in intents_repo.open_of_operation(session=session, operation=OPERATION)
            if (intent.params or {}).get("plan") == plan_slug and intent.tenant_slug
        }
    return tenants, open_moves


def _ref(tenant: Tenant, row: TenantSubscription) -> TenantRef:
    assert tenant.id is not None
    return TenantRef(
        id=tenant.id,
        slug=tenant.slug,
        name=tenant.name,
        email=tenant.email,
        customer_id=row.stripe_customer_id,
        subscription_id=row.stripe_subscription_id,
        subscription_status=row.status,
    )


def _move(
    db: Database,
    gateway: Gateway,
    invocation: Invocation,
    pacer: Pacer,
    plan: PlanPrice,
    target: _Target,
    rules: BillingRules,
) -> TenantMove:
    """One tenant's change over the runner; a refusal or a Stripe error is that tenant's line."""
    tenant, live = target.tenant, target.live
    pacer.spend(3 if invocation.dry_run else 1)  # dry run: the write's read, and the preview
    try:
        change = _price_change(db, gateway, invocation, plan, target, rules)
        result = run(db, gateway, invocation, change)
    except BillingError as error:
        return _line(plan, tenant.slug, live, "failed", error.message, old=target)
    outcome = _outcome(result.change, dry_run=invocation.dry_run)
    message = result.change.message
    return _line(plan, tenant.slug, live, outcome, message, result.preview, old=target)


def _outcome(change: Change, *, dry_run: bool) -> str:
    if not change.changed:
        return "skipped"
    return "would move" if dry_run else "moved"


def _price_change(
    db: Database,
    gateway: Gateway,
    invocation: Invocation,
    plan: PlanPrice,
    target: _Target,
    rules: BillingRules,
) -> StripeChange[SubscriptionInfo]:
    """The tenant's move as the runner takes it: done when Stripe's item is on the new price."""
    tenant, live = target.tenant, target.live
    if live.item_id is None:
        raise Conflict(f"subscription {live.id} has no item to change")
    item_id, price_id = live.item_id, plan.price_id
    behavior = check_proration(target.proration)
    update = SubscriptionUpdate(db, invocation, tenant, live, rules)

    def moved_from(intent: Intent) -> str:
        return str(intent.steps.get("from") or "its older price")

    return update.change(
        operation=OPERATION,
        params={
            "subscription": live.id,
            "plan": plan.slug,
            "price": price_id,
            "proration": behavior,
        },
        done=live.price_id == price_id,
        why=f"{tenant.slug} is already on {plan.slug}'s current price",
        action="migrate",
        what=f"moving {tenant.slug} to {plan.slug}'s current price",
        verbs=("move", "moved"),
        send=lambda key: gateway.change_subscription_price(
            live.id,
            item_id=item_id,
            price_id=price_id,
            proration_behavior=behavior,
            idempotency_key=key,
        ),
        outcome=lambda _, intent: f"price {moved_from(intent)} -> {price_id} ({behavior})",
        message=lambda _, intent: (
            f"{tenant.slug} from {moved_from(intent)} to {price_id} (proration: {behavior})"
        ),
        preview=lambda: gateway.preview_price_change(
            live.id,
            item_id=item_id,
            price_id=price_id,
            proration_behavior=behavior,
            proration_date=int(utcnow().timestamp()),
        ),
    )


def _line(
    plan: PlanPrice,
    tenant: str | None,
    live: SubscriptionInfo,
    outcome: str,
    message: str,
    preview: InvoicePreview | None = None,
    *,
    old: _Target | None = None,
) -> TenantMove:
    """The tenant's line; the old price is the target's (an interrupted run's recorded one)."""
    return TenantMove(
        tenant=tenant or "-",
        subscription=live.id,
        outcome=outcome,
        old_price=old.old_price if old else live.price_id,
        old_amount=old.old_amount if old else live.price_amount,
        new_amount=plan.amount,
        currency=plan.currency,
        quantity=live.quantity,
        message=message,
        preview=preview,
    )


def _times(amount: int | None, quantity: int) -> int | None:
    return None if amount is None else amount * quantity


def _amount(move: TenantMove, *, after: bool) -> int:
    return move.new_amount if after else (move.old_amount or 0)
