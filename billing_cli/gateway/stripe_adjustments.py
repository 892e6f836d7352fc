"""Stripe writes for the day-to-day subscription adjustments: trial end and paused collection.

A mixin of :class:`.stripe_gateway.StripeGateway`, kept apart so that the adjustments grow here
without touching the lifecycle writes. Same rules as there: typed parameters, the caller's
idempotency key, the answer converted before it leaves, every call inside
:func:`.calls.stripe_call`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from billing_cli.gateway import converters as conv
from billing_cli.gateway.calls import stripe_call
from billing_cli.gateway.types import PauseBehavior, ProrationBehavior, SubscriptionInfo

if TYPE_CHECKING:
    from stripe._v1_services import V1Services
    from stripe.params import SubscriptionUpdateParams


class AdjustmentWrites:
    """Writes over ``self._v1`` (set by :class:`.stripe_reads.StripeReads`)."""

    _v1: V1Services  # provided by StripeReads

    def set_trial_end(
        self, subscription_id: str, trial_end: datetime | None, *, idempotency_key: str
    ) -> SubscriptionInfo:
        """``trial_end`` = a timestamp or ``now``; ``proration_behavior=none`` so that moving
        the trial never bills a proration of its own (Stripe's advice for trial changes)."""
        params: SubscriptionUpdateParams = {
            "trial_end": "now" if trial_end is None else int(trial_end.timestamp()),
            "proration_behavior": "none",
        }
        with stripe_call("subscriptions.trial_end", subscription=subscription_id):
            sub = self._v1.subscriptions.update(
                subscription_id, params, {"idempotency_key": idempotency_key}
            )
        return conv.subscription_info(sub)

    def set_pause_collection(
        self,
        subscription_id: str,
        behavior: PauseBehavior | None,
        resumes_at: datetime | None,
        *,
        idempotency_key: str,
    ) -> SubscriptionInfo:
        """``pause_collection`` set, or cleared with ``""`` (Stripe's way to resume)."""
        params: SubscriptionUpdateParams
        if behavior is None:
            params = {"pause_collection": ""}
        elif resumes_at is None:
            params = {"pause_collection": {"behavior": behavior}}
        else:
            params = {
                "pause_collection": {
                    "behavior": behavior,
                    "resumes_at": int(resumes_at.timestamp()),
                }
            }
        with stripe_call("subscriptions.pause_collection", subscription=subscription_id):
            sub = self._v1.subscriptions.update(
                subscription_id, params, {"idempotency_key": idempotency_key}
            )
        return conv.subscription_info(sub)

    def set_subscription_quantity(
        self,
        subscription_id: str,
        *,
        item_id: str,
        quantity: int,
        proration_behavior: ProrationBehavior,
        idempotency_key: str,
    ) -> SubscriptionInfo:
        """The item's quantity in place (same item, same price)."""
        params: SubscriptionUpdateParams = {
            "items": [{"id": item_id, "quantity": quantity}],
            "proration_behavior": proration_behavior,
        }
        with stripe_call("subscriptions.quantity", subscription=subscription_id):
            sub = self._v1.subscriptions.update(
                subscription_id, params, {"idempotency_key": idempotency_key}
            )
        return conv.subscription_info(sub)
