"""Bulk listing of customers for the sandbox, in the current API shape and at scale.

``billing reconcile`` reads every customer of the account in pages of 100. localstripe's
``GET /v1/customers`` renders each customer in the 2017 shape, with its ``subscriptions`` (up to
ten, fully exported) and ``sources`` embedded, and finds those subscriptions by scanning the whole
store once per customer: listing 5,000 customers took minutes. Since API version 2020-08-27
Stripe includes ``subscriptions``, ``sources`` and ``tax_ids`` only when expanded.

localstripe behaviour replaced (the route here is mounted before localstripe's, see
:func:`stripe_sandbox.server.build_app`):

- ``GET /v1/customers``: customers newest first, as Stripe lists them; ``email``, ``limit`` (at
  most 100), ``starting_after`` and ``ending_before``; each customer without ``subscriptions``,
  ``sources`` or ``tax_ids`` unless ``expand[]=data.<field>`` asks for them (then localstripe's
  own rendering is used). Deleted customers are not listed, as in Stripe.

Subscriptions needed nothing new: :mod:`.subscriptions_api` already lists them with ``status=all``,
paging by 100 and ``expand[]=data.items.data.price`` (its tests prove it).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from localstripe import resources as ls

from stripe_sandbox.common import (
    JSON,
    Handler,
    _all,
    _newest_first,
    _opt_str,
    _paginate,
    _params,
    _pop_expand,
    _respond,
    _unknown,
)

_EXPANDABLE_ONLY = ("subscriptions", "sources", "tax_ids")


def customer_view(customer: Any) -> JSON:
    """A customer as Stripe renders it today (no embedded lists)."""
    settings = dict(customer.invoice_settings or {})
    return {
        "id": customer.id,
        "object": "customer",
        "address": customer.address,
        "balance": -int(customer.account_balance or 0),
        "created": customer.created,
        "default_source": customer.default_source,
        "delinquent": bool(customer.delinquent),
        "description": customer.description,
        "discount": customer.discount,
        "email": customer.email,
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": settings.get("default_payment_method"),
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": dict(customer.metadata or {}),
        "name": customer.name,
        "phone": customer.phone,
        "preferred_locales": customer.preferred_locales or [],
        "shipping": customer.shipping,
        "tax_exempt": "none",
        "test_clock": None,
    }


async def _list_customers(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    customers: list[Any] = _newest_first(_all("customer", ls.Customer))
    email = _opt_str(data.pop("email", None), "email")
    if email is not None:
        customers = [c for c in customers if c.email == email]
    _unknown(data, {"limit", "starting_after", "ending_before"})
    envelope = _paginate("/v1/customers", customers, data)
    data_expand = [e[len("data.") :] for e in expand if e.startswith("data.")]
    if any(e.split(".")[0] in _EXPANDABLE_ONLY for e in data_expand):
        envelope["data"] = [c._export(expand=data_expand) for c in envelope["data"]]
    else:
        envelope["data"] = [customer_view(c) for c in envelope["data"]]
    return _respond(envelope)


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/v1/customers", _list_customers),
]
