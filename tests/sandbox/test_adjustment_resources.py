"""The sandbox modules added for subscription adjustments: pause_collection, discounts,
customer balances, and previews that reflect them, with the events each emits."""

from __future__ import annotations

import pytest
import stripe

from tests.sandbox.test_sandbox import _customer, _price, _product, _subscribe


def _types(client: stripe.StripeClient, pattern: str) -> list[str]:
    return [e.type for e in client.v1.events.list(params={"type": pattern}).data]


def test_pause_collection_keeps_the_status_and_emits_updated(client: stripe.StripeClient) -> None:
    sub = _subscribe(client, _customer(client).id, _price(client, _product(client).id, 900).id)
    paused = client.v1.subscriptions.update(
        sub.id, params={"pause_collection": {"behavior": "void"}}
    )
    assert paused.status == "active" and paused.pause_collection is not None
    assert paused.pause_collection.behavior == "void"
    updated = client.v1.events.list(params={"type": "customer.subscription.updated"}).data[0]
    assert updated.data.to_dict()["previous_attributes"] == {"pause_collection": None}
    resumed = client.v1.subscriptions.update(sub.id, params={"pause_collection": ""})
    assert resumed.pause_collection is None
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.update(
            sub.id,
            params={"pause_collection": {"behavior": "nap"}},  # type: ignore[typeddict-item]
        )


def test_a_discount_shows_on_the_preview_and_emits_discount_events(
    client: stripe.StripeClient,
) -> None:
    sub = _subscribe(client, _customer(client).id, _price(client, _product(client).id, 1000).id)
    client.v1.coupons.create(
        params={"id": "TEN", "percent_off": 10, "duration": "repeating", "duration_in_months": 2}
    )
    given = client.v1.subscriptions.update(
        sub.id, params={"discounts": [{"coupon": "TEN"}], "expand": ["discounts"]}
    )
    assert given.to_dict()["discounts"][0]["source"]["coupon"]["id"] == "TEN"
    preview = client.v1.invoices.create_preview(params={"subscription": sub.id})
    assert (preview.subtotal, preview.total, preview.amount_due) == (1000, 900, 900)
    client.v1.subscriptions.update(sub.id, params={"discounts": ""})
    assert _types(client, "customer.discount.*") == [
        "customer.discount.deleted",
        "customer.discount.created",
    ]
    with pytest.raises(stripe.InvalidRequestError, match="No such coupon"):
        client.v1.subscriptions.update(sub.id, params={"discounts": [{"coupon": "NOPE"}]})


def test_a_deleted_coupon_s_discount_keeps_running(client: stripe.StripeClient) -> None:
    sub = _subscribe(client, _customer(client).id, _price(client, _product(client).id, 1000).id)
    client.v1.coupons.create(
        params={"id": "GONE5", "amount_off": 500, "currency": "usd", "duration": "forever"}
    )
    client.v1.subscriptions.update(sub.id, params={"discounts": [{"coupon": "GONE5"}]})
    client.v1.coupons.delete("GONE5")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.coupons.retrieve("GONE5")
    kept = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["discounts"]})
    assert kept.to_dict()["discounts"][0]["source"]["coupon"]["amount_off"] == 500
    preview = client.v1.invoices.create_preview(params={"subscription": sub.id})
    assert (preview.subtotal, preview.amount_due) == (1000, 500)


def test_balance_transactions_credit_the_preview_and_emit_customer_updated(
    client: stripe.StripeClient,
) -> None:
    customer = _customer(client)
    sub = _subscribe(client, customer.id, _price(client, _product(client).id, 1000).id)
    made = client.v1.customers.balance_transactions.create(
        customer.id, params={"amount": -300, "currency": "usd", "description": "sorry"}
    )
    assert made.ending_balance == -300
    assert client.v1.customers.retrieve(customer.id).balance == -300
    preview = client.v1.invoices.create_preview(params={"subscription": sub.id})
    assert (preview.starting_balance, preview.amount_due) == (-300, 700)
    updated = client.v1.events.list(params={"type": "customer.updated"}).data[0]
    assert updated.data.to_dict()["previous_attributes"]["balance"] == 0
    with pytest.raises(stripe.InvalidRequestError, match="not allowed"):
        client.v1.customers.balance_transactions.create(
            customer.id, params={"amount": -100, "currency": "eur"}
        )
    listed = client.v1.customers.balance_transactions.list(customer.id).data
    assert [t.id for t in listed] == [made.id]
