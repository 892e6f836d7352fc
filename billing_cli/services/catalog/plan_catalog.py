"""Plan catalog: the read side of plans sync, shared by ``plans sync`` and ``plans list``.

This module owns everything that looks at Stripe without changing it:

- :class:`PlanSpec`, what a plan row says Stripe should hold, detached from its session;
- :func:`read_catalog`, one snapshot of Stripe's Products and Prices (``list_products`` +
  ``list_prices``, 100 a page), so a run costs a handful of reads whatever the number of plans;
- :func:`match_plan`, which finds a plan's objects by stored id, then by the lookup key
  (:func:`lookup_key_for`), then by the ``billing_plan=<slug>`` metadata tag; never by name;
- the drift rules, :func:`price_differences` and :func:`product_changes`, and their wording.

Why it is apart from :mod:`.plan_sync`: ``plans list`` (:mod:`.plans`) reports each plan's state
with these very rules, so "in sync" there means a sync would write nothing; keeping them here,
free of writes, transactions and audit, lets both commands share one definition of drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from billing_cli.gateway import Gateway, PriceInfo, ProductInfo
from billing_cli.models import SubscriptionPlan
from billing_cli.money import format_money

METADATA_KEY = "billing_plan"


def lookup_key_for(slug: str) -> str:
    """The plan's lookup key: stable across price changes, so integrations can find its price."""
    return f"billing_plan:{slug}"


@dataclass(frozen=True)
class PlanSpec:
    """What a plan row says Stripe should hold, detached from its database session."""

    slug: str
    name: str
    amount: int
    currency: str
    interval: str
    interval_count: int
    active: bool
    product_id: str | None
    price_id: str | None
    revision: str

    @classmethod
    def of(cls, plan: SubscriptionPlan) -> PlanSpec:
        stamp = plan.updated_at or plan.created_at
        return cls(
            slug=plan.slug,
            name=plan.name,
            amount=plan.amount,
            currency=plan.currency,
            interval=plan.interval,
            interval_count=plan.interval_count,
            active=plan.active,
            product_id=plan.stripe_product_id,
            price_id=plan.stripe_price_id,
            revision=stamp.isoformat() if stamp else "",
        )


@dataclass(frozen=True)
class Catalog:
    """One snapshot of Stripe's products and prices, indexed the ways matching needs."""

    products: dict[str, ProductInfo]
    prices: dict[str, PriceInfo]
    by_lookup_key: dict[str, PriceInfo]
    products_by_slug: dict[str, list[ProductInfo]]
    prices_by_slug: dict[str, list[PriceInfo]]


def read_catalog(gateway: Gateway) -> Catalog:
    """List every product and price once (paged); never one retrieve per plan."""
    products = {p.id: p for p in gateway.list_products()}
    prices = {p.id: p for p in gateway.list_prices()}
    products_by_slug: dict[str, list[ProductInfo]] = {}
    for product in products.values():
        if slug := product.metadata.get(METADATA_KEY):
            products_by_slug.setdefault(slug, []).append(product)
    prices_by_slug: dict[str, list[PriceInfo]] = {}
    for price in prices.values():
        if slug := price.metadata.get(METADATA_KEY):
            prices_by_slug.setdefault(slug, []).append(price)
    by_lookup = {p.lookup_key: p for p in prices.values() if p.lookup_key}
    return Catalog(products, prices, by_lookup, products_by_slug, prices_by_slug)


@dataclass(frozen=True)
class Match:
    """The Stripe objects that belong to a plan, and how each was found."""

    product: ProductInfo | None
    price: PriceInfo | None
    product_found_by: str = ""
    price_found_by: str = ""

    @property
    def adopts(self) -> bool:
        """True when an object was found some other way than by its stored id."""
        return self.product_found_by not in ("", "stored") or self.price_found_by not in (
            "",
            "stored",
        )


def match_plan(spec: PlanSpec, catalog: Catalog) -> Match:
    """Stored ids first, then the lookup key, then metadata; never a guess by name."""
    holder = catalog.by_lookup_key.get(lookup_key_for(spec.slug))
    product, product_by = _find_product(spec, catalog, holder)
    price, price_by = _find_price(spec, catalog, holder, product)
    return Match(product, price, product_by, price_by)


def _find_product(
    spec: PlanSpec, catalog: Catalog, holder: PriceInfo | None
) -> tuple[ProductInfo | None, str]:
    if spec.product_id and spec.product_id in catalog.products:
        return catalog.products[spec.product_id], "stored"
    if holder is not None and holder.product_id in catalog.products:
        return catalog.products[holder.product_id], "lookup key"
    tagged = sorted(catalog.products_by_slug.get(spec.slug, []), key=lambda p: not p.active)
    return (tagged[0], "metadata") if tagged else (None, "")


def _find_price(
    spec: PlanSpec, catalog: Catalog, holder: PriceInfo | None, product: ProductInfo | None
) -> tuple[PriceInfo | None, str]:
    if spec.price_id and spec.price_id in catalog.prices:
        return catalog.prices[spec.price_id], "stored"
    if holder is not None:
        return holder, "lookup key"
    tagged = [
        p
        for p in catalog.prices_by_slug.get(spec.slug, [])
        if p.active and (product is None or p.product_id == product.id)
    ]
    exact = [p for p in tagged if not price_differences(spec, p)]
    candidates = exact or tagged
    return (candidates[0], "metadata") if candidates else (None, "")


def every(interval: str | None, count: int | None) -> str:
    """``month, 1`` -> ``"month"``; ``month, 3`` -> ``"3 months"``."""
    if interval is None:
        return "one-time"
    return interval if (count or 1) == 1 else f"{count} {interval}s"


def price_text(spec: PlanSpec) -> str:
    """``"29.00 USD per month"``."""
    money = format_money(spec.amount, spec.currency)
    return f"{money} per {every(spec.interval, spec.interval_count)}"


def price_differences(spec: PlanSpec, price: PriceInfo) -> list[str]:
    """Why this price cannot serve the plan; any entry means a new Price is needed."""
    found: list[str] = []
    if price.unit_amount != spec.amount or price.currency != spec.currency:
        stripe_amount = format_money(price.unit_amount, price.currency)
        local = format_money(spec.amount, spec.currency)
        found.append(f"amount {stripe_amount} in Stripe, {local} here")
    if price.interval != spec.interval or (price.interval_count or 1) != spec.interval_count:
        stripe_every = every(price.interval, price.interval_count)
        found.append(
            f"interval {stripe_every} in Stripe, {every(spec.interval, spec.interval_count)} here"
        )
    if not price.active:
        found.append(f"price {price.id} is archived in Stripe")
    return found


def product_changes(spec: PlanSpec, product: ProductInfo) -> dict[str, Any]:
    """The product fields sync would send: name, active, and the metadata tag."""
    changes: dict[str, Any] = {}
    if product.name != spec.name:
        changes["name"] = spec.name
    if not product.active:
        changes["active"] = True
    if product.metadata.get(METADATA_KEY) != spec.slug:
        changes["metadata"] = {METADATA_KEY: spec.slug}
    return changes


def describe_product_changes(product: ProductInfo, changes: dict[str, Any]) -> list[str]:
    """Operator-readable lines for :func:`product_changes`."""
    lines: list[str] = []
    if "name" in changes:
        lines.append(f"name {product.name!r} in Stripe, {changes['name']!r} here")
    if "active" in changes:
        lines.append(f"product {product.id} is archived in Stripe")
    if "metadata" in changes:
        lines.append(f"product {product.id} lacks the {METADATA_KEY} metadata tag")
    return lines
