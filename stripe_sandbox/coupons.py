"""Discounts on subscriptions in the sandbox (coupons themselves are localstripe's).

localstripe serves ``/v1/coupons`` (create, list, retrieve) but cannot apply a coupon to a
subscription in the current API. Here ``POST /v1/subscriptions/{id}`` takes
``discounts[0][coupon]=ID`` (one discount, replacing any) and ``discounts=""`` (remove them),
through :mod:`.subscription_updates`. As Stripe does, applying one emits
``customer.discount.created`` and removing one ``customer.discount.deleted`` (a Discount object
naming the customer and subscription), each with ``customer.subscription.updated``.

As in Stripe, deleting a coupon (localstripe's ``DELETE /v1/coupons/{id}``) leaves the discounts
it gave running: a discount keeps the coupon as it was when applied, and renders that once the
coupon is gone.

Replaces: ``Subscription._export``'s constant ``"discounts": []`` (discount ids, or the
Discount objects under ``expand[]=discounts``). :mod:`.previews` applies the discount.
"""

from __future__ import annotations

from typing import Any

from localstripe import resources as ls

from stripe_sandbox import billing_cycle, common, events, subscription_updates, subscriptions

JSON = dict[str, Any]


def discount_of(sub: subscriptions.Subscription) -> JSON | None:
    """The subscription's discount as Stripe renders it, or None."""
    found: JSON | None = getattr(sub, "_discount", None)
    if found is None:
        return None
    coupon = ls.store.get(f"coupon:{found['coupon']}")
    rendered = coupon._export() if coupon is not None else found["coupon_as_applied"]
    return {
        "id": found["id"],
        "object": "discount",
        "checkout_session": None,
        "customer": sub.customer,
        "end": found["end"],
        "invoice": None,
        "invoice_item": None,
        "promotion_code": None,
        "source": {"coupon": rendered, "type": "coupon"},
        "start": found["start"],
        "subscription": sub.id,
        "subscription_item": None,
    }


def set_discounts(sub: subscriptions.Subscription, raw: Any) -> None:
    """Apply ``discounts`` to ``sub``: one coupon, or ``""`` to remove the discount."""
    if sub.status in ("canceled", "incomplete_expired"):
        raise common._bad("discounts", "A canceled subscription cannot take a discount.")
    before = sub._export()
    old = discount_of(sub)
    coupon_id = None
    if raw not in ("", None, []):
        entries = common._as_list(raw, "discounts")
        if len(entries) != 1 or not isinstance(entries[0], dict):
            raise common._bad("discounts", "The sandbox applies exactly one coupon.")
        coupon_id = common._req_str(entries[0].get("coupon"), "discounts[0][coupon]")
        coupon = ls.store.get(f"coupon:{coupon_id}")
        if coupon is None:
            raise common._error(
                400,
                f"No such coupon: '{coupon_id}'",
                param="discounts[0][coupon]",
                code="resource_missing",
            )
    if old is not None:
        sub._discount = None  # type: ignore[attr-defined]
        events.emit("customer.discount.deleted", _Discount(old))
    if coupon_id is not None:
        start = common._now()
        end = None
        if coupon.duration == "repeating":
            end = common.add_interval(start, "month", int(coupon.duration_in_months))
        sub._discount = {  # type: ignore[attr-defined]
            "id": common._rid("di_"),
            "coupon": coupon_id,
            "coupon_as_applied": coupon._export(),
            "start": start,
            "end": end,
        }
        coupon.times_redeemed += 1
        created = discount_of(sub)
        assert created is not None
        events.emit("customer.discount.created", _Discount(created))
    billing_cycle._emit_sub_updated(sub, before)


class _Discount:
    """A rendered discount, for ``emit`` (which exports the object it is given)."""

    def __init__(self, data: JSON) -> None:
        self.id = data["id"]
        self._data = data

    def _export(self, expand: list[str] | None = None) -> JSON:
        return dict(self._data)


ROUTES: list[tuple[str, str, common.Handler]] = []  # served by subscription_updates and localstripe

_installed = False


def install() -> None:
    """Register ``discounts`` and render subscriptions' discounts (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    subscription_updates.PARAMETERS["discounts"] = set_discounts
    original = subscriptions.Subscription._export

    def export(self: subscriptions.Subscription, expand: list[str] | None = None) -> JSON:
        obj = original(self, expand)
        discount = discount_of(self)
        if discount is None:
            obj["discounts"] = []
        elif expand and "discounts" in expand:
            obj["discounts"] = [discount]
        else:
            obj["discounts"] = [discount["id"]]
        return obj

    subscriptions.Subscription._export = export  # type: ignore[method-assign]
