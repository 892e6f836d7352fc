"""Collecting, voiding and writing off subscription invoices in the sandbox.

Replaces ``POST /v1/invoices/{id}/pay`` (:mod:`.billing_cycle`) and ``/void`` (:mod:`.invoices`)
(these routes are mounted before them) and adds ``/mark_uncollectible``, as Stripe behaves:

- ``pay`` takes ``payment_method`` (a card attached to the invoice's customer, used for this
  attempt only; the extensions ignored it) and ``off_session``; an ``uncollectible`` invoice can
  still be paid; a decline answers 402 ``card_error`` after counting the attempt and emitting
  ``invoice.payment_failed``, a success emits ``invoice.paid`` and makes the subscription
  ``active`` when this is its latest invoice;
- ``void`` also accepts an ``uncollectible`` invoice;
- ``mark_uncollectible`` takes an ``open`` invoice, stops its retries and emits
  ``invoice.marked_uncollectible`` and ``invoice.updated``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web
from localstripe import resources as ls

from stripe_sandbox import billing_cycle, cards, common, events, invoices

PAYABLE = ("open", "uncollectible")


@contextmanager
def _paying_with(invoice: invoices.Invoice, payment_method: str | None) -> Iterator[None]:
    """Use ``payment_method`` for this one attempt; the customer's and subscription's
    defaults are left as they were."""
    sub = invoice._subscription
    if payment_method is None or sub is None:
        yield
        return
    method = ls.PaymentMethod._api_retrieve(payment_method)
    if method.customer != invoice.customer:
        raise common._bad(
            "payment_method",
            f"The payment method {payment_method} is not attached to customer {invoice.customer}.",
        )
    previous = sub.default_payment_method
    sub.default_payment_method = method.id
    try:
        yield
    finally:
        sub.default_payment_method = previous


async def _pay(request: web.Request) -> web.Response:
    data = await common._params(request)
    expand = common._pop_expand(data)
    payment_method = common._opt_str(data.pop("payment_method", None), "payment_method")
    if "off_session" in data:
        common._bool(data.pop("off_session"), "off_session")
    common._unknown(data, set())
    invoice = invoices._invoice(request.match_info["id"])
    if invoice.status not in PAYABLE:
        raise common._bad(
            "invoice", f"Invoice is {invoice.status}; only open invoices can be paid."
        )
    if payment_method is not None and invoice._subscription is None:
        raise common._bad("payment_method", "The sandbox pays only subscription invoices by card.")
    sub = invoice._subscription
    before = sub._export() if sub else None
    with _paying_with(invoice, payment_method):
        ok = billing_cycle._attempt_payment(invoice)
        method_used = billing_cycle._payment_method_for(invoice.customer, sub)
    if sub is not None and before is not None:
        if ok and sub.latest_invoice == invoice.id:
            sub.status = "active"
        billing_cycle._emit_sub_updated(sub, before)
    if not ok:
        code, decline_code, message = cards._decline_for(method_used)
        raise common._error(402, message, code=code, decline_code=decline_code, type_="card_error")
    return common._respond(invoice._export(expand=expand))


async def _void(request: web.Request) -> web.Response:
    data = await common._params(request)
    expand = common._pop_expand(data)
    invoice = invoices._invoice(request.match_info["id"])
    if invoice.status not in ("draft", "open", "uncollectible"):
        raise common._bad("invoice", f"Invoice is {invoice.status}; it cannot be voided.")
    invoice.status = "void"
    invoice.next_payment_attempt = None
    invoice.status_transitions["voided_at"] = common._now()
    events.emit("invoice.voided", invoice)
    return common._respond(invoice._export(expand=expand))


async def _mark_uncollectible(request: web.Request) -> web.Response:
    data = await common._params(request)
    expand = common._pop_expand(data)
    invoice = invoices._invoice(request.match_info["id"])
    if invoice.status != "open":
        raise common._bad(
            "invoice", f"Invoice is {invoice.status}; only open invoices can be uncollectible."
        )
    before = invoice._export()
    invoice.status = "uncollectible"
    invoice.next_payment_attempt = None
    invoice.status_transitions["marked_uncollectible_at"] = common._now()
    events.emit("invoice.marked_uncollectible", invoice)
    events.emit("invoice.updated", invoice, common._diff(before, invoice._export()))
    return common._respond(invoice._export(expand=expand))


ROUTES: list[tuple[str, str, common.Handler]] = [
    ("POST", "/v1/invoices/{id}/pay", _pay),
    ("POST", "/v1/invoices/{id}/void", _void),
    ("POST", "/v1/invoices/{id}/mark_uncollectible", _mark_uncollectible),
]
