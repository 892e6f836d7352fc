"""The support desk's Stripe writes, mixed into ``StripeGateway``.

Retrying, voiding and writing off an invoice, refunds, detaching a card, a subscription's
default card, a customer's name and e-mail. As everywhere in the gateway: typed parameters,
the caller's idempotency key on every write, the answer converted before it leaves, and each
call inside :func:`.calls.stripe_call` (logging and error translation).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import stripe

from billing_cli.gateway import converters as conv
from billing_cli.gateway import support_converters as sconv
from billing_cli.gateway.calls import stripe_call
from billing_cli.gateway.support_types import InvoiceInfo, RefundInfo, RefundReason
from billing_cli.gateway.types import CustomerInfo, PaymentMethodInfo, SubscriptionInfo

if TYPE_CHECKING:
    from stripe._v1_services import V1Services
    from stripe.params import CustomerUpdateParams, InvoicePayParams, RefundCreateParams


def _options(idempotency_key: str) -> stripe.RequestOptions:
    return {"idempotency_key": idempotency_key}


class SupportWrites:
    """Writes over ``self._v1`` (set by :class:`.stripe_reads.StripeReads`)."""

    _v1: V1Services

    def pay_invoice(
        self, invoice_id: str, *, payment_method: str | None, idempotency_key: str
    ) -> InvoiceInfo:
        """Attempt to collect an open invoice now; a decline raises ``CardDeclined``."""
        params: InvoicePayParams = {"off_session": True}
        if payment_method is not None:
            params["payment_method"] = payment_method
        with stripe_call("invoices.pay", invoice=invoice_id):
            invoice = self._v1.invoices.pay(invoice_id, params, _options(idempotency_key))
        return sconv.invoice_info(invoice)

    def void_invoice(self, invoice_id: str, *, idempotency_key: str) -> InvoiceInfo:
        """Void an invoice: nothing more will be collected for it."""
        with stripe_call("invoices.void", invoice=invoice_id):
            invoice = self._v1.invoices.void_invoice(invoice_id, options=_options(idempotency_key))
        return sconv.invoice_info(invoice)

    def mark_invoice_uncollectible(self, invoice_id: str, *, idempotency_key: str) -> InvoiceInfo:
        """Write an invoice off as bad debt (it can still be paid later)."""
        with stripe_call("invoices.mark_uncollectible", invoice=invoice_id):
            invoice = self._v1.invoices.mark_uncollectible(
                invoice_id, options=_options(idempotency_key)
            )
        return sconv.invoice_info(invoice)

    def create_refund(
        self,
        *,
        payment_id: str,
        amount: int | None,
        reason: RefundReason | None,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> RefundInfo:
        """Refund ``amount`` (all that is left when None) of a PaymentIntent or Charge."""
        params: RefundCreateParams = {"metadata": dict(metadata)}
        if payment_id.startswith("ch_"):
            params["charge"] = payment_id
        else:
            params["payment_intent"] = payment_id
        if amount is not None:
            params["amount"] = amount
        if reason is not None:
            params["reason"] = reason
        with stripe_call("refunds.create", payment=payment_id):
            refund = self._v1.refunds.create(params, _options(idempotency_key))
        return sconv.refund_info(refund)

    def detach_payment_method(
        self, payment_method_id: str, *, idempotency_key: str
    ) -> PaymentMethodInfo:
        """Detach a payment method from its customer (it can never be used again)."""
        with stripe_call("payment_methods.detach", payment_method=payment_method_id):
            method = self._v1.payment_methods.detach(
                payment_method_id, options=_options(idempotency_key)
            )
        return conv.payment_method_info(method)

    def set_subscription_payment_method(
        self, subscription_id: str, payment_method_id: str, *, idempotency_key: str
    ) -> SubscriptionInfo:
        """The card a subscription's invoices are charged to (wins over the customer's)."""
        with stripe_call(
            "subscriptions.set_default",
            subscription=subscription_id,
            payment_method=payment_method_id,
        ):
            sub = self._v1.subscriptions.update(
                subscription_id,
                {"default_payment_method": payment_method_id},
                _options(idempotency_key),
            )
        return conv.subscription_info(sub)

    def update_customer(
        self, customer_id: str, *, name: str | None, email: str | None, idempotency_key: str
    ) -> CustomerInfo:
        """Change a customer's name and/or e-mail (only those given)."""
        params: CustomerUpdateParams = {}
        if name is not None:
            params["name"] = name
        if email is not None:
            params["email"] = email
        with stripe_call("customers.update", customer=customer_id):
            customer = self._v1.customers.update(customer_id, params, _options(idempotency_key))
        return conv.customer_info(customer)
