"""Issue 19, point 4: ``subs extend-trial`` withdraws the pending trial notice (Stripe sends a new
``trial_will_end`` three days before the new end), against the sandbox through the real CLI."""

from __future__ import annotations

import time

import pytest

from billing_cli.gateway import Gateway
from billing_cli.repository import Database
from billing_cli.services.webhooks import WebhookEngine
from tests import events as ev
from tests.cli.conftest import Billing
from tests.factories import add_synced_plan, add_tenant, table_snapshot

pytestmark = pytest.mark.sandbox


@pytest.fixture
def billing() -> Billing:
    return Billing()


def test_extend_trial_withdraws_the_pending_trial_notice(
    billing: Billing, db_env: Database, gateway: Gateway
) -> None:
    add_synced_plan(db_env, gateway, "starter", amount=1000)
    add_tenant(db_env, "acme")
    subscribe = ("subs", "create", "acme", "--plan", "starter", "--payment-method", "pm_card_visa")
    assert billing(*subscribe, "--trial-days", "14").exit_code == 0
    sub = billing.json("subs", "show", "acme")["stripe"]
    info = gateway.retrieve_subscription(sub["stripe_subscription_id"])
    trial_end = info.trial_end
    assert trial_end is not None and info.price_id is not None
    notice = ev.subscription_event(
        "customer.subscription.trial_will_end",
        created=int(time.time()) - 60,  # before the extension, as Stripe's would be
        subscription_id=sub["stripe_subscription_id"],
        customer_id=sub["stripe_customer_id"],
        status="trialing",
        price_id=info.price_id,
        trial_end=int(trial_end.timestamp()),
    )
    engine = WebhookEngine(db_env, live_mode=False, max_failed_attempts=3)
    assert engine.process(notice, source="endpoint").status == "processed"
    assert billing.json("notifications", "list")[0]["verdict"] == "will send"

    before = table_snapshot(db_env)
    preview = billing.json("subs", "extend-trial", "acme", "--days", "7", "--dry-run")
    assert any("would withdraw trial_will_end" in s for s in preview["side_effects"])
    assert table_snapshot(db_env) == before

    extended = billing.json("subs", "extend-trial", "acme", "--days", "7")
    new_end = extended["message"].rsplit(" to ", 1)[1][:10]  # Stripe's new trial end
    assert any("withdrew trial_will_end" in s for s in extended["side_effects"])
    [row] = billing.json("notifications", "list")
    assert (row["state"], row["withdrawn_reason"]) == (
        "withdrawn",
        f"the trial was extended to {new_end}",
    )
