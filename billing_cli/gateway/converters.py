"""Turn Stripe API objects into the gateway's own types, reading every API shape we meet.

Stripe renders an object in the API version of the request (or, for events, of the moment the
event was created), so the same field lives in different places over time:

* billing period: on the subscription before 2025-03-31 (basil), on ``items.data[]`` since;
* price of a subscription: ``items.data[0].price.id``, or ``.plan.id`` in very old shapes;
* proration flag of an invoice line: ``line.proration`` before basil,
  ``line.parent.subscription_item_details.proration`` (or ``invoice_item_details``) since;
* price of an invoice line: ``line.price.id`` before, ``line.pricing.price_details.price`` since.

Converters take a plain mapping or anything with ``to_dict()`` (a ``stripe.StripeObject``, which
is not a dict since stripe 15), so this module needs no stripe import and is easy to test.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from billing_cli.gateway.types import (
    BalanceTransactionInfo,
    CouponInfo,
    CustomerInfo,
    DiscountInfo,
    InvoicePreview,
    PaymentInfo,
    PaymentMethodInfo,
    PreviewLine,
    PriceInfo,
    ProductInfo,
    SubscriptionInfo,
)


def as_dict(obj: Any) -> dict[str, Any]:
    """A plain, JSON-compatible dict from a StripeObject or a mapping."""
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        data = to_dict(recursive=True, for_json=True)
        return dict(data)
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"expected a Stripe object or a mapping, not {type(obj).__name__}")


def _map(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _ref(value: Any) -> str | None:
    """An id from a field that is either the id or the expanded object."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        ref = value.get("id")
        return ref if isinstance(ref, str) else None
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _bool(value: Any) -> bool:
    # localstripe stores some booleans as the strings it was sent ("false").
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def timestamp(value: Any) -> datetime | None:
    """A Unix timestamp as an aware UTC datetime; None stays None."""
    seconds = _int(value)
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


def _metadata(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in _map(value).items() if v is not None}


def _first_item(sub: Mapping[str, Any]) -> dict[str, Any]:
    items = _map(sub.get("items")).get("data")
    if isinstance(items, list) and items:
        return _map(items[0])
    return {}


def product_info(obj: Any) -> ProductInfo:
    """A Product."""
    d = as_dict(obj)
    return ProductInfo(
        id=str(d["id"]),
        name=_text(d.get("name")) or "",
        active=_bool(d.get("active", True)),
        metadata=_metadata(d.get("metadata")),
    )


def price_info(obj: Any) -> PriceInfo:
    """A Price; a legacy Plan (``amount``, ``interval`` at the top) is read the same way."""
    d = as_dict(obj)
    recurring = _map(d.get("recurring"))
    interval = recurring.get("interval", d.get("interval"))
    interval_count = recurring.get("interval_count", d.get("interval_count"))
    unit_amount = d.get("unit_amount", d.get("amount"))
    return PriceInfo(
        id=str(d["id"]),
        product_id=_ref(d.get("product")) or "",
        unit_amount=_int(unit_amount),
        currency=_text(d.get("currency")) or "",
        interval=_text(interval),
        interval_count=_int(interval_count),
        active=_bool(d.get("active", True)),
        lookup_key=_text(d.get("lookup_key")),
        metadata=_metadata(d.get("metadata")),
    )


def customer_info(obj: Any) -> CustomerInfo:
    """A Customer, or the stub Stripe returns for a deleted one."""
    d = as_dict(obj)
    settings = _map(d.get("invoice_settings"))
    return CustomerInfo(
        id=str(d["id"]),
        email=_text(d.get("email")),
        name=_text(d.get("name")),
        metadata=_metadata(d.get("metadata")),
        default_payment_method=_ref(settings.get("default_payment_method")),
        deleted=_bool(d.get("deleted", False)),
        balance=_int(d.get("balance")) or 0,
        currency=_text(d.get("currency")),
    )


def payment_method_info(obj: Any) -> PaymentMethodInfo:
    """A PaymentMethod; only cards carry brand, last4 and expiry."""
    d = as_dict(obj)
    card = _map(d.get("card"))
    return PaymentMethodInfo(
        id=str(d["id"]),
        brand=_text(card.get("brand")) or _text(d.get("type")) or "unknown",
        last4=_text(card.get("last4")),
        exp_month=_int(card.get("exp_month")),
        exp_year=_int(card.get("exp_year")),
    )


def subscription_info(obj: Any) -> SubscriptionInfo:
    """A Subscription in either shape: period on the first item (current) or on itself (old)."""
    d = as_dict(obj)
    item = _first_item(d)
    price_id = _ref(item.get("price")) or _ref(item.get("plan")) or _ref(d.get("plan"))
    price = _map(item.get("price")) or _map(item.get("plan")) or _map(d.get("plan"))
    start = item.get("current_period_start", d.get("current_period_start"))
    end = item.get("current_period_end", d.get("current_period_end"))
    return SubscriptionInfo(
        id=str(d["id"]),
        customer_id=_ref(d.get("customer")) or "",
        status=_text(d.get("status")) or "",
        price_id=price_id,
        item_id=_text(item.get("id")),
        current_period_start=timestamp(start),
        current_period_end=timestamp(end),
        trial_end=timestamp(d.get("trial_end")),
        cancel_at_period_end=_bool(d.get("cancel_at_period_end", False)),
        canceled_at=timestamp(d.get("canceled_at")),
        latest_invoice_id=_ref(d.get("latest_invoice")),
        created=timestamp(d.get("created")),
        metadata=_metadata(d.get("metadata")),
        price_amount=_int(price.get("unit_amount", price.get("amount"))),
        price_currency=_text(price.get("currency")),
        price_metadata={str(k): str(v) for k, v in _map(price.get("metadata")).items()},
        price=_expanded_price(item.get("price")),
        pause_behavior=_text(_map(d.get("pause_collection")).get("behavior")),
        pause_resumes_at=timestamp(_map(d.get("pause_collection")).get("resumes_at")),
        quantity=_int(item.get("quantity", d.get("quantity"))) or 1,
        default_payment_method=_ref(d.get("default_payment_method")),
    )


def _expanded_price(value: Any) -> PriceInfo | None:
    """The item's price when the list expanded it (an id alone is not enough to describe it)."""
    return price_info(value) if isinstance(value, Mapping) and "id" in value else None


def _line_is_proration(line: Mapping[str, Any]) -> bool:
    if "proration" in line:
        return _bool(line["proration"])
    parent = _map(line.get("parent"))
    for key in ("subscription_item_details", "invoice_item_details"):
        details = _map(parent.get(key))
        if details and _bool(details.get("proration", False)):
            return True
    return False


def _line_price_id(line: Mapping[str, Any]) -> str | None:
    details = _map(_map(line.get("pricing")).get("price_details"))
    return _ref(details.get("price")) or _ref(line.get("price")) or _ref(line.get("plan"))


def preview_line(obj: Any, *, currency: str = "") -> PreviewLine:
    """One invoice line item."""
    d = as_dict(obj)
    period = _map(d.get("period"))
    return PreviewLine(
        description=_text(d.get("description")),
        amount=_int(d.get("amount")) or 0,
        currency=_text(d.get("currency")) or currency,
        proration=_line_is_proration(d),
        price_id=_line_price_id(d),
        period_start=timestamp(period.get("start")),
        period_end=timestamp(period.get("end")),
    )


def invoice_preview(obj: Any) -> InvoicePreview:
    """An invoice preview with its lines, and the part of it that prorations make up."""
    d = as_dict(obj)
    currency = _text(d.get("currency")) or ""
    raw_lines = _map(d.get("lines")).get("data")
    lines = tuple(
        preview_line(line, currency=currency)
        for line in (raw_lines if isinstance(raw_lines, list) else [])
    )
    amount_due = _int(d.get("amount_due"))
    if amount_due is None:
        amount_due = _int(d.get("total")) or 0
    discount_amount, coupons = _invoice_discounts(d)
    return InvoicePreview(
        amount_due=amount_due,
        currency=currency,
        proration_amount=sum(line.amount for line in lines if line.proration),
        lines=lines,
        subtotal=_int(d.get("subtotal")),
        total=_int(d.get("total")),
        discount_amount=discount_amount,
        discounts=coupons,
        starting_balance=_int(d.get("starting_balance")) or 0,
        next_payment_attempt=timestamp(d.get("next_payment_attempt")),
        period_end=timestamp(d.get("period_end")),
    )


def _coupon_of(discount: Any) -> str | None:
    """The coupon id of a discount object: ``coupon`` before basil, ``source.coupon`` since."""
    if isinstance(discount, str):
        return None  # an unexpanded discount id names no coupon
    d = _map(discount)
    return _ref(d.get("coupon")) or _ref(_map(d.get("source")).get("coupon"))


def _invoice_discounts(d: Mapping[str, Any]) -> tuple[int, tuple[str, ...]]:
    """What discounts took off an invoice, and their coupons, in either API shape.

    Current: ``total_discount_amounts[].amount`` and ``discounts[]`` (objects when expanded).
    Before 2022-08-01: one ``discount`` object, and the reduction only as subtotal - total.
    """
    amounts = d.get("total_discount_amounts")
    raw = d.get("discounts")
    coupons = [_coupon_of(x) for x in raw] if isinstance(raw, list) else []
    if d.get("discount"):
        coupons.append(_coupon_of(d["discount"]))
    found = tuple(c for c in coupons if c)
    if isinstance(amounts, list) and amounts:
        return sum(_int(_map(a).get("amount")) or 0 for a in amounts), found
    subtotal, total = _int(d.get("subtotal")), _int(d.get("total"))
    if d.get("discount") and subtotal is not None and total is not None:
        return max(subtotal - total, 0), found
    return 0, found


def payment_info(obj: Any) -> PaymentInfo:
    """A PaymentIntent."""
    d = as_dict(obj)
    return PaymentInfo(
        id=str(d["id"]),
        amount=_int(d.get("amount")) or 0,
        currency=_text(d.get("currency")) or "",
        status=_text(d.get("status")) or "",
        description=_text(d.get("description")),
        metadata=_metadata(d.get("metadata")),
        failure=_payment_error(d.get("last_payment_error")),
    )


def _payment_error(value: Any) -> str | None:
    """``decline_code: message`` from a PaymentIntent's last_payment_error."""
    error = _map(value)
    if not error:
        return None
    code = _text(error.get("decline_code")) or _text(error.get("code")) or "declined"
    message = _text(error.get("message"))
    return f"{code}: {message}" if message else code


def coupon_info(obj: Any) -> CouponInfo:
    """A Coupon (``percent_off`` may come as a float or a Decimal-like string)."""
    d = as_dict(obj)
    percent = d.get("percent_off")
    return CouponInfo(
        id=str(d["id"]),
        name=_text(d.get("name")),
        percent_off=None if percent is None else float(percent),
        amount_off=_int(d.get("amount_off")),
        currency=_text(d.get("currency")),
        duration=_text(d.get("duration")) or "",
        duration_in_months=_int(d.get("duration_in_months")),
        valid=_bool(d.get("valid", True)),
        times_redeemed=_int(d.get("times_redeemed")) or 0,
        metadata=_metadata(d.get("metadata")),
    )


def discount_infos(subscription: Any) -> tuple[DiscountInfo, ...]:
    """A subscription's discounts: ``discounts[]`` expanded (current) or one ``discount`` (old).
    The coupon sits at ``coupon`` before basil and at ``source.coupon`` since."""
    d = as_dict(subscription)
    raw = d.get("discounts")
    found = [x for x in raw if isinstance(x, Mapping)] if isinstance(raw, list) else []
    if isinstance(d.get("discount"), Mapping):
        found.append(d["discount"])
    result = []
    for entry in found:
        coupon = entry.get("coupon") or _map(entry.get("source")).get("coupon")
        result.append(
            DiscountInfo(
                id=_text(entry.get("id")) or "",
                coupon=coupon_info(coupon) if isinstance(coupon, Mapping) else None,
                start=timestamp(entry.get("start")),
                end=timestamp(entry.get("end")),
            )
        )
    return tuple(result)


def balance_transaction_info(obj: Any) -> BalanceTransactionInfo:
    """A customer balance transaction."""
    d = as_dict(obj)
    return BalanceTransactionInfo(
        id=str(d["id"]),
        amount=_int(d.get("amount")) or 0,
        currency=_text(d.get("currency")) or "",
        ending_balance=_int(d.get("ending_balance")) or 0,
        description=_text(d.get("description")),
        metadata=_metadata(d.get("metadata")),
    )
