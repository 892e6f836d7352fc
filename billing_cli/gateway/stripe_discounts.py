"""Stripe calls for coupons, subscription discounts and customer credit balances.

A mixin of :class:`.stripe_gateway.StripeGateway` (reads and writes together, since they are
about one resource family). Same rules as the rest of the gateway: typed parameters, the
caller's idempotency key on every write, answers converted before they leave, every call inside
:func:`.calls.stripe_call`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from billing_cli.gateway import converters as conv
from billing_cli.gateway.calls import stripe_call
from billing_cli.gateway.types import (
    BalanceTransactionInfo,
    CouponDuration,
    CouponInfo,
    DeletedObject,
    DiscountInfo,
    SubscriptionInfo,
)

if TYPE_CHECKING:
    from stripe._v1_services import V1Services
    from stripe.params import CouponCreateParams, SubscriptionUpdateParams

PAGE_SIZE = 100


class DiscountCalls:
    """Coupons, discounts and balances over ``self._v1`` (set by ``StripeReads``)."""

    _v1: V1Services  # provided by StripeReads

    def list_coupons(self) -> list[CouponInfo]:
        with stripe_call("coupons.list"):
            page = self._v1.coupons.list({"limit": PAGE_SIZE})
            return [conv.coupon_info(c) for c in page.auto_paging_iter()]

    def retrieve_coupon(self, coupon_id: str) -> CouponInfo:
        with stripe_call("coupons.retrieve", coupon=coupon_id):
            return conv.coupon_info(self._v1.coupons.retrieve(coupon_id))

    def subscription_discounts(self, subscription_id: str) -> tuple[DiscountInfo, ...]:
        """``expand[]=discounts``: without it the current API lists only discount ids."""
        with stripe_call("subscriptions.discounts", subscription=subscription_id):
            sub = self._v1.subscriptions.retrieve(subscription_id, {"expand": ["discounts"]})
        return conv.discount_infos(sub)

    def list_balance_transactions(self, customer_id: str) -> list[BalanceTransactionInfo]:
        with stripe_call("customers.balance_transactions.list", customer=customer_id):
            page = self._v1.customers.balance_transactions.list(customer_id, {"limit": PAGE_SIZE})
            return [conv.balance_transaction_info(t) for t in page.auto_paging_iter()]

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
        params: CouponCreateParams = {
            "id": coupon_id,
            "duration": duration,
            "metadata": dict(metadata),
        }
        if percent_off is not None:
            params["percent_off"] = percent_off
        if amount_off is not None and currency is not None:
            params["amount_off"] = amount_off
            params["currency"] = currency
        if duration_in_months is not None:
            params["duration_in_months"] = duration_in_months
        with stripe_call("coupons.create", coupon=coupon_id):
            coupon = self._v1.coupons.create(params, {"idempotency_key": idempotency_key})
        return conv.coupon_info(coupon)

    def delete_coupon(self, coupon_id: str, *, idempotency_key: str) -> DeletedObject:
        """Stripe ignores a key on DELETE; a repeat is safe anyway (it answers 404)."""
        with stripe_call("coupons.delete", coupon=coupon_id):
            gone = self._v1.coupons.delete(coupon_id, options={"idempotency_key": idempotency_key})
        return DeletedObject(id=str(gone.id), object="coupon")

    def set_subscription_discount(
        self, subscription_id: str, coupon_id: str | None, *, idempotency_key: str
    ) -> SubscriptionInfo:
        """``discounts=[{coupon}]`` replaces the discounts; ``discounts=""`` clears them."""
        params: SubscriptionUpdateParams = (
            {"discounts": ""} if coupon_id is None else {"discounts": [{"coupon": coupon_id}]}
        )
        with stripe_call("subscriptions.discount", subscription=subscription_id):
            sub = self._v1.subscriptions.update(
                subscription_id, params, {"idempotency_key": idempotency_key}
            )
        return conv.subscription_info(sub)

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
        with stripe_call("customers.balance_transactions.create", customer=customer_id):
            created = self._v1.customers.balance_transactions.create(
                customer_id,
                {
                    "amount": amount,
                    "currency": currency,
                    "description": description,
                    "metadata": dict(metadata),
                },
                {"idempotency_key": idempotency_key},
            )
        return conv.balance_transaction_info(created)
