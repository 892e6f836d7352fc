"""``/v1/subscriptions`` and ``/v1/subscription_items``, reimplemented in the current API shape.

localstripe behaviours replaced: creating (prices, quantities, trials from ``trial_period_days``,
``trial_end`` or the price, ``payment_behavior``), updating (items, ``proration_behavior``,
``proration_date``, ``cancel_at_period_end``, ``trial_end``, ``default_payment_method``),
cancelling, retrieving and listing subscriptions (``status``, ``customer``, ``price``), and
listing a subscription's items.

Events added: ``customer.subscription.updated`` (with ``previous_attributes``),
``customer.subscription.deleted``, ``customer.subscription.trial_will_end`` (at creation when
the trial ends within three days).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from localstripe import resources as ls

from stripe_sandbox.billing_cycle import (
    PRORATION_BEHAVIORS,
    _attempt_payment,
    _cancel,
    _emit_sub_updated,
    _issue_invoice,
    _payment_method_for,
    _period_lines,
    _proration_lines,
    _start_new_period,
    _sub_snapshot,
    end_trial,
)
from stripe_sandbox.cards import _decline_for
from stripe_sandbox.common import (
    JSON,
    _all,
    _bad,
    _bool,
    _error,
    _get,
    _int,
    _list_response,
    _merge_metadata,
    _newest_first,
    _now,
    _opt_int,
    _opt_str,
    _params,
    _pop_expand,
    _req_str,
    _respond,
    _unknown,
)
from stripe_sandbox.events import emit
from stripe_sandbox.prices import Price
from stripe_sandbox.subscriptions import Subscription, SubscriptionItem, _subscription

TRIAL_WILL_END_WINDOW = 3 * 86400


def _resolve_price(value: Any, param: str) -> Price:
    price_id = _req_str(value, param)
    price = _get("price", price_id)
    if not isinstance(price, Price):
        raise _bad(param)
    if price.recurring is None:
        raise _bad(param, f"The price specified ({price_id}) is not recurring.")
    return price


def create_subscription(data: JSON) -> Subscription:
    _unknown(
        data,
        {
            "customer",
            "items",
            "default_payment_method",
            "trial_period_days",
            "trial_end",
            "trial_from_plan",
            "metadata",
            "payment_behavior",
            "proration_behavior",
            "cancel_at_period_end",
            "description",
            "collection_method",
            "off_session",
            "payment_settings",
            "automatic_tax",
            "currency",
        },
    )
    customer = _req_str(data.get("customer"), "customer")
    ls.Customer._api_retrieve(customer)
    raw_items = data.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise _error(400, "Missing required param: items.", param="items")
    items: list[tuple[Price, int, dict[str, str]]] = []
    for i, raw in enumerate(raw_items):
        if not isinstance(raw, dict):
            raise _bad(f"items[{i}]")
        _unknown(raw, {"price", "plan", "quantity", "metadata"})
        price = _resolve_price(raw.get("price") or raw.get("plan"), f"items[{i}][price]")
        quantity = _int(raw.get("quantity", 1), f"items[{i}][quantity]", minimum=1)
        items.append((price, quantity, _merge_metadata({}, raw.get("metadata"))))
    first = items[0][0]
    if any(p._interval != first._interval or p.currency != first.currency for p, _, _ in items):
        raise _bad("items", "All prices on a subscription must share currency and interval.")
    pm_id = _opt_str(data.get("default_payment_method"), "default_payment_method")
    if pm_id is not None:
        pm_id = str(ls.PaymentMethod._api_retrieve(pm_id).id)
    trial_days = _opt_int(data.get("trial_period_days"), "trial_period_days", minimum=0)
    trial_end_raw = data.get("trial_end")
    if (
        trial_days is None
        and "trial_from_plan" in data
        and _bool(data["trial_from_plan"], "trial_from_plan")
    ):
        assert first.recurring is not None
        trial_days = first.recurring.get("trial_period_days")
    behavior = data.get("payment_behavior", "allow_incomplete")
    if behavior not in (
        "allow_incomplete",
        "default_incomplete",
        "error_if_incomplete",
        "pending_if_incomplete",
    ):
        raise _bad("payment_behavior")
    if data.get("proration_behavior") not in (None, *PRORATION_BEHAVIORS):
        raise _bad("proration_behavior")

    now = _now()
    trial_end: int | None = None
    if trial_end_raw is not None and trial_end_raw != "now":
        trial_end = _int(trial_end_raw, "trial_end", minimum=now + 1)
    elif trial_days:
        trial_end = now + trial_days * 86400

    sub = Subscription(customer, first.currency)
    sub.metadata = _merge_metadata({}, data.get("metadata"))
    sub.description = _opt_str(data.get("description"), "description")
    sub.default_payment_method = pm_id
    for price, quantity, metadata in items:
        sub._items.append(SubscriptionItem(sub, price, quantity, metadata))
    if "cancel_at_period_end" in data:
        sub.cancel_at_period_end = _bool(data["cancel_at_period_end"], "cancel_at_period_end")

    if trial_end is not None:
        sub.status = "trialing"
        sub.trial_start = now
        sub.trial_end = trial_end
        sub._period = (now, trial_end)
        # Stripe issues a zero-amount invoice for the trial; it is paid straight away.
        lines = [
            dict(line, amount=0, subtotal=0, description=f"Trial period for {line['description']}")
            for line in _period_lines(sub, sub._period)
        ]
        _attempt_payment(_issue_invoice(sub, lines, "subscription_create", sub._period))
    else:
        sub._period = sub._next_period(now)
        invoice = _issue_invoice(
            sub, _period_lines(sub, sub._period), "subscription_create", sub._period
        )
        if behavior == "default_incomplete":
            sub.status = "incomplete"
        elif _attempt_payment(invoice):
            sub.status = "active"
        elif behavior == "error_if_incomplete":
            sub.status = "incomplete_expired"
            code, decline_code, message = _decline_for(_payment_method_for(customer, sub))
            raise _error(402, message, code=code, decline_code=decline_code, type_="card_error")
        else:
            sub.status = "incomplete"
    if sub.cancel_at_period_end:
        sub.cancel_at = sub._period[1]
    emit("customer.subscription.created", sub)
    if trial_end is not None and trial_end - now <= TRIAL_WILL_END_WINDOW:
        sub._trial_will_end_sent = True
        emit("customer.subscription.trial_will_end", sub)
    return sub


def update_subscription(sub: Subscription, data: JSON) -> Subscription:
    _unknown(
        data,
        {
            "items",
            "proration_behavior",
            "proration_date",
            "cancel_at_period_end",
            "cancel_at",
            "metadata",
            "default_payment_method",
            "description",
            "trial_end",
            "payment_behavior",
            "off_session",
            "billing_cycle_anchor",
            "cancellation_details",
        },
    )
    if sub.status in ("canceled", "incomplete_expired"):
        raise _bad("subscription", "A canceled subscription can only update its metadata.")
    behavior = data.get("proration_behavior", "create_prorations")
    if behavior not in PRORATION_BEHAVIORS:
        raise _bad("proration_behavior")
    now = _now()
    proration_date = _opt_int(data.get("proration_date"), "proration_date") or now
    before = _sub_snapshot(sub)
    old_interval = sub._interval

    if "metadata" in data:
        sub.metadata = _merge_metadata(sub.metadata, data["metadata"])
    if "description" in data:
        sub.description = _opt_str(data["description"], "description")
    if "default_payment_method" in data:
        pm_id = _opt_str(data["default_payment_method"], "default_payment_method")
        sub.default_payment_method = (
            None if pm_id is None else str(ls.PaymentMethod._api_retrieve(pm_id).id)
        )
    if isinstance(data.get("cancellation_details"), dict):
        for key in ("comment", "feedback"):
            if key in data["cancellation_details"]:
                sub.cancellation_details[key] = data["cancellation_details"][key] or None
    if "cancel_at_period_end" in data:
        sub.cancel_at_period_end = _bool(data["cancel_at_period_end"], "cancel_at_period_end")
        sub.cancel_at = sub._period[1] if sub.cancel_at_period_end else None
        sub.canceled_at = now if sub.cancel_at_period_end else None
    if "cancel_at" in data:
        sub.cancel_at = _opt_int(data["cancel_at"], "cancel_at")

    if "items" in data:
        changes = _apply_item_changes(sub, data["items"])
        interval_changed = sub._interval != old_interval
        if sub.status == "trialing":
            pass  # Stripe does not prorate during a trial.
        elif interval_changed:
            # A new interval resets the billing cycle: bill the new period now, crediting
            # the unused time of the old one unless prorations are off.
            credit = (
                [ln for ln in _proration_lines(sub, changes, proration_date) if ln["amount"] < 0]
                if behavior != "none"
                else []
            )
            sub.billing_cycle_anchor = now
            sub._pending_lines.extend(credit)
            ok = _start_new_period(sub, sub._next_period(now), "subscription_update")
            sub.status = "active" if ok else "past_due"
        elif behavior != "none" and changes:
            lines = _proration_lines(sub, changes, proration_date)
            if behavior == "create_prorations":
                sub._pending_lines.extend(lines)
            else:
                invoice = _issue_invoice(
                    sub, sub._pending_lines + lines, "subscription_update", sub._period
                )
                sub._pending_lines = []
                if not _attempt_payment(invoice):
                    sub.status = "past_due"

    if data.get("trial_end") == "now" and sub.status == "trialing":
        end_trial(sub)
        return sub
    if data.get("trial_end") not in (None, "now"):
        new_end = _int(data["trial_end"], "trial_end", minimum=now + 1)
        if sub.status == "trialing":
            sub.trial_end = new_end
            sub._period = (sub._period[0], new_end)
    _emit_sub_updated(sub, before)
    return sub


def _apply_item_changes(
    sub: Subscription, raw_items: Any
) -> list[tuple[SubscriptionItem | None, Price | None, int]]:
    if not isinstance(raw_items, list):
        raise _bad("items")
    changes: list[tuple[SubscriptionItem | None, Price | None, int]] = []
    for i, raw in enumerate(raw_items):
        if not isinstance(raw, dict):
            raise _bad(f"items[{i}]")
        _unknown(raw, {"id", "price", "plan", "quantity", "metadata", "deleted", "clear_usage"})
        item_id = _opt_str(raw.get("id"), f"items[{i}][id]")
        existing = next((it for it in sub._items if it.id == item_id), None)
        if item_id is not None and existing is None:
            raise _error(
                400,
                f"Subscription item {item_id} does not belong to {sub.id}.",
                param=f"items[{i}][id]",
            )
        if existing is not None and _bool(raw.get("deleted", False), f"items[{i}][deleted]"):
            sub._items.remove(existing)
            ls.store.pop(f"subscription_item:{existing.id}", None)
            changes.append((existing, None, 0))
            continue
        price_ref = raw.get("price") or raw.get("plan")
        if existing is None:
            price = _resolve_price(price_ref, f"items[{i}][price]")
            quantity = _int(raw.get("quantity", 1), f"items[{i}][quantity]", minimum=1)
            sub._items.append(
                SubscriptionItem(sub, price, quantity, _merge_metadata({}, raw.get("metadata")))
            )
            changes.append((None, price, quantity))
            continue
        price = existing.price if price_ref is None else _resolve_price(price_ref, f"items[{i}]")
        quantity = _int(raw.get("quantity", existing.quantity), f"items[{i}][quantity]", minimum=1)
        existing.metadata = _merge_metadata(existing.metadata, raw.get("metadata"))
        if price is existing.price and quantity == existing.quantity:
            continue
        # Keep a frozen copy of the old item for the credit line before mutating it.
        old = SubscriptionItem.__new__(SubscriptionItem)
        old.__dict__.update(existing.__dict__)
        existing.price, existing.quantity = price, quantity
        changes.append((old, price, quantity))
    if not sub._items:
        raise _bad("items", "A subscription needs at least one item.")
    if len({(it.price._interval, it.price.currency) for it in sub._items}) != 1:
        raise _bad("items", "All prices on a subscription must share currency and interval.")
    if sub.currency != sub._items[0].price.currency:
        raise _bad("items", "A subscription cannot change currency.")
    return changes


async def _create_subscription(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    return _respond(create_subscription(data)._export(expand=expand))


async def _retrieve_subscription(request: web.Request) -> web.Response:
    data = await _params(request)
    sub = _subscription(request.match_info["id"])
    return _respond(sub._export(expand=_pop_expand(data)))


async def _update_subscription(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    sub = _subscription(request.match_info["id"])
    return _respond(update_subscription(sub, data)._export(expand=expand))


async def _cancel_subscription(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    _unknown(data, {"invoice_now", "prorate", "cancellation_details"})
    sub = _subscription(request.match_info["id"])
    if sub.status == "canceled":
        raise _bad("subscription", f"Subscription {sub.id} is already canceled.")
    details = data.get("cancellation_details")
    if isinstance(details, dict):
        sub.cancellation_details["comment"] = details.get("comment") or None
        sub.cancellation_details["feedback"] = details.get("feedback") or None
    _cancel(sub, "cancellation_requested")
    return _respond(sub._export(expand=expand))


async def _list_subscriptions(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    subs: list[Subscription] = _newest_first(_all("subscription", Subscription))
    status = data.pop("status", None)
    if status is None:
        subs = [s for s in subs if s.status not in ("canceled", "incomplete_expired")]
    elif status == "ended":
        subs = [s for s in subs if s.status in ("canceled", "incomplete_expired")]
    elif status != "all":
        subs = [s for s in subs if s.status == status]
    if "customer" in data:
        customer = data.pop("customer")
        subs = [s for s in subs if s.customer == customer]
    if "price" in data:
        price_id = data.pop("price")
        subs = [s for s in subs if any(it.price.id == price_id for it in s._items)]
    _unknown(data, {"limit", "starting_after", "ending_before"})
    return _list_response("/v1/subscriptions", subs, data, expand)


async def _list_subscription_items(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    sub = _subscription(_req_str(data.pop("subscription", None), "subscription"))
    _unknown(data, {"limit", "starting_after", "ending_before"})
    url = f"/v1/subscription_items?subscription={sub.id}"
    return _list_response(url, list(sub._items), data, expand)
