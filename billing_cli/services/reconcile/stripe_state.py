"""What Stripe holds for each tenant, and which of a tenant's subscriptions is *the* one.

``subs refresh`` (one tenant) and ``reconcile`` (every tenant) read Stripe differently (a few
targeted reads against two paged lists of the whole account) but must judge the answer the
same way, or a refresh and a ``reconcile --fix`` could disagree about one tenant. Both build a
:class:`StripeState` and ask it :meth:`StripeState.for_tenant`, which gathers a tenant's Stripe
objects by every link the tool knows: the customer id stored locally, customers and
subscriptions tagged ``metadata.tenant=<slug>`` (the tool tags everything it creates), and the
subscription id stored locally.

Choosing *the* subscription (:func:`choose_subscription`): a live one first (not canceled or
incomplete_expired), preferring the one the local row already records, else the newest live
one; when none is live, the newest of all. Preferring the recorded one among several live ones
matters: the others are what ``reconcile --cancel-orphans`` cancels as double billing, and the
subscription the tool created and tracks is the one to keep.

Stripe lists only customers that exist, so a stored customer id missing from the list is a
deleted customer (``customer_deleted``); no per-tenant retrieve is needed to tell.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from billing_cli.errors import NotFoundInStripe
from billing_cli.gateway import CustomerInfo, Gateway, SubscriptionInfo
from billing_cli.services.stripe_ops import TENANT_METADATA_KEY

ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})


def is_live(subscription: SubscriptionInfo) -> bool:
    """True while the subscription has not ended (it bills, or may bill again)."""
    return subscription.status not in ENDED_STATUSES


def _newest_first(subscriptions: Iterable[SubscriptionInfo]) -> list[SubscriptionInfo]:
    return sorted(
        subscriptions, key=lambda s: (s.created.timestamp() if s.created else 0, s.id), reverse=True
    )


def choose_subscription(
    subscriptions: Iterable[SubscriptionInfo], *, recorded_id: str | None
) -> SubscriptionInfo | None:
    """The tenant's subscription: live first (the recorded one, else the newest), else newest."""
    ordered = _newest_first(subscriptions)
    live = [s for s in ordered if is_live(s)]
    for sub in live:
        if sub.id == recorded_id:
            return sub
    if live:
        return live[0]
    return ordered[0] if ordered else None


def choice_reason(chosen: SubscriptionInfo | None, *, recorded_id: str | None, live: int) -> str:
    """Why ``chosen`` was taken, in the words the report prints."""
    if chosen is None:
        return "Stripe has no subscription for this tenant"
    if live > 1:
        kept = "the one recorded locally" if chosen.id == recorded_id else "the newest"
        return f"{live} live subscriptions; took {kept}, {chosen.id}"
    if live == 1:
        return f"the live subscription {chosen.id}"
    return f"none is live; took the newest, {chosen.id} ({chosen.status})"


@dataclass(frozen=True)
class TenantInStripe:
    """One tenant's objects in Stripe, and the subscription its local row should follow."""

    slug: str
    stored_customer_id: str | None
    customer_deleted: bool
    customers: tuple[CustomerInfo, ...]
    subscriptions: tuple[SubscriptionInfo, ...]  # newest first
    chosen: SubscriptionInfo | None
    reason: str

    @property
    def live(self) -> list[SubscriptionInfo]:
        return [s for s in self.subscriptions if is_live(s)]

    @property
    def extra_live(self) -> list[SubscriptionInfo]:
        """Live subscriptions besides the chosen one: double billing."""
        chosen_id = self.chosen.id if self.chosen else None
        return [s for s in self.live if s.id != chosen_id]


@dataclass
class StripeState:
    """A snapshot of the account's customers and subscriptions, indexed for tenant lookups."""

    customers: dict[str, CustomerInfo]  # existing (not deleted) customers by id
    subscriptions: dict[str, SubscriptionInfo]
    complete: bool  # every customer of the account was listed
    gone: set[str] = field(default_factory=set)  # customers seen deleted (or not found)
    by_customer: dict[str, list[str]] = field(default_factory=dict)
    by_tag: dict[str, list[str]] = field(default_factory=dict)
    customers_by_tag: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        customers: Iterable[CustomerInfo],
        subscriptions: Iterable[SubscriptionInfo],
        *,
        complete: bool,
        gone: Iterable[str] = (),
    ) -> StripeState:
        customers = list(customers)
        state = cls(
            customers={c.id: c for c in customers if not c.deleted},
            subscriptions={s.id: s for s in subscriptions},
            complete=complete,
            gone={*gone, *(c.id for c in customers if c.deleted)},
        )
        for sub in state.subscriptions.values():
            state.by_customer.setdefault(sub.customer_id, []).append(sub.id)
            if slug := sub.metadata.get(TENANT_METADATA_KEY):
                state.by_tag.setdefault(slug, []).append(sub.id)
        for customer in state.customers.values():
            if slug := customer.metadata.get(TENANT_METADATA_KEY):
                state.customers_by_tag.setdefault(slug, []).append(customer.id)
        return state

    def customer_gone(self, customer_id: str) -> bool:
        """True for a customer Stripe deleted: seen deleted, or absent from a full listing
        (Stripe lists only customers that exist)."""
        if customer_id in self.gone:
            return True
        return self.complete and customer_id not in self.customers

    def customer_ids_of(self, slug: str, stored_customer_id: str | None) -> list[str]:
        """The tenant's customer ids: the stored one (even if deleted), then tagged ones."""
        ids = [stored_customer_id] if stored_customer_id else []
        ids += [c for c in self.customers_by_tag.get(slug, []) if c not in ids]
        return ids

    def for_tenant(
        self, slug: str, *, stored_customer_id: str | None, recorded_subscription_id: str | None
    ) -> TenantInStripe:
        customer_ids = self.customer_ids_of(slug, stored_customer_id)
        sub_ids: dict[str, None] = {}
        for customer_id in customer_ids:
            sub_ids.update(dict.fromkeys(self.by_customer.get(customer_id, [])))
        sub_ids.update(dict.fromkeys(self.by_tag.get(slug, [])))
        if recorded_subscription_id in self.subscriptions:
            sub_ids[recorded_subscription_id] = None
        subs = _newest_first(self.subscriptions[i] for i in sub_ids)
        chosen = choose_subscription(subs, recorded_id=recorded_subscription_id)
        live = sum(1 for s in subs if is_live(s))
        return TenantInStripe(
            slug=slug,
            stored_customer_id=stored_customer_id,
            customer_deleted=bool(stored_customer_id)
            and self.customer_gone(stored_customer_id or ""),
            customers=tuple(self.customers[c] for c in customer_ids if c in self.customers),
            subscriptions=tuple(subs),
            chosen=chosen,
            reason=choice_reason(chosen, recorded_id=recorded_subscription_id, live=live),
        )


def read_account(gateway: Gateway) -> StripeState:
    """Every customer and subscription in two paged lists (100 a page): reconcile's reads."""
    return StripeState.of(gateway.list_customers(), gateway.list_all_subscriptions(), complete=True)


def read_tenant(
    gateway: Gateway,
    *,
    slug: str,
    email: str,
    stored_customer_id: str | None,
    recorded_subscription_id: str | None,
) -> StripeState:
    """The few reads ``subs refresh`` needs for one tenant, shaped like :func:`read_account`.

    The stored customer (to learn whether it was deleted), the customers with the tenant's
    e-mail tagged with its slug, each one's subscriptions, and the recorded subscription when
    it was not among them (e.g. on a customer since deleted).
    """
    customers: dict[str, CustomerInfo] = {}
    gone: list[str] = []
    if stored_customer_id:
        try:
            customers[stored_customer_id] = gateway.retrieve_customer(stored_customer_id)
        except NotFoundInStripe:
            gone.append(stored_customer_id)
    for customer in gateway.list_customers(email=email):
        if customer.metadata.get(TENANT_METADATA_KEY) == slug:
            customers.setdefault(customer.id, customer)
    subscriptions: dict[str, SubscriptionInfo] = {}
    for customer in customers.values():
        if not customer.deleted:
            for sub in gateway.list_subscriptions(customer_id=customer.id):
                subscriptions[sub.id] = sub
    if recorded_subscription_id and recorded_subscription_id not in subscriptions:
        with contextlib.suppress(NotFoundInStripe):
            subscriptions[recorded_subscription_id] = gateway.retrieve_subscription(
                recorded_subscription_id
            )
    return StripeState.of(customers.values(), subscriptions.values(), complete=False, gone=gone)
