"""``POST /v1/invoices/create_preview`` for a subscription, optionally with changes (absent
from localstripe). :mod:`.previews` wraps this route to add trials ending now, discounts and
customer balances.
"""

from __future__ import annotations

from aiohttp import web

from stripe_sandbox.billing_cycle import PRORATION_BEHAVIORS, _line, _proration_lines
from stripe_sandbox.common import (
    JSON,
    _as_list,
    _bad,
    _expand_all,
    _get,
    _int,
    _now,
    _opt_int,
    _params,
    _pop_expand,
    _req_str,
    _respond,
    _unknown,
    add_interval,
)
from stripe_sandbox.invoices import Invoice
from stripe_sandbox.prices import Price
from stripe_sandbox.subscriptions import Subscription, SubscriptionItem
from stripe_sandbox.subscriptions_api import _resolve_price


def preview_invoice(data: JSON) -> JSON:
    """``POST /v1/invoices/create_preview`` for a subscription, optionally with changes.

    As in Stripe: with ``always_invoice`` (or an interval change) the preview is the invoice
    the change would issue now (proration lines only, plus the new period on an interval
    change); otherwise it is the next renewal invoice, prorations included.
    """
    _unknown(data, {"customer", "subscription", "subscription_details", "automatic_tax"})
    sub_id = _req_str(data.get("subscription"), "subscription")
    sub = _get("subscription", sub_id)
    if not isinstance(sub, Subscription):
        raise _bad("subscription")
    if data.get("customer") not in (None, sub.customer):
        raise _bad("customer", "The subscription does not belong to that customer.")
    details = data.get("subscription_details") or {}
    if not isinstance(details, dict):
        raise _bad("subscription_details")
    _unknown(
        details,
        {"items", "proration_behavior", "proration_date", "cancel_at_period_end", "trial_end"},
    )
    behavior = details.get("proration_behavior", "create_prorations")
    if behavior not in PRORATION_BEHAVIORS:
        raise _bad("subscription_details[proration_behavior]")
    now = _now()
    at = _opt_int(details.get("proration_date"), "proration_date") or now

    changes: list[tuple[SubscriptionItem | None, Price | None, int]] = []
    planned: list[tuple[Price, int, str | None]] = [
        (it.price, it.quantity, it.id) for it in sub._items
    ]
    for i, raw in enumerate(_as_list(details.get("items"), "items")):
        if not isinstance(raw, dict):
            raise _bad(f"subscription_details[items][{i}]")
        item_id = raw.get("id")
        existing = next((it for it in sub._items if it.id == item_id), None)
        ref = raw.get("price") or raw.get("plan")
        if existing is not None and raw.get("deleted") in (True, "true"):
            planned = [p for p in planned if p[2] != existing.id]
            changes.append((existing, None, 0))
            continue
        price = (
            _resolve_price(ref, f"subscription_details[items][{i}][price]")
            if ref is not None
            else (existing.price if existing else None)
        )
        if price is None:
            raise _bad(f"subscription_details[items][{i}][price]")
        quantity = _int(raw.get("quantity", existing.quantity if existing else 1), "quantity")
        if existing is None:
            planned.append((price, quantity, None))
            changes.append((None, price, quantity))
        elif price is not existing.price or quantity != existing.quantity:
            planned = [p if p[2] != existing.id else (price, quantity, p[2]) for p in planned]
            changes.append((existing, price, quantity))

    trialing = sub.status == "trialing"
    new_interval = planned[0][0]._interval if planned else sub._interval
    interval_changed = new_interval != sub._interval
    prorations = (
        _proration_lines(sub, changes, at)
        if changes and behavior != "none" and not trialing
        else []
    )

    def period_lines(period: tuple[int, int]) -> list[JSON]:
        return [
            _line(
                amount=price.unit_amount * qty,
                price=price,
                quantity=qty,
                period=period,
                description=f"{qty} × {price._product_name()}",
                subscription=sub,
                item_id=item_id,
                proration=False,
            )
            for price, qty, item_id in planned
        ]

    if interval_changed and not trialing:
        period = (now, add_interval(now, *new_interval))
        lines = [ln for ln in prorations if ln["amount"] < 0] + period_lines(period)
        reason = "subscription_update"
    elif behavior == "always_invoice" and not trialing:
        period = sub._period
        lines = prorations
        reason = "subscription_update"
    else:
        next_start = sub._period[1]
        period = (next_start, add_interval(next_start, *new_interval))
        lines = sub._pending_lines + prorations + period_lines(period)
        reason = "subscription_cycle"
    invoice = Invoice(
        customer=sub.customer,
        currency=sub.currency,
        lines=lines,
        billing_reason=reason,
        subscription=sub,
        period=period,
        persist=False,
    )
    invoice.next_payment_attempt = period[0] if reason == "subscription_cycle" else now
    return invoice._export()


async def _create_preview(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    preview = preview_invoice(data)
    _expand_all(preview, expand)
    return _respond(preview)
