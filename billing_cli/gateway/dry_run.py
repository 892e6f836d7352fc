"""``DryRunGateway``: the real code path with every Stripe write held back.

``--dry-run`` must read real state and show every write it would make while making none
(docs/architecture.md, Behaviour rules). Rather than an ``if dry_run`` in every service, the
service is handed this wrapper: reads go to the real gateway, writes are recorded in
:attr:`DryRunGateway.planned` and answered with a plausible synthetic object (ids such as
``"(new price)"``, a subscription ``trialing`` when a trial was asked for) so the service
carries on exactly as it would for real.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from billing_cli.errors import Conflict
from billing_cli.gateway.protocol import Gateway
from billing_cli.gateway.support_types import (
    InvoiceInfo,
    PaymentRecord,
    RefundInfo,
    RefundReason,
)
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


@dataclass(frozen=True)
class PlannedWrite:
    """One write a dry run would have sent; ``params`` never holds the idempotency key."""

    operation: str
    target: str
    params: dict[str, object] = field(default_factory=dict)


def _is_synthetic(object_id: str) -> bool:
    return object_id.startswith("(")


class DryRunGateway(Gateway):
    """Reads pass through to ``inner``; writes are planned, not sent."""

    def __init__(self, inner: Gateway, *, now: datetime | None = None) -> None:
        self.inner = inner
        self.planned: list[PlannedWrite] = []
        self._now = now
        self._subscriptions: dict[str, SubscriptionInfo] = {}

    def _plan(self, operation: str, target: str, **params: object) -> None:
        self.planned.append(PlannedWrite(operation, target, dict(params)))

    def _clock(self) -> datetime:
        return self._now or datetime.now(UTC).replace(microsecond=0)

    # -- reads: straight through ---------------------------------------------------------------

    def list_products(self) -> list[ProductInfo]:
        return self.inner.list_products()

    def list_prices(self) -> list[PriceInfo]:
        return self.inner.list_prices()

    def retrieve_customer(self, customer_id: str) -> CustomerInfo:
        return self.inner.retrieve_customer(customer_id)

    def list_customers(self, *, email: str | None = None) -> list[CustomerInfo]:
        return self.inner.list_customers(email=email)

    def list_payment_methods(self, customer_id: str) -> list[PaymentMethodInfo]:
        if _is_synthetic(customer_id):
            return []
        return self.inner.list_payment_methods(customer_id)

    def retrieve_subscription(self, subscription_id: str) -> SubscriptionInfo:
        if subscription_id in self._subscriptions:
            return self._subscriptions[subscription_id]
        return self.inner.retrieve_subscription(subscription_id)

    def list_subscriptions(self, *, customer_id: str) -> list[SubscriptionInfo]:
        if _is_synthetic(customer_id):
            return [s for s in self._subscriptions.values() if s.customer_id == customer_id]
        return self.inner.list_subscriptions(customer_id=customer_id)

    def list_payments(self, *, customer_id: str) -> list[PaymentInfo]:
        if _is_synthetic(customer_id):
            return []
        return self.inner.list_payments(customer_id=customer_id)

    def retrieve_price(self, price_id: str) -> PriceInfo:
        return self.inner.retrieve_price(price_id)

    def list_all_subscriptions(self) -> list[SubscriptionInfo]:
        return self.inner.list_all_subscriptions()

    def list_subscriptions_for_price(self, price_id: str) -> list[SubscriptionInfo]:
        return self.inner.list_subscriptions_for_price(price_id)

    def preview_price_change(
        self,
        subscription_id: str,
        *,
        item_id: str,
        price_id: str,
        proration_behavior: ProrationBehavior,
        proration_date: int | None,
    ) -> InvoicePreview:
        return self.inner.preview_price_change(
            subscription_id,
            item_id=item_id,
            price_id=price_id,
            proration_behavior=proration_behavior,
            proration_date=proration_date,
        )

    def preview_subscription_invoice(
        self, subscription_id: str, change: SubscriptionPreview
    ) -> InvoicePreview:
        return self.inner.preview_subscription_invoice(subscription_id, change)

    def list_coupons(self) -> list[CouponInfo]:
        return self.inner.list_coupons()

    def retrieve_coupon(self, coupon_id: str) -> CouponInfo:
        return self.inner.retrieve_coupon(coupon_id)

    def subscription_discounts(self, subscription_id: str) -> tuple[DiscountInfo, ...]:
        if _is_synthetic(subscription_id):
            return ()
        return self.inner.subscription_discounts(subscription_id)

    def list_balance_transactions(self, customer_id: str) -> list[BalanceTransactionInfo]:
        if _is_synthetic(customer_id):
            return []
        return self.inner.list_balance_transactions(customer_id)

    def list_events(
        self,
        *,
        types: Sequence[str] = (),
        created_gte: int | None = None,
        created_lte: int | None = None,
        undelivered: bool = False,
    ) -> list[dict[str, Any]]:
        return self.inner.list_events(
            types=types, created_gte=created_gte, created_lte=created_lte, undelivered=undelivered
        )

    def retrieve_event(self, event_id: str) -> dict[str, Any]:
        return self.inner.retrieve_event(event_id)

    def pinned_api_version(self) -> str:
        return self.inner.pinned_api_version()

    def account_mode(self) -> AccountMode:
        return self.inner.account_mode()

    def list_webhook_endpoints(self) -> list[WebhookEndpointInfo]:
        return self.inner.list_webhook_endpoints()

    # -- writes: planned -------------------------------------------------------------------------

    def create_product(
        self, *, name: str, metadata: Mapping[str, str], idempotency_key: str
    ) -> ProductInfo:
        self._plan("create_product", "(new product)", name=name, metadata=dict(metadata))
        return ProductInfo("(new product)", name, True, dict(metadata))

    def update_product(
        self,
        product_id: str,
        *,
        name: str | None = None,
        active: bool | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str,
    ) -> ProductInfo:
        changes: dict[str, object] = {"name": name, "active": active}
        if metadata is not None:
            changes["metadata"] = dict(metadata)
        self._plan(
            "update_product", product_id, **{k: v for k, v in changes.items() if v is not None}
        )
        return ProductInfo(
            product_id, name or "", True if active is None else active, dict(metadata or {})
        )

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
        self._plan(
            "create_price",
            "(new price)",
            product=product_id,
            unit_amount=unit_amount,
            currency=currency,
            interval=interval,
            interval_count=interval_count,
            lookup_key=lookup_key,
            transfer_lookup_key=transfer_lookup_key,
            metadata=dict(metadata),
        )
        count = interval_count if interval is not None else None
        return PriceInfo(
            "(new price)",
            product_id,
            unit_amount,
            currency,
            interval,
            count,
            True,
            lookup_key,
            dict(metadata),
        )

    def archive_price(self, price_id: str, *, idempotency_key: str) -> PriceInfo:
        self._plan("archive_price", price_id, active=False)
        return PriceInfo(price_id, "", None, "", None, None, False, None, {})

    def create_customer(
        self, *, email: str, name: str, metadata: Mapping[str, str], idempotency_key: str
    ) -> CustomerInfo:
        self._plan(
            "create_customer", "(new customer)", email=email, name=name, metadata=dict(metadata)
        )
        return CustomerInfo("(new customer)", email, name, dict(metadata), None)

    def delete_customer(self, customer_id: str, *, idempotency_key: str) -> CustomerInfo:
        self._plan("delete_customer", customer_id)
        return CustomerInfo(customer_id, None, None, {}, None, deleted=True)

    def attach_payment_method(
        self, payment_method_id: str, *, customer_id: str, idempotency_key: str
    ) -> PaymentMethodInfo:
        self._plan("attach_payment_method", payment_method_id, customer=customer_id)
        return PaymentMethodInfo(payment_method_id, "card", None, None, None)

    def set_default_payment_method(
        self, customer_id: str, payment_method_id: str, *, idempotency_key: str
    ) -> CustomerInfo:
        self._plan("set_default_payment_method", customer_id, payment_method=payment_method_id)
        if _is_synthetic(customer_id):
            return CustomerInfo(customer_id, None, None, {}, payment_method_id)
        current = self.inner.retrieve_customer(customer_id)
        return replace(current, default_payment_method=payment_method_id)

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
        self._plan(
            "create_subscription",
            customer_id,
            price=price_id,
            trial_days=trial_days,
            default_payment_method=default_payment_method,
            metadata=dict(metadata),
        )
        now = self._clock()
        trial_end = now + timedelta(days=trial_days) if trial_days else None
        sub = SubscriptionInfo(
            id="(new subscription)",
            customer_id=customer_id,
            status="trialing" if trial_end else "active",
            price_id=price_id,
            item_id="(new subscription item)",
            current_period_start=now,
            current_period_end=trial_end,
            trial_end=trial_end,
            cancel_at_period_end=False,
            canceled_at=None,
            latest_invoice_id=None if trial_end else "(new invoice)",
            created=now,
        )
        self._subscriptions[sub.id] = sub
        return sub

    def _update_subscription(self, subscription_id: str, **changes: Any) -> SubscriptionInfo:
        updated = replace(self.retrieve_subscription(subscription_id), **changes)
        if _is_synthetic(subscription_id):
            self._subscriptions[subscription_id] = updated
        return updated

    def change_subscription_price(
        self,
        subscription_id: str,
        *,
        item_id: str,
        price_id: str,
        proration_behavior: ProrationBehavior,
        idempotency_key: str,
    ) -> SubscriptionInfo:
        self._plan(
            "change_subscription_price",
            subscription_id,
            item=item_id,
            price=price_id,
            proration_behavior=proration_behavior,
        )
        return self._update_subscription(subscription_id, price_id=price_id)

    def set_cancel_at_period_end(
        self, subscription_id: str, value: bool, *, idempotency_key: str
    ) -> SubscriptionInfo:
        self._plan("set_cancel_at_period_end", subscription_id, cancel_at_period_end=value)
        return self._update_subscription(subscription_id, cancel_at_period_end=value)

    def cancel_subscription_now(
        self, subscription_id: str, *, idempotency_key: str
    ) -> SubscriptionInfo:
        self._plan("cancel_subscription_now", subscription_id)
        return self._update_subscription(
            subscription_id, status="canceled", canceled_at=self._clock()
        )

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
        method = payment_method
        if method is None and not _is_synthetic(customer_id):
            # Same check, same error as the real run: a dry run must fail where the run would.
            method = self.inner.retrieve_customer(customer_id).default_payment_method
            if not method:
                raise Conflict(
                    f"customer {customer_id} has no default payment method; "
                    "attach one or name a payment method"
                )
        self._plan(
            "create_payment",
            customer_id,
            amount=amount,
            currency=currency,
            description=description,
            payment_method=method,
        )
        return PaymentInfo("(new payment)", amount, currency, "not sent", description)

    def create_webhook_endpoint(
        self,
        *,
        url: str,
        enabled_events: Sequence[str],
        api_version: str,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> WebhookEndpointInfo:
        self._plan(
            "create_webhook_endpoint",
            "(new webhook endpoint)",
            url=url,
            enabled_events=list(enabled_events),
            api_version=api_version,
            metadata=dict(metadata),
        )
        # No secret: Stripe makes one only for a real endpoint.
        return WebhookEndpointInfo(
            "(new webhook endpoint)",
            url,
            tuple(enabled_events),
            "enabled",
            api_version,
            metadata=dict(metadata),
        )

    def update_webhook_endpoint(
        self,
        endpoint_id: str,
        *,
        enabled_events: Sequence[str],
        disabled: bool,
        idempotency_key: str,
    ) -> WebhookEndpointInfo:
        self._plan(
            "update_webhook_endpoint",
            endpoint_id,
            enabled_events=list(enabled_events),
            disabled=disabled,
        )
        current = next(
            (e for e in self.inner.list_webhook_endpoints() if e.id == endpoint_id), None
        )
        status = "disabled" if disabled else "enabled"
        if current is None:
            return WebhookEndpointInfo(endpoint_id, "", tuple(enabled_events), status, None)
        return replace(current, enabled_events=tuple(enabled_events), status=status)

    def set_webhook_endpoint_disabled(
        self, endpoint_id: str, *, disabled: bool, idempotency_key: str
    ) -> WebhookEndpointInfo:
        self._plan("set_webhook_endpoint_disabled", endpoint_id, disabled=disabled)
        current = next(
            (e for e in self.inner.list_webhook_endpoints() if e.id == endpoint_id), None
        )
        status = "disabled" if disabled else "enabled"
        if current is None:
            return WebhookEndpointInfo(endpoint_id, "", (), status, None)
        return replace(current, status=status)

    def delete_webhook_endpoint(self, endpoint_id: str) -> None:
        self._plan("delete_webhook_endpoint", endpoint_id)

    # -- the support desk: reads pass through, writes are planned ----------------------------

    def list_invoices(
        self,
        *,
        customer_id: str,
        status: str | None = None,
        limit: int = 20,
        created_gte: int | None = None,
    ) -> list[InvoiceInfo]:
        if _is_synthetic(customer_id):
            return []
        return self.inner.list_invoices(
            customer_id=customer_id, status=status, limit=limit, created_gte=created_gte
        )

    def retrieve_invoice(self, invoice_id: str) -> InvoiceInfo:
        return self.inner.retrieve_invoice(invoice_id)

    def list_all_invoices(
        self, *, status: str | None = None, created_gte: int | None = None, limit: int = 100
    ) -> list[InvoiceInfo]:
        return self.inner.list_all_invoices(status=status, created_gte=created_gte, limit=limit)

    def list_payment_history(
        self, *, customer_id: str, limit: int = 20, created_gte: int | None = None
    ) -> list[PaymentRecord]:
        if _is_synthetic(customer_id):
            return []
        return self.inner.list_payment_history(
            customer_id=customer_id, limit=limit, created_gte=created_gte
        )

    def retrieve_payment(self, payment_id: str) -> PaymentRecord:
        return self.inner.retrieve_payment(payment_id)

    def list_refunds(self, *, payment_id: str) -> list[RefundInfo]:
        return self.inner.list_refunds(payment_id=payment_id)

    def pay_invoice(
        self, invoice_id: str, *, payment_method: str | None, idempotency_key: str
    ) -> InvoiceInfo:
        self._plan("pay_invoice", invoice_id, payment_method=payment_method)
        # Answered as if the card were accepted, so the dry run shows what payment would change
        # locally; the service says the card may still decline.
        current = self.inner.retrieve_invoice(invoice_id)
        return replace(
            current,
            status="paid",
            amount_paid=current.amount_due,
            amount_remaining=0,
            next_payment_attempt=None,
        )

    def void_invoice(self, invoice_id: str, *, idempotency_key: str) -> InvoiceInfo:
        self._plan("void_invoice", invoice_id)
        current = self.inner.retrieve_invoice(invoice_id)
        return replace(current, status="void", next_payment_attempt=None)

    def mark_invoice_uncollectible(self, invoice_id: str, *, idempotency_key: str) -> InvoiceInfo:
        self._plan("mark_invoice_uncollectible", invoice_id)
        current = self.inner.retrieve_invoice(invoice_id)
        return replace(current, status="uncollectible", next_payment_attempt=None)

    def create_refund(
        self,
        *,
        payment_id: str,
        amount: int | None,
        reason: RefundReason | None,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> RefundInfo:
        payment = self.inner.retrieve_payment(payment_id)
        refunded = payment.refundable if amount is None else amount
        self._plan(
            "create_refund", payment_id, amount=refunded, reason=reason, metadata=dict(metadata)
        )
        return RefundInfo(
            "(new refund)",
            refunded,
            payment.currency,
            "not sent",
            reason,
            payment.charge_id,
            payment_id if payment_id.startswith("pi_") else None,
            dict(metadata),
        )

    def detach_payment_method(
        self, payment_method_id: str, *, idempotency_key: str
    ) -> PaymentMethodInfo:
        self._plan("detach_payment_method", payment_method_id)
        return PaymentMethodInfo(payment_method_id, "card", None, None, None)

    def set_subscription_payment_method(
        self, subscription_id: str, payment_method_id: str, *, idempotency_key: str
    ) -> SubscriptionInfo:
        self._plan(
            "set_subscription_payment_method", subscription_id, payment_method=payment_method_id
        )
        # Remembered, so the rest of the dry run reads the card that would pay.
        changed = replace(
            self.retrieve_subscription(subscription_id), default_payment_method=payment_method_id
        )
        self._subscriptions[subscription_id] = changed
        return changed

    def update_customer(
        self, customer_id: str, *, name: str | None, email: str | None, idempotency_key: str
    ) -> CustomerInfo:
        changes = {k: v for k, v in {"name": name, "email": email}.items() if v is not None}
        self._plan("update_customer", customer_id, **changes)
        if _is_synthetic(customer_id):
            return CustomerInfo(customer_id, email, name, {}, None)
        current = self.inner.retrieve_customer(customer_id)
        return replace(current, name=name or current.name, email=email or current.email)

    def set_trial_end(
        self, subscription_id: str, trial_end: datetime | None, *, idempotency_key: str
    ) -> SubscriptionInfo:
        when = "now" if trial_end is None else int(trial_end.timestamp())
        self._plan("set_trial_end", subscription_id, trial_end=when, proration_behavior="none")
        if trial_end is None:
            now = self._clock()
            current = self.retrieve_subscription(subscription_id)
            period = current.current_period_end
            if current.current_period_start and current.current_period_end:
                period = now + (current.current_period_end - current.current_period_start)
            return self._update_subscription(
                subscription_id,
                status="active",
                trial_end=now,
                current_period_start=now,
                current_period_end=period,
            )
        return self._update_subscription(
            subscription_id, trial_end=trial_end, current_period_end=trial_end
        )

    def set_pause_collection(
        self,
        subscription_id: str,
        behavior: PauseBehavior | None,
        resumes_at: datetime | None,
        *,
        idempotency_key: str,
    ) -> SubscriptionInfo:
        if behavior is None:
            self._plan("set_pause_collection", subscription_id, pause_collection="")
        else:
            params: dict[str, object] = {"behavior": behavior}
            if resumes_at is not None:
                params["resumes_at"] = int(resumes_at.timestamp())
            self._plan("set_pause_collection", subscription_id, pause_collection=params)
        return self._update_subscription(
            subscription_id,
            pause_behavior=behavior,
            pause_resumes_at=resumes_at if behavior else None,
        )

    def set_subscription_quantity(
        self,
        subscription_id: str,
        *,
        item_id: str,
        quantity: int,
        proration_behavior: ProrationBehavior,
        idempotency_key: str,
    ) -> SubscriptionInfo:
        self._plan(
            "set_subscription_quantity",
            subscription_id,
            item=item_id,
            quantity=quantity,
            proration_behavior=proration_behavior,
        )
        return self._update_subscription(subscription_id, quantity=quantity)

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
        params = {
            "percent_off": percent_off,
            "amount_off": amount_off,
            "currency": currency,
            "duration": duration,
            "duration_in_months": duration_in_months,
        }
        self._plan(
            "create_coupon",
            coupon_id,
            **{k: v for k, v in params.items() if v is not None},
            metadata=dict(metadata),
        )
        return CouponInfo(
            coupon_id,
            None,
            percent_off,
            amount_off,
            currency,
            duration,
            duration_in_months,
            True,
            0,
            dict(metadata),
        )

    def delete_coupon(self, coupon_id: str, *, idempotency_key: str) -> DeletedObject:
        self._plan("delete_coupon", coupon_id)
        return DeletedObject(id=coupon_id, object="coupon")

    def set_subscription_discount(
        self, subscription_id: str, coupon_id: str | None, *, idempotency_key: str
    ) -> SubscriptionInfo:
        self._plan(
            "set_subscription_discount",
            subscription_id,
            discounts="" if coupon_id is None else [{"coupon": coupon_id}],
        )
        return self.retrieve_subscription(subscription_id)

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
        self._plan(
            "create_balance_transaction",
            customer_id,
            amount=amount,
            currency=currency,
            description=description,
            metadata=dict(metadata),
        )
        balance = (
            0 if _is_synthetic(customer_id) else self.inner.retrieve_customer(customer_id).balance
        )
        return BalanceTransactionInfo(
            "(new balance transaction)", amount, currency, balance + amount, description
        )
