"""How a subscription bills: the invoices it issues and how they are collected.

Period lines, prorations (Stripe's second-level proration of the current period), one
collection attempt on the customer's or subscription's default payment method, a new period,
and the sandbox's clock operations :func:`renew` and :func:`end_trial` (absent from
localstripe, which has no test clocks). ``POST /v1/invoices/{id}/pay`` is served here.

Events added: ``invoice.created``, ``invoice.finalized``, ``invoice.paid`` +
``invoice.payment_succeeded``, ``invoice.payment_failed``, ``payment_intent.created`` (for the
invoice's payment), ``customer.subscription.updated``/``deleted``/``trial_will_end``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from localstripe import resources as ls

from stripe_sandbox.cards import _decline_for
from stripe_sandbox.common import (
    JSON,
    _all,
    _bad,
    _diff,
    _error,
    _now,
    _params,
    _pop_expand,
    _respond,
    _rid,
)
from stripe_sandbox.events import emit
from stripe_sandbox.invoices import Invoice, _invoice
from stripe_sandbox.prices import Price
from stripe_sandbox.subscriptions import Subscription, SubscriptionItem

# Stripe's Smart Retries schedule the next attempt days later; the sandbox only reports it.
RETRY_DELAY_SECONDS = 3 * 86400


PRORATION_BEHAVIORS = ("create_prorations", "none", "always_invoice")


def _line(
    *,
    amount: int,
    price: Price,
    quantity: int,
    period: tuple[int, int],
    description: str,
    subscription: Subscription | None,
    item_id: str | None,
    proration: bool,
) -> JSON:
    return {
        "id": _rid("il_"),
        "object": "line_item",
        "amount": amount,
        "currency": price.currency,
        "description": description,
        "discount_amounts": [],
        "discountable": not proration,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "parent": {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": _rid("ii_") if proration else None,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": subscription.id if subscription else None,
                "subscription_item": item_id,
            },
        },
        "period": {"start": period[0], "end": period[1]},
        "pretax_credit_amounts": [],
        "pricing": {
            "type": "price_details",
            "price_details": {"price": price.id, "product": price.product},
            "unit_amount_decimal": str(price.unit_amount),
        },
        "quantity": quantity,
        "subtotal": amount,
        "taxes": [],
    }


def _period_lines(sub: Subscription, period: tuple[int, int]) -> list[JSON]:
    lines = []
    for item in sub._items:
        name = item.price._product_name()
        lines.append(
            _line(
                amount=item._amount,
                price=item.price,
                quantity=item.quantity,
                period=period,
                description=f"{item.quantity} × {name}",
                subscription=sub,
                item_id=item.id,
                proration=False,
            )
        )
    return lines


def _fraction_remaining(sub: Subscription, at: int) -> float:
    start, end = sub._period
    span = end - start
    if span <= 0:
        return 0.0
    return min(max(end - at, 0), span) / span


def _proration_lines(
    sub: Subscription,
    changes: list[tuple[SubscriptionItem | None, Price | None, int]],
    at: int,
) -> list[JSON]:
    """Credit the unused time of each replaced item and charge the remaining time of its
    replacement, pro rata of the current period (Stripe's second-level proration)."""
    fraction = _fraction_remaining(sub, at)
    end = sub._period[1]
    when = datetime.fromtimestamp(at, tz=UTC).strftime("%d %b %Y")
    lines: list[JSON] = []
    for old_item, new_price, new_quantity in changes:
        if old_item is not None:
            name = old_item.price._product_name()
            lines.append(
                _line(
                    amount=-round(old_item._amount * fraction),
                    price=old_item.price,
                    quantity=old_item.quantity,
                    period=(at, end),
                    description=f"Unused time on {old_item.quantity} × {name} after {when}",
                    subscription=sub,
                    item_id=old_item.id,
                    proration=True,
                )
            )
        if new_price is not None:
            name = new_price._product_name()
            lines.append(
                _line(
                    amount=round(new_price.unit_amount * new_quantity * fraction),
                    price=new_price,
                    quantity=new_quantity,
                    period=(at, end),
                    description=f"Remaining time on {new_quantity} × {name} after {when}",
                    subscription=sub,
                    item_id=old_item.id if old_item is not None else None,
                    proration=True,
                )
            )
    return lines


def _payment_method_for(customer_id: str, sub: Subscription | None) -> str | None:
    if sub is not None and sub.default_payment_method:
        return sub.default_payment_method
    cus = ls.Customer._api_retrieve(customer_id)
    source = cus._get_default_payment_method_or_source()
    return None if source is None else str(source.id)


def _mark_paid(invoice: Invoice) -> None:
    now = _now()
    invoice.status = "paid"
    invoice.next_payment_attempt = None
    invoice.last_payment_error = None
    invoice.status_transitions["paid_at"] = now
    for payment in invoice._payments:
        if payment["status"] == "open":
            payment["status"] = "paid"
            payment["amount_paid"] = payment["amount_requested"]
            payment["status_transitions"]["paid_at"] = now
    emit("invoice.paid", invoice)
    emit("invoice.payment_succeeded", invoice)


def _attempt_payment(invoice: Invoice) -> bool:
    """One collection attempt (Stripe's first try or a retry): bumps attempt_count."""
    invoice.attempt_count += 1
    invoice.attempted = True
    amount = invoice._amount_due
    if amount == 0:
        _mark_paid(invoice)
        return True
    pm_id = _payment_method_for(invoice.customer, invoice._subscription)
    if pm_id is None:
        invoice.last_payment_error = {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "message": "The customer has no default payment method.",
        }
    else:
        pi = ls.PaymentIntent(
            amount=amount,
            currency=invoice.currency,
            customer=invoice.customer,
            payment_method=pm_id,
        )
        pi.description = (
            "Subscription creation"
            if invoice.billing_reason == "subscription_create"
            else f"Invoice {invoice.id}"
        )
        invoice._payments.append(
            {
                "id": _rid("inpay_"),
                "object": "invoice_payment",
                "amount_paid": None,
                "amount_requested": amount,
                "created": _now(),
                "currency": invoice.currency,
                "invoice": invoice.id,
                "is_default": True,
                "livemode": False,
                "payment": {"type": "payment_intent", "payment_intent": pi.id},
                "status": "open",
                "status_transitions": {"canceled_at": None, "paid_at": None},
            }
        )
        emit("payment_intent.created", pi)
        # No on_failure callback: the failure is reported on the invoice, not raised.
        pi._confirm(on_failure_now=lambda: None)
        if pi.status == "succeeded":
            _mark_paid(invoice)
            return True
        emit("payment_intent.payment_failed", pi)
        code, decline_code, message = _decline_for(pi.payment_method or pm_id)
        invoice.last_payment_error = {
            "type": "card_error",
            "code": code,
            "decline_code": decline_code,
            "message": message,
            "payment_method": pm_id,
        }
    invoice.next_payment_attempt = _now() + RETRY_DELAY_SECONDS
    emit("invoice.payment_failed", invoice)
    return False


def _issue_invoice(
    sub: Subscription, lines: list[JSON], billing_reason: str, period: tuple[int, int]
) -> Invoice:
    invoice = Invoice(
        customer=sub.customer,
        currency=sub.currency,
        lines=lines,
        billing_reason=billing_reason,
        subscription=sub,
        period=period,
    )
    emit("invoice.created", invoice)
    now = _now()
    invoice.status = "open"
    invoice.number = f"SBX-{len(_all('invoice', Invoice)):06d}"
    invoice.effective_at = now
    invoice.status_transitions["finalized_at"] = now
    emit("invoice.finalized", invoice)
    sub.latest_invoice = invoice.id
    return invoice


def _sub_snapshot(sub: Subscription) -> JSON:
    return sub._export()


def _emit_sub_updated(sub: Subscription, before: JSON) -> None:
    previous = _diff(before, sub._export())
    if previous:
        emit("customer.subscription.updated", sub, previous)


def _open_invoice(sub: Subscription) -> Invoice | None:
    if sub.latest_invoice is None:
        return None
    invoice = ls.store.get(f"invoice:{sub.latest_invoice}")
    if isinstance(invoice, Invoice) and invoice.status == "open":
        return invoice
    return None


def _cancel(sub: Subscription, reason: str) -> None:
    now = _now()
    sub.status = "canceled"
    sub.canceled_at = sub.canceled_at or now
    sub.ended_at = now
    sub.cancellation_details["reason"] = reason
    emit("customer.subscription.deleted", sub)


def _start_new_period(sub: Subscription, period: tuple[int, int], reason: str) -> bool:
    """Move the subscription into ``period`` and bill it (as Stripe does at a period end,
    the period advances with the renewal invoice even if its payment then fails)."""
    sub._period = period
    lines = sub._pending_lines + _period_lines(sub, period)
    sub._pending_lines = []
    invoice = _issue_invoice(sub, lines, reason, period)
    ok = _attempt_payment(invoice)
    sub.status = "active" if ok else "past_due"
    return ok


def renew(sub: Subscription) -> JSON:
    """Bill the next period now (sandbox clock control)."""
    if sub.status in ("canceled", "incomplete_expired"):
        raise _bad("subscription", f"Subscription {sub.id} is {sub.status}.")
    before = _sub_snapshot(sub)
    if sub.status == "trialing":
        return end_trial(sub)
    if sub.cancel_at_period_end:
        _cancel(sub, "cancellation_requested")
        return sub._export()
    invoice = _open_invoice(sub)
    if invoice is not None:
        # Stripe's retry of the same open invoice.
        ok = _attempt_payment(invoice)
        if ok:
            sub.status = "active"
        elif sub.status != "incomplete":
            sub.status = "past_due"
    else:
        _start_new_period(sub, sub._next_period(sub._period[1]), "subscription_cycle")
    _emit_sub_updated(sub, before)
    return sub._export()


def end_trial(sub: Subscription) -> JSON:
    if sub.status != "trialing":
        raise _bad("subscription", f"Subscription {sub.id} is not trialing.")
    before = _sub_snapshot(sub)
    if not sub._trial_will_end_sent:
        sub._trial_will_end_sent = True
        emit("customer.subscription.trial_will_end", sub)
    now = _now()
    sub.trial_end = now
    sub.billing_cycle_anchor = now
    if sub.cancel_at_period_end:
        _cancel(sub, "cancellation_requested")
        return sub._export()
    _start_new_period(sub, sub._next_period(now), "subscription_cycle")
    _emit_sub_updated(sub, before)
    return sub._export()


async def _pay_invoice(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    invoice = _invoice(request.match_info["id"])
    if invoice.status != "open":
        raise _bad("invoice", f"Invoice is {invoice.status}; only open invoices can be paid.")
    sub = invoice._subscription
    before = sub._export() if sub else None
    ok = _attempt_payment(invoice)
    if sub is not None and before is not None:
        if ok and sub.latest_invoice == invoice.id:
            sub.status = "active"
        _emit_sub_updated(sub, before)
    if not ok:
        code, decline_code, message = _decline_for(
            _payment_method_for(invoice.customer, invoice._subscription)
        )
        raise _error(402, message, code=code, decline_code=decline_code, type_="card_error")
    return _respond(invoice._export(expand=expand))
