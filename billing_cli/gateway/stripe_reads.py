"""The read half of ``StripeGateway``: lists, retrievals and the invoice preview.

Lists page through Stripe 100 objects at a time with ``auto_paging_iter`` (one request per page,
never one per object). The customer and subscription lists that ``reconcile`` reads for the whole
account page with :meth:`StripeReads._pages` instead and hand plain JSON to the converters:
building stripe-python's objects cost far more than the HTTP (400 subscriptions against the
sandbox: 6.5 s through ``auto_paging_iter``, 0.9 s as plain JSON). Every answer is converted
with :mod:`.converters` before it leaves, and each call runs inside :func:`.calls.stripe_call`
(logging and error translation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import stripe

from billing_cli.gateway import converters as conv
from billing_cli.gateway.calls import stripe_call
from billing_cli.gateway.types import (
    CustomerInfo,
    InvoicePreview,
    PaymentInfo,
    PaymentMethodInfo,
    PriceInfo,
    ProductInfo,
    ProrationBehavior,
    SubscriptionInfo,
    SubscriptionPreview,
)

if TYPE_CHECKING:
    from stripe.params import (
        CustomerListParams,
        EventListParams,
        EventListParamsCreated,
        InvoiceCreatePreviewParams,
        InvoiceCreatePreviewParamsSubscriptionDetails,
        InvoiceListParams,
        PaymentIntentListParams,
        SubscriptionListParams,
    )

    from billing_cli.gateway.support_types import (
        InvoiceInfo,
        PaymentRecord,
        RefundInfo,
    )

PAGE_SIZE = 100
_MAX_TYPES = 20  # Stripe's limit for types[] in one events request


class StripeReads:
    """Reads over one ``StripeClient``; :class:`.stripe_gateway.StripeGateway` adds the writes."""

    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client
        self._v1 = client.v1

    def _pages(self, operation: str, path: str, params: Mapping[str, Any]) -> list[Any]:
        """Every object of a list endpoint as plain JSON, 100 a page (``starting_after``).

        Errors are raised by stripe-python as for any call, and translated by ``stripe_call``.
        """
        found: list[Any] = []
        query = {**params, "limit": PAGE_SIZE}
        while True:
            with stripe_call(operation):
                response = self._client.raw_request("get", path, **query)
            page = response.data
            data = page.get("data") or []
            found += data
            if not page.get("has_more") or not data:
                return found
            query["starting_after"] = data[-1]["id"]

    # -- reads -----------------------------------------------------------------------------

    def list_products(self) -> list[ProductInfo]:
        """All products, active and archived: the product list returns both when unfiltered."""
        with stripe_call("products.list"):
            page = self._v1.products.list({"limit": PAGE_SIZE})
            return [conv.product_info(p) for p in page.auto_paging_iter()]

    def list_prices(self) -> list[PriceInfo]:
        """All prices, active ones first.

        Stripe documents the unfiltered price list as "your active prices", so active and
        archived prices are listed separately (two paged lists, still never one call per price).
        """
        prices: dict[str, PriceInfo] = {}
        for active in (True, False):
            with stripe_call("prices.list", active=str(active).lower()):
                page = self._v1.prices.list({"active": active, "limit": PAGE_SIZE})
                for price in page.auto_paging_iter():
                    info = conv.price_info(price)
                    prices.setdefault(info.id, info)
        return list(prices.values())

    def retrieve_customer(self, customer_id: str) -> CustomerInfo:
        """One customer (a deleted one too)."""
        with stripe_call("customers.retrieve", customer=customer_id):
            return conv.customer_info(self._v1.customers.retrieve(customer_id))

    def list_customers(self, *, email: str | None = None) -> list[CustomerInfo]:
        """Customers, filtered by exact email when given."""
        params: CustomerListParams = {"limit": PAGE_SIZE}
        if email is not None:
            params["email"] = email
        return [
            conv.customer_info(c) for c in self._pages("customers.list", "/v1/customers", params)
        ]

    def list_payment_methods(self, customer_id: str) -> list[PaymentMethodInfo]:
        """The customer's cards (the only kind this tool charges)."""
        with stripe_call("payment_methods.list", customer=customer_id):
            page = self._v1.payment_methods.list(
                {"customer": customer_id, "type": "card", "limit": PAGE_SIZE}
            )
            return [conv.payment_method_info(m) for m in page.auto_paging_iter()]

    def retrieve_subscription(self, subscription_id: str) -> SubscriptionInfo:
        """One subscription."""
        with stripe_call("subscriptions.retrieve", subscription=subscription_id):
            return conv.subscription_info(self._v1.subscriptions.retrieve(subscription_id))

    def list_subscriptions(self, *, customer_id: str) -> list[SubscriptionInfo]:
        """Every subscription of the customer; ``status=all`` includes canceled ones."""
        with stripe_call("subscriptions.list", customer=customer_id):
            page = self._v1.subscriptions.list(
                {"customer": customer_id, "status": "all", "limit": PAGE_SIZE}
            )
            return [conv.subscription_info(s) for s in page.auto_paging_iter()]

    def list_payments(self, *, customer_id: str) -> list[PaymentInfo]:
        """The customer's PaymentIntents (used to find a charge by its intent's metadata)."""
        with stripe_call("payment_intents.list", customer=customer_id):
            page = self._v1.payment_intents.list({"customer": customer_id, "limit": PAGE_SIZE})
            return [conv.payment_info(p) for p in page.auto_paging_iter()]

    def retrieve_price(self, price_id: str) -> PriceInfo:
        """One price (an archived one too)."""
        with stripe_call("prices.retrieve", price=price_id):
            return conv.price_info(self._v1.prices.retrieve(price_id))

    def list_all_subscriptions(self) -> list[SubscriptionInfo]:
        """All subscriptions, ended ones too, with the first item's price expanded."""
        params: SubscriptionListParams = {
            "status": "all",
            "limit": PAGE_SIZE,
            "expand": ["data.items.data.price"],
        }
        found = self._pages("subscriptions.list", "/v1/subscriptions", params)
        return [conv.subscription_info(s) for s in found]

    def list_subscriptions_for_price(self, price_id: str) -> list[SubscriptionInfo]:
        """Stripe's default status filter leaves out canceled and incomplete_expired ones."""
        params: SubscriptionListParams = {"price": price_id, "limit": PAGE_SIZE}
        found = self._pages("subscriptions.list", "/v1/subscriptions", params)
        return [conv.subscription_info(s) for s in found]

    def preview_price_change(
        self,
        subscription_id: str,
        *,
        item_id: str,
        price_id: str,
        proration_behavior: ProrationBehavior,
        proration_date: int | None,
    ) -> InvoicePreview:
        """POST /v1/invoices/create_preview: a read, so it carries no idempotency key."""
        params: InvoiceCreatePreviewParams = {
            "subscription": subscription_id,
            "subscription_details": {
                "items": [{"id": item_id, "price": price_id}],
                "proration_behavior": proration_behavior,
            },
        }
        if proration_date is not None:
            params["subscription_details"]["proration_date"] = proration_date
        with stripe_call("invoices.create_preview", subscription=subscription_id, price=price_id):
            return conv.invoice_preview(self._v1.invoices.create_preview(params))

    def preview_subscription_invoice(
        self, subscription_id: str, change: SubscriptionPreview
    ) -> InvoicePreview:
        """POST /v1/invoices/create_preview for the subscription, with ``change`` applied."""
        params: InvoiceCreatePreviewParams = {
            "subscription": subscription_id,
            "expand": ["discounts"],  # their coupons, not only their ids
        }
        details: InvoiceCreatePreviewParamsSubscriptionDetails = {}
        if change.trial_end_now:
            details["trial_end"] = "now"
        if change.item_id is not None and change.quantity is not None:
            details["items"] = [{"id": change.item_id, "quantity": change.quantity}]
        if change.proration_behavior is not None:
            details["proration_behavior"] = change.proration_behavior
        if change.proration_date is not None:
            details["proration_date"] = change.proration_date
        if details:
            params["subscription_details"] = details
        if change.coupon is not None:
            params["discounts"] = [{"coupon": change.coupon}]
        elif change.without_discounts:
            params["discounts"] = ""
        with stripe_call("invoices.create_preview", subscription=subscription_id):
            return conv.invoice_preview(self._v1.invoices.create_preview(params))

    def list_events(
        self,
        *,
        types: Sequence[str] = (),
        created_gte: int | None = None,
        created_lte: int | None = None,
        undelivered: bool = False,
    ) -> list[dict[str, Any]]:
        """Events as JSON dicts, oldest first (Stripe pages newest first).

        Exact names go in ``types[]``, 20 a request (Stripe's limit); a wildcard pattern such
        as ``invoice.*`` is only accepted alone in ``type``, so it gets a request of its own.
        """
        found: dict[str, dict[str, Any]] = {}
        for query in _event_queries(types, created_gte, created_lte, undelivered):
            with stripe_call("events.list"):
                page = self._v1.events.list(query)
                batch = [conv.as_dict(e) for e in page.auto_paging_iter()]
            for event in reversed(batch):
                found.setdefault(str(event["id"]), event)
        # A stable sort keeps Stripe's own order among events of the same second.
        return sorted(found.values(), key=lambda e: int(e.get("created") or 0))

    def retrieve_event(self, event_id: str) -> dict[str, Any]:
        """One event as a JSON dict."""
        with stripe_call("events.retrieve", event=event_id):
            return conv.as_dict(self._v1.events.retrieve(event_id))

    # -- reads for the support desk (invoices, payment history, refunds) ----------------------

    def list_invoices(
        self,
        *,
        customer_id: str,
        status: str | None = None,
        limit: int = 20,
        created_gte: int | None = None,
    ) -> list[InvoiceInfo]:
        """The customer's invoices, newest first, at most ``limit`` (paged 100 at a time)."""
        params = _invoice_filters(status, created_gte, limit)
        params["customer"] = customer_id
        with stripe_call("invoices.list", customer=customer_id):
            return self._first_invoices(params, limit)

    def list_all_invoices(
        self, *, status: str | None = None, created_gte: int | None = None, limit: int = 100
    ) -> list[InvoiceInfo]:
        """Every customer's invoices, newest first, paged 100 at a time until ``limit``."""
        with stripe_call("invoices.list", status=status or "any"):
            return self._first_invoices(_invoice_filters(status, created_gte, limit), limit)

    def _first_invoices(self, params: InvoiceListParams, limit: int) -> list[InvoiceInfo]:
        from billing_cli.gateway import support_converters as sconv

        found: list[InvoiceInfo] = []
        for invoice in self._v1.invoices.list(params).auto_paging_iter():
            found.append(sconv.invoice_info(invoice))
            if len(found) >= limit:
                break
        return found

    def retrieve_invoice(self, invoice_id: str) -> InvoiceInfo:
        """One invoice with its embedded lines."""
        from billing_cli.gateway import support_converters as sconv

        with stripe_call("invoices.retrieve", invoice=invoice_id):
            return sconv.invoice_info(self._v1.invoices.retrieve(invoice_id))

    def list_payment_history(
        self, *, customer_id: str, limit: int = 20, created_gte: int | None = None
    ) -> list[PaymentRecord]:
        """The customer's PaymentIntents with their charge expanded (refunds, declines)."""
        from billing_cli.gateway import support_converters as sconv

        params: PaymentIntentListParams = {
            "customer": customer_id,
            "limit": min(limit, PAGE_SIZE),
            "expand": ["data.latest_charge"],
        }
        if created_gte is not None:
            params["created"] = {"gte": created_gte}
        found: list[PaymentRecord] = []
        with stripe_call("payment_intents.list", customer=customer_id):
            page = self._v1.payment_intents.list(params)
            for intent in page.auto_paging_iter():
                found.append(sconv.payment_record(intent))
                if len(found) >= limit:
                    break
        return found

    def retrieve_payment(self, payment_id: str) -> PaymentRecord:
        """A PaymentIntent (``pi_``, charge expanded) or a Charge (``ch_``)."""
        from billing_cli.gateway import support_converters as sconv

        with stripe_call("payments.retrieve", payment=payment_id):
            if payment_id.startswith("ch_"):
                return sconv.payment_record(self._v1.charges.retrieve(payment_id))
            intent = self._v1.payment_intents.retrieve(payment_id, {"expand": ["latest_charge"]})
            return sconv.payment_record(intent)

    def list_refunds(self, *, payment_id: str) -> list[RefundInfo]:
        """The refunds of one payment (to find one made under an intent, by its metadata)."""
        from billing_cli.gateway import support_converters as sconv

        with stripe_call("refunds.list", payment=payment_id):
            if payment_id.startswith("ch_"):
                page = self._v1.refunds.list({"charge": payment_id, "limit": PAGE_SIZE})
            else:
                page = self._v1.refunds.list({"payment_intent": payment_id, "limit": PAGE_SIZE})
            return [sconv.refund_info(r) for r in page.auto_paging_iter()]


def _invoice_filters(status: str | None, created_gte: int | None, limit: int) -> InvoiceListParams:
    params: InvoiceListParams = {"limit": min(limit, PAGE_SIZE)}
    if status is not None:
        params["status"] = status
    if created_gte is not None:
        params["created"] = {"gte": created_gte}
    return params


def _event_queries(
    types: Sequence[str], created_gte: int | None, created_lte: int | None, undelivered: bool
) -> list[EventListParams]:
    """The list requests that together cover ``types`` (one request when no type is given)."""
    base: EventListParams = {"limit": PAGE_SIZE}
    created: EventListParamsCreated = {}
    if created_gte is not None:
        created["gte"] = created_gte
    if created_lte is not None:
        created["lte"] = created_lte
    if created:
        base["created"] = created
    if undelivered:
        base["delivery_success"] = False
    queries: list[EventListParams] = []
    for pattern in (t for t in types if "*" in t):
        query = base.copy()
        query["type"] = pattern
        queries.append(query)
    names = [t for t in types if "*" not in t]
    for start in range(0, len(names), _MAX_TYPES):
        query = base.copy()
        query["types"] = names[start : start + _MAX_TYPES]
        queries.append(query)
    return queries or [base]
