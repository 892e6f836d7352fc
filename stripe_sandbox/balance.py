"""Customer credit balances in the sandbox: ``/v1/customers/{id}/balance_transactions``.

localstripe keeps only the 2017 ``account_balance`` and has no balance transactions. Here
``POST`` adds one (``amount`` in Stripe's sign: negative credits the customer, positive debits;
``currency``; ``description``; ``metadata``), ``GET`` lists them newest first, and the customer
renders ``balance`` (their sum) and ``currency`` (fixed by the first transaction: a transaction
in another currency is refused, as Stripe refuses it). Each one emits ``customer.updated``
with ``previous_attributes.balance``. :mod:`.previews` applies the balance to invoice previews.

Replaces: ``Customer._export`` (adds ``balance`` and ``currency``; localstripe's
``account_balance`` is left as it was).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from localstripe import resources as ls

from stripe_sandbox import common, events, subscriptions

JSON = dict[str, Any]


def balance_of(customer: Any) -> int:
    return sum(int(t["amount"]) for t in getattr(customer, "_balance_transactions", []))


def _currency_of(customer: Any) -> str | None:
    """Fixed by the first balance transaction or, as Stripe does, by the first subscription."""
    transactions = getattr(customer, "_balance_transactions", [])
    if transactions:
        return str(transactions[0]["currency"])
    subs = [
        s
        for s in common._all("subscription", subscriptions.Subscription)
        if s.customer == customer.id
    ]
    return subs[0].currency if subs else None


def add_transaction(customer: Any, data: JSON) -> JSON:
    common._unknown(data, {"amount", "currency", "description", "metadata"})
    amount = common._int(data.get("amount"), "amount")
    currency = common._req_str(data.get("currency"), "currency").lower()
    known = _currency_of(customer)
    if known is not None and known != currency:
        raise common._bad(
            "currency",
            f"The customer's balance is in {known}; a transaction in {currency} is not allowed.",
        )
    before = balance_of(customer)
    transaction = {
        "id": common._rid("cbtxn_"),
        "object": "customer_balance_transaction",
        "amount": amount,
        "created": common._now(),
        "credit_note": None,
        "currency": currency,
        "customer": customer.id,
        "description": common._opt_str(data.get("description"), "description"),
        "ending_balance": before + amount,
        "invoice": None,
        "livemode": False,
        "metadata": common._merge_metadata({}, data.get("metadata")),
        "type": "adjustment",
    }
    if not hasattr(customer, "_balance_transactions"):
        customer._balance_transactions = []
    customer._balance_transactions.append(transaction)
    previous: JSON = {"balance": before}
    if known is None:
        previous["currency"] = None
    events.emit("customer.updated", customer, previous)
    return transaction


async def _create(request: web.Request) -> web.Response:
    data = await common._params(request)
    common._pop_expand(data)
    customer = ls.Customer._api_retrieve(request.match_info["id"])
    return common._respond(add_transaction(customer, data))


async def _list(request: web.Request) -> web.Response:
    data = await common._params(request)
    customer = ls.Customer._api_retrieve(request.match_info["id"])
    common._unknown(data, {"limit", "starting_after", "ending_before"})
    transactions = list(reversed(getattr(customer, "_balance_transactions", [])))
    url = f"/v1/customers/{customer.id}/balance_transactions"
    return common._respond({"object": "list", "data": transactions, "has_more": False, "url": url})


ROUTES: list[tuple[str, str, common.Handler]] = [
    ("POST", "/v1/customers/{id}/balance_transactions", _create),
    ("GET", "/v1/customers/{id}/balance_transactions", _list),
]

_installed = False


def install() -> None:
    """Render ``balance`` and ``currency`` on customers (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    original = ls.Customer._export

    def export(self: Any, expand: Any = None) -> JSON:
        obj: JSON = original(self, expand=expand)
        if not getattr(self, "deleted", False) and "id" in obj:
            obj["balance"] = balance_of(self)
            obj["currency"] = _currency_of(self)
        return obj

    ls.Customer._export = export
