"""``StripeGateway``: the :class:`~billing_cli.gateway.protocol.Gateway` over stripe-python 16.

The only adapter that sends anything to Stripe. Reads come from :class:`.stripe_reads.StripeReads`;
this module adds the writes. Parameters are built as the TypedDicts stripe exports (so mypy
catches a misspelt parameter), every write carries the caller's idempotency key, each answer is
converted with :mod:`.converters` before it leaves, and each call runs inside
:func:`.calls.stripe_call`, the one place that logs calls and translates Stripe's errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import stripe

from billing_cli.errors import Conflict
from billing_cli.gateway import converters as conv
from billing_cli.gateway.calls import stripe_call
from billing_cli.gateway.stripe_adjustments import AdjustmentWrites
from billing_cli.gateway.stripe_discounts import DiscountCalls
from billing_cli.gateway.stripe_reads import StripeReads
from billing_cli.gateway.stripe_webhook_endpoints import WebhookEndpointCalls
from billing_cli.gateway.support_writes import SupportWrites
from billing_cli.gateway.types import (
    CustomerInfo,
    Interval,
    PaymentInfo,
    PaymentMethodInfo,
    PriceInfo,
    ProductInfo,
    ProrationBehavior,
    SubscriptionInfo,
)

if TYPE_CHECKING:
    from stripe.params import (
        PaymentIntentCreateParams,
        PriceCreateParams,
        ProductUpdateParams,
        SubscriptionCreateParams,
    )


def _options(idempotency_key: str) -> stripe.RequestOptions:
    return {"idempotency_key": idempotency_key}


class StripeGateway(
    AdjustmentWrites, DiscountCalls, SupportWrites, WebhookEndpointCalls, StripeReads
):
    """Stripe through one ``StripeClient``; built by :func:`billing_cli.gateway.make_gateway`."""

    # -- writes: catalogue ---------------------------------------------------------------------

    def create_product(
        self, *, name: str, metadata: Mapping[str, str], idempotency_key: str
    ) -> ProductInfo:
        """Create a product."""
        with stripe_call("products.create"):
            product = self._v1.products.create(
                {"name": name, "metadata": dict(metadata)}, _options(idempotency_key)
            )
        return conv.product_info(product)

    def update_product(
        self,
        product_id: str,
        *,
        name: str | None = None,
        active: bool | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str,
    ) -> ProductInfo:
        """Send only the fields given."""
        params: ProductUpdateParams = {}
        if name is not None:
            params["name"] = name
        if active is not None:
            params["active"] = active
        if metadata is not None:
            params["metadata"] = dict(metadata)
        with stripe_call("products.update", product=product_id):
            product = self._v1.products.update(product_id, params, _options(idempotency_key))
        return conv.product_info(product)

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
        """Create a price; ``transfer_lookup_key`` moves the lookup key from the old price."""
        params: PriceCreateParams = {
            "product": product_id,
            "unit_amount": unit_amount,
            "currency": currency,
            "metadata": dict(metadata),
        }
        if interval is not None:
            params["recurring"] = {"interval": interval, "interval_count": interval_count}
        if lookup_key is not None:
            params["lookup_key"] = lookup_key
            if transfer_lookup_key:
                params["transfer_lookup_key"] = True
        with stripe_call("prices.create", product=product_id):
            price = self._v1.prices.create(params, _options(idempotency_key))
        return conv.price_info(price)

    def archive_price(self, price_id: str, *, idempotency_key: str) -> PriceInfo:
        """Set ``active=false``; the amount of a price can never change."""
        with stripe_call("prices.archive", price=price_id):
            price = self._v1.prices.update(price_id, {"active": False}, _options(idempotency_key))
        return conv.price_info(price)

    # -- writes: customers ---------------------------------------------------------------------

    def create_customer(
        self, *, email: str, name: str, metadata: Mapping[str, str], idempotency_key: str
    ) -> CustomerInfo:
        """Create a customer."""
        with stripe_call("customers.create"):
            customer = self._v1.customers.create(
                {"email": email, "name": name, "metadata": dict(metadata)},
                _options(idempotency_key),
            )
        return conv.customer_info(customer)

    def delete_customer(self, customer_id: str, *, idempotency_key: str) -> CustomerInfo:
        """DELETE is idempotent by itself; the key is sent anyway and Stripe ignores it."""
        with stripe_call("customers.delete", customer=customer_id):
            deleted = self._v1.customers.delete(customer_id, options=_options(idempotency_key))
        return conv.customer_info(deleted)

    def attach_payment_method(
        self, payment_method_id: str, *, customer_id: str, idempotency_key: str
    ) -> PaymentMethodInfo:
        """Attach a payment method to a customer."""
        with stripe_call(
            "payment_methods.attach", payment_method=payment_method_id, customer=customer_id
        ):
            method = self._v1.payment_methods.attach(
                payment_method_id, {"customer": customer_id}, _options(idempotency_key)
            )
        return conv.payment_method_info(method)

    def set_default_payment_method(
        self, customer_id: str, payment_method_id: str, *, idempotency_key: str
    ) -> CustomerInfo:
        """The default for invoices, which subscriptions and one-off charges use."""
        with stripe_call(
            "customers.set_default", customer=customer_id, payment_method=payment_method_id
        ):
            customer = self._v1.customers.update(
                customer_id,
                {"invoice_settings": {"default_payment_method": payment_method_id}},
                _options(idempotency_key),
            )
        return conv.customer_info(customer)

    # -- writes: subscriptions and payments ------------------------------------------------------

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
        """One price item; a trial when ``trial_days`` is given."""
        params: SubscriptionCreateParams = {
            "customer": customer_id,
            "items": [{"price": price_id}],
            "metadata": dict(metadata),
        }
        if trial_days:
            params["trial_period_days"] = trial_days
        if default_payment_method is not None:
            params["default_payment_method"] = default_payment_method
        with stripe_call("subscriptions.create", customer=customer_id, price=price_id) as call:
            sub = self._v1.subscriptions.create(params, _options(idempotency_key))
            call.returned(sub)  # an incomplete subscription is not logged as ok
        return conv.subscription_info(sub)

    def change_subscription_price(
        self,
        subscription_id: str,
        *,
        item_id: str,
        price_id: str,
        proration_behavior: ProrationBehavior,
        idempotency_key: str,
    ) -> SubscriptionInfo:
        """Swap the item's price in place (same item id), prorating as asked."""
        with stripe_call(
            "subscriptions.change_price", subscription=subscription_id, price=price_id
        ) as call:
            sub = self._v1.subscriptions.update(
                subscription_id,
                {
                    "items": [{"id": item_id, "price": price_id}],
                    "proration_behavior": proration_behavior,
                },
                _options(idempotency_key),
            )
            call.returned(sub)
        return conv.subscription_info(sub)

    def set_cancel_at_period_end(
        self, subscription_id: str, value: bool, *, idempotency_key: str
    ) -> SubscriptionInfo:
        """Schedule or withdraw the cancellation at period end."""
        with stripe_call("subscriptions.cancel_at_period_end", subscription=subscription_id):
            sub = self._v1.subscriptions.update(
                subscription_id, {"cancel_at_period_end": value}, _options(idempotency_key)
            )
        return conv.subscription_info(sub)

    def cancel_subscription_now(
        self, subscription_id: str, *, idempotency_key: str
    ) -> SubscriptionInfo:
        """DELETE /v1/subscriptions/{id}: ends it now."""
        with stripe_call("subscriptions.cancel", subscription=subscription_id):
            sub = self._v1.subscriptions.cancel(subscription_id, options=_options(idempotency_key))
        return conv.subscription_info(sub)

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
        """A confirmed off-session PaymentIntent; Stripe does not pick the default by itself."""
        method = payment_method or self.retrieve_customer(customer_id).default_payment_method
        if not method:
            raise Conflict(
                f"customer {customer_id} has no default payment method; "
                "attach one or name a payment method"
            )
        params: PaymentIntentCreateParams = {
            "customer": customer_id,
            "amount": amount,
            "currency": currency,
            "description": description,
            "payment_method": method,
            # Server-side confirmation with no customer present: no redirect-based methods.
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "confirm": True,
            "off_session": True,
        }
        if metadata:
            params["metadata"] = dict(metadata)
        with stripe_call(
            "payment_intents.create", customer=customer_id, payment_method=method
        ) as call:
            intent = self._v1.payment_intents.create(params, _options(idempotency_key))
            call.returned(intent)
        return conv.payment_info(intent)
