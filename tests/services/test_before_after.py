"""Issue 18, point 4: a change's before/after compares with the state read when the command
started, even when a webhook wrote the row between Stripe's answer and the command's apply.

A wrapping gateway delivers the webhook right after Stripe answered (the race the endpoint
wins in production); the sandbox is real Stripe-shaped HTTP. SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest

from billing_cli.cli.render import changed_fields
from billing_cli.gateway import Gateway, SubscriptionInfo
from billing_cli.repository import Database
from billing_cli.services.subscriptions import lifecycle as subscriptions
from billing_cli.services.webhooks import WebhookEngine
from tests import events as ev
from tests.factories import add_synced_plan, add_tenant, invocation

pytestmark = pytest.mark.sandbox


class WebhookWinsTheRace:
    """The real gateway; after a subscription write, the write's own webhook is applied first."""

    def __init__(self, real: Gateway, db: Database) -> None:
        self._real = real
        self._engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def _deliver(self, info: SubscriptionInfo, event_type: str) -> None:
        event = ev.subscription_event(
            event_type,
            created=int(info.created.timestamp()) + 1,
            subscription_id=info.id,
            subscription_created=int(info.created.timestamp()),
            customer_id=info.customer_id,
            status=info.status,
            price_id=info.price_id or "",
            trial_end=int(info.trial_end.timestamp()) if info.trial_end else None,
            cancel_at_period_end=info.cancel_at_period_end,
            tenant="acme",
        )
        assert self._engine.process(event, source="endpoint").status == "processed"

    def create_subscription(self, **kwargs: Any) -> SubscriptionInfo:
        info = self._real.create_subscription(**kwargs)
        self._deliver(info, "customer.subscription.created")
        return info

    def set_cancel_at_period_end(self, subscription_id: str, value: bool, **kwargs: Any) -> Any:
        info = self._real.set_cancel_at_period_end(subscription_id, value, **kwargs)
        self._deliver(info, "customer.subscription.updated")
        return info


def test_subs_create_compares_with_the_row_before_the_command(
    db: Database, gateway: Gateway
) -> None:
    add_synced_plan(db, gateway, "starter", amount=1000)
    add_tenant(db, "acme")
    change = subscriptions.create_subscription(
        db,
        WebhookWinsTheRace(gateway, db),  # type: ignore[arg-type]
        invocation=invocation(),
        tenant_slug="acme",
        plan_slug="starter",
        payment_method="pm_card_visa",
        trial_days=14,
    )
    assert change.before is not None and change.after is not None
    assert (change.before["status"], change.after["status"]) == (None, "trialing")
    moved = {field for field, _, _ in changed_fields(change.before, change.after)}
    assert {"stripe_subscription_id", "stripe_customer_id", "status", "plan"} <= moved


def test_subs_cancel_shows_its_change_when_its_event_came_first(
    db: Database, gateway: Gateway
) -> None:
    add_synced_plan(db, gateway, "starter", amount=1000)
    add_tenant(db, "acme")
    subscriptions.create_subscription(
        db,
        gateway,
        invocation=invocation(),
        tenant_slug="acme",
        plan_slug="starter",
        payment_method="pm_card_visa",
    )
    change = subscriptions.cancel_subscription(
        db,
        WebhookWinsTheRace(gateway, db),  # type: ignore[arg-type]
        invocation=invocation(),
        tenant_slug="acme",
        now=False,
    )
    assert change.changed
    moved = dict((f, (b, a)) for f, b, a in changed_fields(change.before, change.after))
    assert moved["cancel_at_period_end"] == (False, True)
