"""Invoice previews that reflect what the added resources change: trial end now, the
subscription's discount, the customer's credit balance.

Wraps ``POST /v1/invoices/create_preview`` (:mod:`.invoice_preview`): the preview is computed there
(prices, quantities, prorations), then

- ``subscription_details[trial_end]=now`` on a trialing subscription previews the invoice the
  trial's end issues at once: the first full period, starting now (the extensions ignored it);
- the subscription's discount (:mod:`.coupons`), or the one ``discounts`` asks to preview
  (``""``: none), while it lasts at the invoice's period start,
  takes ``percent_off`` of the discountable (non-proration) lines, or ``amount_off`` (at most
  their sum): ``total_discount_amounts``, ``discounts`` (objects under ``expand[]=discounts``),
  ``total``;
- the customer's balance (:mod:`.balance`) becomes ``starting_balance`` and is applied:
  ``amount_due = max(0, total + balance)``.

Real (non-preview) invoices are not discounted or credited by the sandbox.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from localstripe import resources as ls

from stripe_sandbox import balance, common, coupons, invoice_preview, subscriptions

JSON = dict[str, Any]


def _trial_ends_now(preview: JSON, sub: subscriptions.Subscription) -> None:
    now = common._now()
    start, end = sub._next_period(now)
    for line in preview["lines"]["data"]:
        if not line["parent"]["subscription_item_details"]["proration"]:
            line["period"] = {"start": start, "end": end}
    preview.update(
        period_start=start,
        period_end=end,
        next_payment_attempt=now,
        billing_reason="subscription_cycle",
    )


def _asked_discount(sub: subscriptions.Subscription, asked: Any) -> JSON | None:
    """The discount to preview: the subscription's, none (``discounts=""``), or the coupon
    ``discounts[0][coupon]`` names, as if applied now."""
    if asked is None:
        return coupons.discount_of(sub)
    if asked in ("", []):
        return None
    entries = common._as_list(asked, "discounts")
    coupon_id = common._req_str(entries[0].get("coupon") if entries else None, "discounts")
    coupon = ls.store.get(f"coupon:{coupon_id}")
    if coupon is None:
        raise common._error(400, f"No such coupon: '{coupon_id}'", code="resource_missing")
    start = common._now()
    end = None
    if coupon.duration == "repeating":
        end = common.add_interval(start, "month", int(coupon.duration_in_months))
    return {
        "id": "(preview discount)",
        "object": "discount",
        "source": {"coupon": coupon._export(), "type": "coupon"},
        "start": start,
        "end": end,
    }


def _apply_discount(preview: JSON, discount: JSON | None, expand: list[str]) -> None:
    if discount is None or (
        discount["end"] is not None and preview["period_start"] >= discount["end"]
    ):
        return
    coupon = discount["source"]["coupon"]  # as applied: a deleted coupon's discount runs on
    base = sum(int(ln["amount"]) for ln in preview["lines"]["data"] if ln.get("discountable"))
    if coupon.get("percent_off") is not None:
        off = round(base * float(coupon["percent_off"]) / 100)
    else:
        off = min(int(coupon.get("amount_off") or 0), base)
    if off <= 0:
        return
    preview["discounts"] = [discount if "discounts" in expand else discount["id"]]
    preview["total_discount_amounts"] = [{"amount": off, "discount": discount["id"]}]
    preview["total"] = preview["total_excluding_tax"] = int(preview["subtotal"]) - off


def _apply_balance(preview: JSON, customer_id: str) -> None:
    owed = balance.balance_of(ls.Customer._api_retrieve(customer_id))
    preview["starting_balance"] = owed
    due = max(0, int(preview["total"]) + owed)
    preview["amount_due"] = preview["amount_remaining"] = due
    preview["ending_balance"] = min(0, int(preview["total"]) + owed)


async def _create_preview(request: web.Request) -> web.Response:
    data = await common._params(request)
    expand = common._pop_expand(data)
    details = data.get("subscription_details")
    trial_end = details.pop("trial_end", None) if isinstance(details, dict) else None
    asked = data.pop("discounts", None)
    preview = invoice_preview.preview_invoice(data)
    sub = subscriptions._subscription(common._req_str(data.get("subscription"), "subscription"))
    if trial_end == "now" and sub.status == "trialing":
        _trial_ends_now(preview, sub)
    _apply_discount(preview, _asked_discount(sub, asked), expand)
    _apply_balance(preview, sub.customer)
    common._expand_all(preview, [e for e in expand if e != "discounts"])
    return common._respond(preview)


ROUTES: list[tuple[str, str, common.Handler]] = [
    ("POST", "/v1/invoices/create_preview", _create_preview),
]


def install() -> None:
    """Nothing to patch: the route is all."""
