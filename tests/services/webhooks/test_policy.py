"""The policy's keys and the snapshot rule the CLI shares with the engine."""

from __future__ import annotations

from billing_cli.models import TenantSubscription
from billing_cli.services.webhooks import policy

T0 = 1_767_225_600


def _event_key(event_type: str, created: int, status: str = "active", sub: int = T0) -> str:
    return policy.subscription_key(
        subscription_created=sub,
        event_id="evt_1",
        created=created,
        event_type=event_type,
        status=status,
    )


def test_a_newer_subscription_outranks_an_older_ones_deletion() -> None:
    deletion = _event_key("customer.subscription.deleted", T0 + 500, "canceled")
    newer = _event_key("customer.subscription.created", T0 + 100, sub=T0 + 100)
    assert newer > deletion
    assert _event_key("customer.subscription.updated", T0 + 900) < deletion


def test_a_local_write_ranks_like_an_event_of_its_second_and_wins_the_tie() -> None:
    local = policy.local_snapshot_key(subscription_created=T0, status="active", at=T0 + 60)
    assert local > _event_key("customer.subscription.updated", T0 + 60)
    assert local < _event_key("customer.subscription.deleted", T0 + 59, "canceled")
    assert local < _event_key("customer.subscription.updated", T0 + 61)
    canceled = policy.local_snapshot_key(subscription_created=T0, status="canceled", at=T0 + 60)
    assert canceled > _event_key("customer.subscription.updated", T0 + 3_600)


def test_apply_local_snapshot_switches_subscriptions_and_recomputes_the_status() -> None:
    row = TenantSubscription(tenant_id=1)
    old = policy.local_snapshot_key(subscription_created=T0, status="past_due", at=T0 + 10)
    assert policy.apply_local_snapshot(
        row,
        subscription_id="sub_a",
        subscription_created=T0,
        status="past_due",
        price_id="price_1",
        key=old,
    )
    row.payment_event_key = policy.payment_key(
        subscription_id="sub_a",
        event_id="evt_f",
        created=T0 + 20,
        invoice_created=T0,
        invoice_period_end=T0,
        paid=False,
        attempt_count=3,
    )
    policy.refresh(row)
    assert (row.status, row.failed_payment_attempts) == ("past_due", 3)

    new = policy.local_snapshot_key(subscription_created=T0 + 50, status="active", at=T0 + 50)
    assert policy.apply_local_snapshot(
        row,
        subscription_id="sub_b",
        subscription_created=T0 + 50,
        status="active",
        price_id="price_2",
        key=new,
    )
    assert (row.stripe_subscription_id, row.stripe_price_id) == ("sub_b", "price_2")
    assert (row.status, row.failed_payment_attempts) == ("active", 0)

    stale = policy.local_snapshot_key(subscription_created=T0, status="active", at=T0 + 99)
    assert not policy.apply_local_snapshot(
        row,
        subscription_id="sub_a",
        subscription_created=T0,
        status="active",
        price_id="price_1",
        key=stale,
    )
    assert (row.stripe_subscription_id, row.subscription_event_key) == ("sub_b", new)


def test_two_local_writes_of_one_second_keep_their_order() -> None:
    first = policy.local_snapshot_key(subscription_created=T0, status="trialing", at=T0 + 5.25)
    second = policy.local_snapshot_key(subscription_created=T0, status="active", at=T0 + 5.75)
    assert policy.is_newer(second, first)
    assert not policy.is_newer(first, second)
