"""The Subscription and SubscriptionItem resources the sandbox owns, in the current API shape.

localstripe's subscriptions speak the 2017 API; these replace them (stored in its store under
the same keys, so its generic routes and ``Customer.subscriptions`` see them): items carry
prices and the billing period (``current_period_start``/``end`` on the items), trials,
``default_payment_method``, ``cancel_at_period_end``. Their routes and the rules for creating
and changing them are in :mod:`.subscriptions_api`; how they bill, in :mod:`.billing_cycle`.
"""

from __future__ import annotations

from stripe_sandbox.common import JSON, _bad, _expand_all, _get, _Resource, add_interval
from stripe_sandbox.prices import Price


class SubscriptionItem(_Resource):
    object = "subscription_item"
    _prefix = "si_"

    def __init__(
        self, subscription: Subscription, price: Price, quantity: int, metadata: dict[str, str]
    ) -> None:
        super().__init__()
        self._subscription = subscription
        self.price = price
        self.quantity = quantity
        self.metadata = metadata

    @property
    def _amount(self) -> int:
        return self.price.unit_amount * self.quantity

    def _export(self, expand: list[str] | None = None) -> JSON:
        start, end = self._subscription._period
        interval, count = self.price._interval
        return {
            "id": self.id,
            "object": "subscription_item",
            "billing_thresholds": None,
            "created": self.created,
            "current_period_end": end,
            "current_period_start": start,
            "discounts": [],
            "metadata": dict(self.metadata),
            # Stripe still renders the legacy plan view of the price on items.
            "plan": {
                "id": self.price.id,
                "object": "plan",
                "active": self.price.active,
                "amount": self.price.unit_amount,
                "amount_decimal": str(self.price.unit_amount),
                "billing_scheme": "per_unit",
                "created": self.price.created,
                "currency": self.price.currency,
                "interval": interval,
                "interval_count": count,
                "livemode": False,
                "metadata": dict(self.price.metadata),
                "nickname": self.price.nickname,
                "product": self.price.product,
                "usage_type": "licensed",
            },
            "price": self.price._export(),
            "quantity": self.quantity,
            "subscription": self._subscription.id,
            "tax_rates": [],
        }


class Subscription(_Resource):
    object = "subscription"
    _prefix = "sub_"

    def __init__(self, customer: str, currency: str) -> None:
        super().__init__()
        self.customer = customer
        self.currency = currency
        self.status = "incomplete"
        self.metadata: dict[str, str] = {}
        self.description: str | None = None
        self.default_payment_method: str | None = None
        self.cancel_at_period_end = False
        self.cancel_at: int | None = None
        self.canceled_at: int | None = None
        self.ended_at: int | None = None
        self.cancellation_details: JSON = {"comment": None, "feedback": None, "reason": None}
        self.trial_start: int | None = None
        self.trial_end: int | None = None
        self.start_date = self.created
        self.billing_cycle_anchor = self.created
        self.latest_invoice: str | None = None
        self._items: list[SubscriptionItem] = []
        self._period: tuple[int, int] = (self.created, self.created)
        self._pending_lines: list[JSON] = []
        self._trial_will_end_sent = False

    @property
    def _interval(self) -> tuple[str, int]:
        return self._items[0].price._interval

    def _next_period(self, start: int) -> tuple[int, int]:
        interval, count = self._interval
        return start, add_interval(start, interval, count)

    def _export(self, expand: list[str] | None = None) -> JSON:
        items = [item._export() for item in self._items]
        obj: JSON = {
            "id": self.id,
            "object": "subscription",
            "application": None,
            "application_fee_percent": None,
            "automatic_tax": {"enabled": False, "liability": None, "disabled_reason": None},
            "billing_cycle_anchor": self.billing_cycle_anchor,
            "billing_cycle_anchor_config": None,
            "cancel_at": self.cancel_at,
            "cancel_at_period_end": self.cancel_at_period_end,
            "canceled_at": self.canceled_at,
            "cancellation_details": dict(self.cancellation_details),
            "collection_method": "charge_automatically",
            "created": self.created,
            "currency": self.currency,
            "customer": self.customer,
            "days_until_due": None,
            "default_payment_method": self.default_payment_method,
            "default_source": None,
            "default_tax_rates": [],
            "description": self.description,
            "discounts": [],
            "ended_at": self.ended_at,
            "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
            "items": {
                "object": "list",
                "data": items,
                "has_more": False,
                "total_count": len(items),
                "url": f"/v1/subscription_items?subscription={self.id}",
            },
            "latest_invoice": self.latest_invoice,
            "livemode": False,
            "metadata": dict(self.metadata),
            "next_pending_invoice_item_invoice": None,
            "on_behalf_of": None,
            "pause_collection": None,
            "payment_settings": {
                "payment_method_options": None,
                "payment_method_types": None,
                "save_default_payment_method": "off",
            },
            "pending_invoice_item_interval": None,
            "pending_setup_intent": None,
            "pending_update": None,
            "schedule": None,
            "start_date": self.start_date,
            "status": self.status,
            "test_clock": None,
            "transfer_data": None,
            "trial_end": self.trial_end,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": self.trial_start,
        }
        _expand_all(obj, expand)
        return obj


def _subscription(sub_id: str) -> Subscription:
    sub = _get("subscription", sub_id)
    if not isinstance(sub, Subscription):
        raise _bad("subscription", f"{sub_id} predates the sandbox extensions.")
    return sub
