"""The Invoice resource of subscriptions, in the current API shape, and its plain routes.

localstripe behaviours replaced: subscription invoices (``GET /v1/invoices``,
``GET/POST /v1/invoices/{id}``, ``/lines``, ``/void``) with ``invoice.parent.subscription_details``
and ``invoice.payments``. Events added: ``invoice.updated``, ``invoice.voided``.
Paying an invoice is a collection attempt: see :mod:`.billing_cycle`.
"""

from __future__ import annotations

from aiohttp import web
from localstripe import resources as ls

from stripe_sandbox.common import (
    JSON,
    _all,
    _bad,
    _bool,
    _created_filter,
    _diff,
    _expand_all,
    _get,
    _list_response,
    _merge_metadata,
    _newest_first,
    _now,
    _opt_str,
    _params,
    _pop_expand,
    _Resource,
    _respond,
    _unknown,
)
from stripe_sandbox.events import emit
from stripe_sandbox.subscriptions import Subscription


class Invoice(_Resource):
    object = "invoice"
    _prefix = "in_"

    def __init__(
        self,
        *,
        customer: str,
        currency: str,
        lines: list[JSON],
        billing_reason: str,
        subscription: Subscription | None,
        period: tuple[int, int],
        persist: bool = True,
    ) -> None:
        super().__init__(persist=persist)
        cus = ls.Customer._api_retrieve(customer)
        self.customer = customer
        self.customer_email: str | None = cus.email
        self.customer_name: str | None = cus.name
        self.currency = currency
        self.billing_reason = billing_reason
        self._subscription = subscription
        self.period_start, self.period_end = period
        self.attempt_count = 0
        self.attempted = False
        self.auto_advance = True
        self.description: str | None = None
        self.metadata: dict[str, str] = {}
        self.status = "draft"
        self.number: str | None = None
        self.next_payment_attempt: int | None = None
        self.effective_at: int | None = None
        self.last_payment_error: JSON | None = None
        self.status_transitions: JSON = {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        }
        self._payments: list[JSON] = []
        self._lines = [dict(line, invoice=self.id) for line in lines]

    @property
    def _total(self) -> int:
        return sum(int(line["amount"]) for line in self._lines)

    @property
    def _amount_due(self) -> int:
        # A net credit would go to the customer balance in Stripe; nothing is due then.
        return max(0, self._total)

    def _export(self, expand: list[str] | None = None) -> JSON:
        sub = self._subscription
        amount_due = self._amount_due
        amount_paid = amount_due if self.status == "paid" else 0
        obj: JSON = {
            "id": self.id,
            "object": "invoice",
            "account_country": "US",
            "account_name": "billing-cli sandbox",
            "amount_due": amount_due,
            "amount_overpaid": 0,
            "amount_paid": amount_paid,
            "amount_remaining": amount_due - amount_paid,
            "amount_shipping": 0,
            "application": None,
            "attempt_count": self.attempt_count,
            "attempted": self.attempted,
            "auto_advance": self.auto_advance,
            "automatic_tax": {"enabled": False, "liability": None, "status": None},
            "billing_reason": self.billing_reason,
            "collection_method": "charge_automatically",
            "confirmation_secret": None,
            "created": self.created,
            "currency": self.currency,
            "customer": self.customer,
            "customer_email": self.customer_email,
            "customer_name": self.customer_name,
            "default_payment_method": None,
            "default_source": None,
            "description": self.description,
            "discounts": [],
            "due_date": None,
            "effective_at": self.effective_at,
            "ending_balance": 0 if self.status != "draft" else None,
            "hosted_invoice_url": None,
            "invoice_pdf": None,
            "last_finalization_error": None,
            "lines": {
                "object": "list",
                "data": [dict(line) for line in self._lines],
                "has_more": False,
                "total_count": len(self._lines),
                "url": f"/v1/invoices/{self.id}/lines",
            },
            "livemode": False,
            "metadata": dict(self.metadata),
            "next_payment_attempt": self.next_payment_attempt,
            "number": self.number,
            "parent": (
                {
                    "type": "subscription_details",
                    "quote_details": None,
                    "subscription_details": {
                        "metadata": dict(sub.metadata),
                        "subscription": sub.id,
                    },
                }
                if sub is not None
                else None
            ),
            "payments": {
                "object": "list",
                "data": [dict(p) for p in self._payments],
                "has_more": False,
                "url": "/v1/invoice_payments",
            },
            "period_end": self.period_end,
            "period_start": self.period_start,
            "starting_balance": 0,
            "status": self.status,
            "status_transitions": dict(self.status_transitions),
            "subtotal": self._total,
            "subtotal_excluding_tax": self._total,
            "total": self._total,
            "total_discount_amounts": [],
            "total_excluding_tax": self._total,
            "total_taxes": [],
            "webhooks_delivered_at": self.created,
        }
        _expand_all(obj, expand)
        return obj


def _invoice(invoice_id: str) -> Invoice:
    invoice = _get("invoice", invoice_id)
    if not isinstance(invoice, Invoice):
        raise _bad("invoice", f"{invoice_id} is not a subscription invoice of the sandbox.")
    return invoice


async def _retrieve_invoice(request: web.Request) -> web.Response:
    data = await _params(request)
    return _respond(_invoice(request.match_info["id"])._export(expand=_pop_expand(data)))


async def _update_invoice(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    _unknown(data, {"metadata", "description", "auto_advance"})
    invoice = _invoice(request.match_info["id"])
    before = invoice._export()
    if "metadata" in data:
        invoice.metadata = _merge_metadata(invoice.metadata, data["metadata"])
    if "description" in data:
        invoice.description = _opt_str(data["description"], "description")
    if "auto_advance" in data:
        invoice.auto_advance = _bool(data["auto_advance"], "auto_advance")
    previous = _diff(before, invoice._export())
    if previous:
        emit("invoice.updated", invoice, previous)
    return _respond(invoice._export(expand=expand))


async def _list_invoices(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    invoices: list[Invoice] = _newest_first(_all("invoice", Invoice))
    if "customer" in data:
        customer = data.pop("customer")
        invoices = [i for i in invoices if i.customer == customer]
    if "subscription" in data:
        sub_id = data.pop("subscription")
        invoices = [i for i in invoices if i._subscription and i._subscription.id == sub_id]
    if "status" in data:
        status = data.pop("status")
        invoices = [i for i in invoices if i.status == status]
    invoices = _created_filter(invoices, data)
    _unknown(data, {"limit", "starting_after", "ending_before"})
    return _list_response("/v1/invoices", invoices, data, expand)


async def _invoice_lines(request: web.Request) -> web.Response:
    data = await _params(request)
    invoice = _invoice(request.match_info["id"])
    lines = [_Line(line) for line in invoice._lines]
    return _list_response(f"/v1/invoices/{invoice.id}/lines", lines, data, [])


class _Line:
    """Adapter so invoice line dicts can go through ``_paginate``."""

    def __init__(self, line: JSON) -> None:
        self.id = str(line["id"])
        self._line = line

    def _export(self, expand: list[str] | None = None) -> JSON:
        return dict(self._line)


async def _void_invoice(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    invoice = _invoice(request.match_info["id"])
    if invoice.status not in ("draft", "open"):
        raise _bad("invoice", f"Invoice is {invoice.status}; it cannot be voided.")
    invoice.status = "void"
    invoice.next_payment_attempt = None
    invoice.status_transitions["voided_at"] = _now()
    emit("invoice.voided", invoice)
    return _respond(invoice._export(expand=expand))
