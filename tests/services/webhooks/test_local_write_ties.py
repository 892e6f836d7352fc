"""An event of the same second as the CLI's own write is a tie settled by Stripe, not by rank.

``subs upgrade`` (and the other subscription commands) write Stripe's answer to the local row
under a key that ranks like an event of that second. Stripe may emit an event of the same
second *after* that answer (the payment that follows a plan change), so the key cannot say
which is newer: the event's ``previous_attributes`` settle it when they prove the event follows
the write, else the subscription is read from Stripe, else the outcome says it needs a refresh.
"""

from __future__ import annotations

from typing import Any

import pytest

from billing_cli.gateway import SubscriptionInfo
from billing_cli.repository import Database
from billing_cli.repository import subscriptions as subscriptions_repo
from billing_cli.repository import tenants as tenants_repo
from billing_cli.services.subscriptions.updates import apply_subscription
from billing_cli.services.webhooks import WebhookEngine
from billing_cli.services.webhooks.engine import Fetch
from tests import events as ev
from tests.services.webhooks.conftest import PRICE_BASIC, PRICE_PRO, Acme, state
from tests.services.webhooks.lifecycles import stripe_now

START = 1_767_225_600


def _subscription(status: str, price: str, *, created: int, event_id: str) -> dict[str, Any]:
    return ev.subscription_event(
        "customer.subscription.updated",
        event_id=event_id,
        created=created,
        subscription_id="sub_acme",
        subscription_created=START,
        customer_id="cus_acme",
        status=status,
        price_id=price,
        period_start=START,
        period_end=START + 30 * 86_400,
    )


def _cli_write(db: Database, answer: dict[str, Any]) -> int:
    """What ``subs upgrade`` writes from Stripe's answer; the second its key carries."""
    info = stripe_now([answer])("sub_acme")
    with db.transaction() as session:
        tenant = tenants_repo.get_by_slug(session=session, slug="acme")
        assert tenant is not None and tenant.id is not None
        row = subscriptions_repo.for_tenant(session=session, tenant_id=tenant.id)
        assert row is not None
        apply_subscription(session, row, info)
        key = row.subscription_event_key
    assert key is not None
    return int(key.split(":")[2])


def _answer(status: str, price: str) -> dict[str, Any]:
    return _subscription(status, price, created=START, event_id="evt_answer")


def _engine(db: Database, fetch: Fetch | None) -> WebhookEngine:
    return WebhookEngine(db, live_mode=False, max_failed_attempts=3, fetch=fetch)


def test_an_event_of_the_same_second_is_settled_by_stripes_answer(db: Database, acme: Acme) -> None:
    second = _cli_write(db, _answer("active", PRICE_PRO))
    later = _subscription("past_due", PRICE_PRO, created=second, event_id="evt_same_second")
    reads: list[str] = []

    def stripe(subscription_id: str) -> SubscriptionInfo:
        reads.append(subscription_id)
        return stripe_now([later])(subscription_id)  # Stripe: the event is the newer state

    outcome = _engine(db, stripe).process(later, source="endpoint")
    assert outcome.status == "processed" and "settled by Stripe" in outcome.reason
    assert reads == ["sub_acme"]
    assert state(db)["subscription"]["status"] == "past_due"


def test_stripes_answer_may_keep_the_cli_write(db: Database, acme: Acme) -> None:
    second = _cli_write(db, _answer("active", PRICE_PRO))
    older = _subscription("active", PRICE_BASIC, created=second, event_id="evt_before_upgrade")
    outcome = _engine(db, lambda sub: stripe_now([_answer("active", PRICE_PRO)])(sub)).process(
        older, source="endpoint"
    )
    assert "settled by Stripe" in outcome.reason
    assert state(db)["subscription"]["plan"] == "pro"


def test_previous_attributes_that_prove_the_event_follows_the_write_need_no_read(
    db: Database, acme: Acme
) -> None:
    second = _cli_write(db, _answer("active", PRICE_PRO))
    later = _subscription("past_due", PRICE_PRO, created=second, event_id="evt_follows")
    later["data"]["previous_attributes"] = {"status": "active"}
    outcome = _engine(db, None).process(later, source="replay")
    assert "this event follows it" in outcome.reason
    assert state(db)["subscription"]["status"] == "past_due"


def test_without_stripe_the_cli_write_stays_and_the_outcome_says_refresh(
    db: Database, acme: Acme
) -> None:
    second = _cli_write(db, _answer("active", PRICE_PRO))
    tie = _subscription("past_due", PRICE_PRO, created=second, event_id="evt_unknown_order")
    outcome = _engine(db, None).process(tie, source="file")
    assert outcome.reason.startswith("needs refresh") and "subs refresh acme" in outcome.reason
    assert state(db)["subscription"]["status"] == "active"


@pytest.mark.parametrize(("offset", "status"), [(-1, "active"), (1, "past_due")])
def test_events_of_other_seconds_are_ordered_by_their_time_alone(
    db: Database, acme: Acme, offset: int, status: str
) -> None:
    second = _cli_write(db, _answer("active", PRICE_PRO))
    event = _subscription("past_due", PRICE_PRO, created=second + offset, event_id="evt_other")

    def no_read(subscription_id: str) -> SubscriptionInfo:
        raise AssertionError("no tie: Stripe must not be read")

    outcome = _engine(db, no_read).process(event, source="endpoint")
    assert outcome.status == "processed" and "tie" not in outcome.reason
    assert state(db)["subscription"]["status"] == status
