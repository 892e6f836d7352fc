"""Detaching payment methods in the sandbox: ``POST /v1/payment_methods/{id}/detach``.

localstripe behaviours replaced: its detach only forgets the customer. Here, as in Stripe, a
method that is not attached is refused; a detached method stops being the customer's
``invoice_settings.default_payment_method`` and any of its subscriptions'
``default_payment_method``; ``payment_method.detached`` is emitted (and
``customer.updated`` / ``customer.subscription.updated`` for the defaults it cleared).
"""

from __future__ import annotations

from aiohttp import web
from localstripe import resources as ls

from stripe_sandbox import billing_cycle, common, events, subscriptions


async def _detach(request: web.Request) -> web.Response:
    data = await common._params(request)
    expand = common._pop_expand(data)
    common._unknown(data, set())
    method = ls.PaymentMethod._api_retrieve(request.match_info["id"])
    customer_id = method.customer
    if customer_id is None:
        raise common._bad(
            "payment_method",
            "The payment method you provided is not attached to a customer so detachment "
            "is impossible.",
        )
    customer = ls.Customer._api_retrieve(customer_id)
    if customer.invoice_settings.get("default_payment_method") == method.id:
        customer.invoice_settings["default_payment_method"] = None
        events.emit("customer.updated", customer)
    for sub in common._all("subscription", subscriptions.Subscription):
        if sub.customer == customer_id and sub.default_payment_method == method.id:
            before = sub._export()
            sub.default_payment_method = None
            billing_cycle._emit_sub_updated(sub, before)
    method.customer = None
    events.emit("payment_method.detached", method, {"customer": customer_id})
    return common._respond(method._export(expand=expand))


ROUTES: list[tuple[str, str, common.Handler]] = [
    ("POST", "/v1/payment_methods/{id}/detach", _detach),
]
