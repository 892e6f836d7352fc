"""The ``Gateway`` protocol: every Stripe operation the services may ask for, and nothing else.

Services receive an object of this shape as an argument (the real ``StripeGateway``, the
``DryRunGateway`` around it, or a test fake), so none of them ever touches stripe-python. Reads
return the project's own types; every write takes a required keyword-only ``idempotency_key``
derived by the caller from the operation and its target (see :mod:`.idempotency`), so a re-run
after a crash gets Stripe's first answer back instead of a second object or charge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from billing_cli.gateway.types import (
    AccountMode,
    BalanceTransactionInfo,
    CouponDuration,
    CouponInfo,
    CustomerInfo,
    DeletedObject,
    DiscountInfo,
    Interval,
    InvoicePreview,
    PauseBehavior,
    PaymentInfo,
    PaymentMethodInfo,
    PriceInfo,
    ProductInfo,
    ProrationBehavior,
    SubscriptionInfo,
    SubscriptionPreview,
    WebhookEndpointInfo,
)

if TYPE_CHECKING:
    from billing_cli.gateway.support_types import (
        InvoiceInfo,
        PaymentRecord,
        RefundInfo,
        RefundReason,
    )


class Gateway(Protocol):
    """Stripe as the services see it. Errors are always ``billing_cli.errors.GatewayError``s."""

    # -- reads -----------------------------------------------------------------------------

    def list_products(self) -> list[ProductInfo]:
        """All products, active and archived (auto-paged, 100 a page)."""
        ...

    def list_prices(self) -> list[PriceInfo]:
        """All prices, active and archived (auto-paged, 100 a page)."""
        ...

    def retrieve_customer(self, customer_id: str) -> CustomerInfo:
        """One customer; a deleted one comes back with ``deleted=True``."""
        ...

    def list_customers(self, *, email: str | None = None) -> list[CustomerInfo]:
        """All customers, or those with exactly this email."""
        ...

    def list_payment_methods(self, customer_id: str) -> list[PaymentMethodInfo]:
        """The cards saved on a customer."""
        ...

    def retrieve_subscription(self, subscription_id: str) -> SubscriptionInfo:
        """One subscription, whatever its status."""
        ...

    def list_subscriptions(self, *, customer_id: str) -> list[SubscriptionInfo]:
        """Every subscription of a customer, canceled ones included."""
        ...

    def list_payments(self, *, customer_id: str) -> list[PaymentInfo]:
        """The customer's PaymentIntents, newest first (auto-paged)."""
        ...

    def retrieve_price(self, price_id: str) -> PriceInfo:
        """One price, archived or not."""
        ...

    def list_all_subscriptions(self) -> list[SubscriptionInfo]:
        """Every subscription of the account, canceled ones included, each with its price.

        One paged list (``status=all``, 100 a page, ``expand[]=data.items.data.price``): what a
        reconciliation of all tenants reads instead of one request per tenant.
        """
        ...

    def list_subscriptions_for_price(self, price_id: str) -> list[SubscriptionInfo]:
        """The live subscriptions (not canceled or incomplete_expired) billed on ``price_id``.

        One paged list (``price=``, 100 a page): what a bulk price migration reads instead of
        one request per tenant.
        """
        ...

    def preview_price_change(
        self,
        subscription_id: str,
        *,
        item_id: str,
        price_id: str,
        proration_behavior: ProrationBehavior,
        proration_date: int | None,
    ) -> InvoicePreview:
        """The invoice a price change would produce; a read with no side effect."""
        ...

    def preview_subscription_invoice(
        self, subscription_id: str, change: SubscriptionPreview
    ) -> InvoicePreview:
        """The subscription's next invoice (after ``change``, if any); a read, no side effect."""
        ...

    def list_coupons(self) -> list[CouponInfo]:
        """All coupons (auto-paged, 100 a page)."""
        ...

    def retrieve_coupon(self, coupon_id: str) -> CouponInfo:
        """One coupon; an unknown id is a ``GatewayError`` (``resource_missing``)."""
        ...

    def subscription_discounts(self, subscription_id: str) -> tuple[DiscountInfo, ...]:
        """The discounts applied to a subscription, with their coupons."""
        ...

    def list_balance_transactions(self, customer_id: str) -> list[BalanceTransactionInfo]:
        """The customer's balance transactions, newest first (auto-paged)."""
        ...

    def list_events(
        self,
        *,
        types: Sequence[str] = (),
        created_gte: int | None = None,
        created_lte: int | None = None,
        undelivered: bool = False,
    ) -> list[dict[str, Any]]:
        """Events from the Events API as plain JSON dicts, oldest first."""
        ...

    def retrieve_event(self, event_id: str) -> dict[str, Any]:
        """One event as a plain JSON dict."""
        ...

    def pinned_api_version(self) -> str:
        """The API version requests are sent in and payloads are read in."""
        ...

    def account_mode(self) -> AccountMode:
        """A read-only call (the balance) that proves the key works and says live or test."""
        ...

    def list_webhook_endpoints(self) -> list[WebhookEndpointInfo]:
        """Every webhook endpoint of the account."""
        ...

    # -- writes ----------------------------------------------------------------------------

    def create_product(
        self, *, name: str, metadata: Mapping[str, str], idempotency_key: str
    ) -> ProductInfo:
        """Create a product."""
        ...

    def update_product(
        self,
        product_id: str,
        *,
        name: str | None = None,
        active: bool | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str,
    ) -> ProductInfo:
        """Change a product's name, active flag or metadata (only those given)."""
        ...

    def create_price(
        self,
        *,
        product_id: str,
        unit_amount: int,
        currency: str,
        interval: Interval | None,
        interval_count: int,
        lookup_key: str | None,
        metadata: Mapping[str, str],
        transfer_lookup_key: bool,
        idempotency_key: str,
    ) -> PriceInfo:
        """Create a price (recurring unless ``interval`` is None)."""
        ...

    def archive_price(self, price_id: str, *, idempotency_key: str) -> PriceInfo:
        """Set a price inactive: prices cannot change amount, so they are replaced and archived."""
        ...

    def create_customer(
        self, *, email: str, name: str, metadata: Mapping[str, str], idempotency_key: str
    ) -> CustomerInfo:
        """Create a customer."""
        ...

    def delete_customer(self, customer_id: str, *, idempotency_key: str) -> CustomerInfo:
        """Delete a customer (Stripe cancels its subscriptions)."""
        ...

    def attach_payment_method(
        self, payment_method_id: str, *, customer_id: str, idempotency_key: str
    ) -> PaymentMethodInfo:
        """Attach a payment method to a customer."""
        ...

    def set_default_payment_method(
        self, customer_id: str, payment_method_id: str, *, idempotency_key: str
    ) -> CustomerInfo:
        """Make a payment method the customer's default for invoices."""
        ...

    def create_subscription(
        self,
        *,
        customer_id: str,
        price_id: str,
        trial_days: int | None,
        default_payment_method: str | None,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> SubscriptionInfo:
        """Subscribe a customer to one price, with an optional trial."""
        ...

    def change_subscription_price(
        self,
        subscription_id: str,
        *,
        item_id: str,
        price_id: str,
        proration_behavior: ProrationBehavior,
        idempotency_key: str,
    ) -> SubscriptionInfo:
        """Move a subscription's item to another price."""
        ...

    def set_cancel_at_period_end(
        self, subscription_id: str, value: bool, *, idempotency_key: str
    ) -> SubscriptionInfo:
        """Schedule (True) or withdraw (False) the cancellation at the end of the period."""
        ...

    def cancel_subscription_now(
        self, subscription_id: str, *, idempotency_key: str
    ) -> SubscriptionInfo:
        """Cancel a subscription immediately."""
        ...

    def create_payment(
        self,
        *,
        customer_id: str,
        amount: int,
        currency: str,
        description: str,
        payment_method: str | None,
        idempotency_key: str,
        metadata: Mapping[str, str] | None = None,
    ) -> PaymentInfo:
        """Charge a one-off amount off-session, with the customer's default method if none given."""
        ...

    def create_webhook_endpoint(
        self,
        *,
        url: str,
        enabled_events: Sequence[str],
        api_version: str,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> WebhookEndpointInfo:
        """Create a webhook endpoint; only this answer carries its signing secret."""
        ...

    def update_webhook_endpoint(
        self,
        endpoint_id: str,
        *,
        enabled_events: Sequence[str],
        disabled: bool,
        idempotency_key: str,
    ) -> WebhookEndpointInfo:
        """Replace an endpoint's event list and set it enabled or disabled."""
        ...

    def set_webhook_endpoint_disabled(
        self, endpoint_id: str, *, disabled: bool, idempotency_key: str
    ) -> WebhookEndpointInfo:
        """Disable or enable an endpoint, leaving its events as they are."""
        ...

    def delete_webhook_endpoint(self, endpoint_id: str) -> None:
        """Delete an endpoint (its secret dies with it). No idempotency key: Stripe ignores one
        on DELETE, which is idempotent by itself (a second one answers 404)."""
        ...

    # -- the support desk: invoices, payment history, refunds, cards, customer details --------

    def list_invoices(
        self,
        *,
        customer_id: str,
        status: str | None = None,
        limit: int = 20,
        created_gte: int | None = None,
    ) -> list[InvoiceInfo]:
        """The customer's invoices, newest first, at most ``limit``."""
        ...

    def retrieve_invoice(self, invoice_id: str) -> InvoiceInfo:
        """One invoice with its lines."""
        ...

    def list_all_invoices(
        self, *, status: str | None = None, created_gte: int | None = None, limit: int = 100
    ) -> list[InvoiceInfo]:
        """Invoices of every customer, newest first, at most ``limit`` (created at or after
        ``created_gte``, epoch seconds, when given)."""
        ...

    def list_payment_history(
        self, *, customer_id: str, limit: int = 20, created_gte: int | None = None
    ) -> list[PaymentRecord]:
        """The customer's payments, newest first, with refunded amounts and declines."""
        ...

    def retrieve_payment(self, payment_id: str) -> PaymentRecord:
        """One payment by PaymentIntent (``pi_``) or Charge (``ch_``) id."""
        ...

    def list_refunds(self, *, payment_id: str) -> list[RefundInfo]:
        """The refunds of one payment."""
        ...

    def pay_invoice(
        self, invoice_id: str, *, payment_method: str | None, idempotency_key: str
    ) -> InvoiceInfo:
        """Attempt to collect an open invoice now (with this card, when given)."""
        ...

    def void_invoice(self, invoice_id: str, *, idempotency_key: str) -> InvoiceInfo:
        """Void an invoice."""
        ...

    def mark_invoice_uncollectible(self, invoice_id: str, *, idempotency_key: str) -> InvoiceInfo:
        """Mark an invoice uncollectible."""
        ...

    def create_refund(
        self,
        *,
        payment_id: str,
        amount: int | None,
        reason: RefundReason | None,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> RefundInfo:
        """Refund (part of) a payment."""
        ...

    def detach_payment_method(
        self, payment_method_id: str, *, idempotency_key: str
    ) -> PaymentMethodInfo:
        """Detach a payment method from its customer."""
        ...

    def set_subscription_payment_method(
        self, subscription_id: str, payment_method_id: str, *, idempotency_key: str
    ) -> SubscriptionInfo:
        """Make a payment method the subscription's default."""
        ...

    def update_customer(
        self, customer_id: str, *, name: str | None, email: str | None, idempotency_key: str
    ) -> CustomerInfo:
        """Change a customer's name and/or e-mail."""
        ...

    # -- writes: subscription adjustments (adapter in stripe_adjustments.py) ------------------

    def set_trial_end(
        self, subscription_id: str, trial_end: datetime | None, *, idempotency_key: str
    ) -> SubscriptionInfo:
        """Move the trial's end (``None``: end it now), without prorations."""
        ...

    def set_pause_collection(
        self,
        subscription_id: str,
        behavior: PauseBehavior | None,
        resumes_at: datetime | None,
        *,
        idempotency_key: str,
    ) -> SubscriptionInfo:
        """Pause collection with ``behavior`` (optionally until ``resumes_at``); None resumes."""
        ...

    def set_subscription_quantity(
        self,
        subscription_id: str,
        *,
        item_id: str,
        quantity: int,
        proration_behavior: ProrationBehavior,
        idempotency_key: str,
    ) -> SubscriptionInfo:
        """Change the item's quantity (seats), prorating as asked."""
        ...

    # -- writes: discounts and credit (adapter in stripe_discounts.py) ------------------------

    def create_coupon(
        self,
        *,
        coupon_id: str,
        percent_off: float | None,
        amount_off: int | None,
        currency: str | None,
        duration: CouponDuration,
        duration_in_months: int | None,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> CouponInfo:
        """Create a coupon with the given id."""
        ...

    def set_subscription_discount(
        self, subscription_id: str, coupon_id: str | None, *, idempotency_key: str
    ) -> SubscriptionInfo:
        """Apply ``coupon_id`` as the subscription's only discount; None removes its discounts."""
        ...

    def delete_coupon(self, coupon_id: str, *, idempotency_key: str) -> DeletedObject:
        """Delete a coupon (discounts already given keep running); unknown: NotFoundInStripe."""
        ...

    def create_balance_transaction(
        self,
        customer_id: str,
        *,
        amount: int,
        currency: str,
        description: str,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> BalanceTransactionInfo:
        """Add ``amount`` (Stripe's sign: negative credits the customer) to the balance."""
        ...
