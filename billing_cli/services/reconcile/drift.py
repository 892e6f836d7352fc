"""Drift: how one tenant's local rows differ from what Stripe holds for it. Pure functions.

``reconcile`` and ``subs refresh`` compare a :class:`LocalTenant` (a detached copy of the tenant
and its subscription row) with a :class:`~.stripe_state.TenantInStripe` and get a list of
:class:`Drift`, each with a kind from :data:`KINDS` and a line an operator can read. Nothing here
reads a database or Stripe, so every rule can be tested on plain values and the report of a
dry run is the report of the real run.

The kinds (README, "Reconcile"):

- ``status``, ``plan``, ``period``, ``cancel``: the local row records the same subscription as
  Stripe but a different status; price or plan; period or trial end; cancel flags.
- ``untracked``: Stripe's subscription for the tenant (see ``choose_subscription``) is not the
  one the local row records, or the row records none.
- ``missing``: the local row records a subscription Stripe does not have.
- ``double_billing``: more than one live subscription for the tenant.
- ``customer_deleted``: the stored customer is no longer among Stripe's customers.
- ``suspension``: the tenant's suspension disagrees with the billing policy applied to Stripe's
  state (a manual hold never disagrees: only a person lifts it).

Orphans (live subscriptions tagged with a tenant the database does not have) and plan
catalogue drift are not about one local tenant; :mod:`.reconcile` finds those.
"""

from __future__ import annotations

from dataclasses import dataclass

from billing_cli.gateway import SubscriptionInfo
from billing_cli.models import Tenant, TenantSubscription
from billing_cli.money import format_money
from billing_cli.services.catalog.plan_catalog import every
from billing_cli.services.reconcile.stripe_state import TenantInStripe
from billing_cli.services.webhooks.policy import billing_suspension
from billing_cli.timeparse import iso

KINDS = (
    "status",
    "plan",
    "period",
    "cancel",
    "untracked",
    "missing",
    "double_billing",
    "customer_deleted",
    "suspension",
    "orphan",
    "plan_catalogue",
)
# Drift a local write can heal; double billing and orphans need a Stripe write, plan
# catalogue drift needs `plans sync`.
LOCALLY_FIXABLE = frozenset(KINDS) - {"double_billing", "orphan", "plan_catalogue"}


@dataclass(frozen=True)
class Drift:
    """One difference between the local side and Stripe."""

    kind: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "detail": self.detail}


@dataclass(frozen=True)
class LocalTenant:
    """A tenant and its subscription row as read, detached from the session."""

    slug: str
    status: str
    suspended_by: str | None
    customer_id: str | None = None
    subscription_id: str | None = None
    subscription_status: str | None = None
    plan: str | None = None
    price_id: str | None = None
    period_start: str | None = None
    period_end: str | None = None
    trial_end: str | None = None
    cancel_at_period_end: bool = False
    canceled_at: str | None = None
    failed_attempts: int = 0

    @classmethod
    def of(
        cls, tenant: Tenant, row: TenantSubscription | None, plan_slugs: dict[int, str]
    ) -> LocalTenant:
        if row is None:
            return cls(tenant.slug, tenant.status, tenant.suspended_by)
        return cls(
            slug=tenant.slug,
            status=tenant.status,
            suspended_by=tenant.suspended_by,
            customer_id=row.stripe_customer_id,
            subscription_id=row.stripe_subscription_id,
            subscription_status=row.status,
            plan=plan_slugs.get(row.plan_id) if row.plan_id is not None else None,
            price_id=row.stripe_price_id,
            period_start=iso(row.current_period_start),
            period_end=iso(row.current_period_end),
            trial_end=iso(row.trial_end),
            cancel_at_period_end=row.cancel_at_period_end,
            canceled_at=iso(row.canceled_at),
            failed_attempts=row.failed_payment_attempts,
        )


def compare(
    local: LocalTenant,
    stripe: TenantInStripe,
    *,
    plan_for_price: dict[str, str],
    max_failed_attempts: int,
) -> list[Drift]:
    """Every drift of one tenant, in :data:`KINDS` order."""
    found: list[Drift] = []
    chosen = stripe.chosen
    known_ids = {s.id for s in stripe.subscriptions}
    if local.subscription_id and local.subscription_id not in known_ids:
        found.append(
            Drift("missing", f"local subscription {local.subscription_id} is not in Stripe")
        )
    if chosen is not None and chosen.id == local.subscription_id:
        found += _field_drift(local, chosen, plan_for_price)
    elif chosen is not None:
        recorded = local.subscription_id or "none"
        found.append(
            Drift(
                "untracked",
                f"Stripe's subscription is {chosen.id} ({chosen.status}); "
                f"the local row records {recorded}",
            )
        )
    if len(stripe.live) > 1:
        extra = ", ".join(f"{s.id} ({s.status})" for s in stripe.extra_live)
        found.append(
            Drift(
                "double_billing",
                f"{len(stripe.live)} live subscriptions: keeps {_id(chosen)}, extra {extra}",
            )
        )
    if stripe.customer_deleted:
        found.append(
            Drift("customer_deleted", f"customer {stripe.stored_customer_id} was deleted in Stripe")
        )
    if suspension := _suspension_drift(local, chosen, max_failed_attempts):
        found.append(suspension)
    return found


def _id(sub: SubscriptionInfo | None) -> str:
    return sub.id if sub is not None else "none"


def _field_drift(
    local: LocalTenant, sub: SubscriptionInfo, plan_for_price: dict[str, str]
) -> list[Drift]:
    found: list[Drift] = []
    if local.subscription_status != sub.status:
        found.append(
            Drift("status", f"status {local.subscription_status} here, {sub.status} in Stripe")
        )
    expected_plan = plan_for_price.get(sub.price_id) if sub.price_id else None
    if local.price_id != sub.price_id:
        plan = f" (plan {expected_plan})" if expected_plan else f" ({_unknown_price(sub)})"
        found.append(Drift("plan", f"price {local.price_id} here, {sub.price_id} in Stripe{plan}"))
    elif expected_plan is not None and local.plan != expected_plan:
        found.append(Drift("plan", f"plan {local.plan} here, {expected_plan} in Stripe"))
    periods = (
        ("period start", local.period_start, iso(sub.current_period_start)),
        ("period end", local.period_end, iso(sub.current_period_end)),
        ("trial end", local.trial_end, iso(sub.trial_end)),
    )
    found += [
        Drift("period", f"{name} {here} here, {there} in Stripe")
        for name, here, there in periods
        if here != there
    ]
    if local.cancel_at_period_end != sub.cancel_at_period_end:
        found.append(
            Drift(
                "cancel",
                f"cancel_at_period_end {_yes(local.cancel_at_period_end)} here, "
                f"{_yes(sub.cancel_at_period_end)} in Stripe",
            )
        )
    if local.canceled_at != iso(sub.canceled_at):
        found.append(
            Drift(
                "cancel", f"canceled_at {local.canceled_at} here, {iso(sub.canceled_at)} in Stripe"
            )
        )
    return found


def _unknown_price(sub: SubscriptionInfo) -> str:
    """A price no plan stores, described from the expanded Price when Stripe sent it."""
    price = sub.price
    if price is None or price.unit_amount is None:
        return "no plan has this price"
    money = format_money(price.unit_amount, price.currency)
    return f"no plan has this price: {money} per {every(price.interval, price.interval_count)}"


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _suspension_drift(
    local: LocalTenant, chosen: SubscriptionInfo | None, max_failed_attempts: int
) -> Drift | None:
    """The billing policy applied to Stripe's state (the local state when Stripe has none)."""
    if chosen is not None:
        status: str | None = chosen.status
        # Failed attempts count for the subscription they were recorded against only.
        attempts = local.failed_attempts if chosen.id == local.subscription_id else 0
    else:
        status, attempts = local.subscription_status, local.failed_attempts
    if status is None:
        return None
    reason = billing_suspension(status=status, attempts=attempts, max_attempts=max_failed_attempts)
    if reason is not None and local.status == "active":
        return Drift("suspension", f"active here, but the billing policy suspends it ({reason})")
    if reason is None and local.status == "suspended" and local.suspended_by == "billing":
        return Drift(
            "suspension",
            f"suspended by billing, but the billing policy lifts it (subscription {status})",
        )
    return None
