"""The real StripeClient path, replayed from cassettes recorded against the local sandbox.

Each test drives one job end to end through ``StripeGateway`` and checks what the services rely
on: ids, statuses, the price on a subscription, deleted customers, translated errors. Objects
are named by what the recording returned, so replay needs no live server.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from billing_cli.errors import CardDeclined, IdempotencyConflict, InvalidRequest
from billing_cli.gateway import DryRunGateway, idempotency_key
from billing_cli.gateway.stripe_gateway import StripeGateway

from .conftest import Wired

pytestmark = pytest.mark.vcr
EVENTS_SINCE = 1_700_000_000


def key(wired: Wired, operation: str, *parts: str | int) -> str:
    """A key unique to this recording run (the tag), so re-recording never replays old keys."""
    return idempotency_key(operation, wired.tag, *parts)


def new_customer(wired: Wired, name: str, *, card: str | None = "pm_card_visa") -> str:
    gw = wired.gateway
    customer = gw.create_customer(
        email=f"{name}@example.com",
        name=name,
        metadata={"tenant": name},
        idempotency_key=key(wired, "customer.create", name),
    )
    if card:
        method = gw.attach_payment_method(
            card, customer_id=customer.id, idempotency_key=key(wired, "pm.attach", name)
        )
        gw.set_default_payment_method(
            customer.id, method.id, idempotency_key=key(wired, "pm.default", name)
        )
    return customer.id


def new_prices(wired: Wired, name: str) -> tuple[str, str]:
    gw = wired.gateway
    product = gw.create_product(
        name=name, metadata={}, idempotency_key=key(wired, "product.create", name)
    )
    ids = []
    for amount in (1000, 2500):
        price = gw.create_price(
            product_id=product.id,
            unit_amount=amount,
            currency="usd",
            interval="month",
            interval_count=1,
            lookup_key=None,
            metadata={},
            transfer_lookup_key=False,
            idempotency_key=key(wired, "price.create", name, amount),
        )
        ids.append(price.id)
    return ids[0], ids[1]


def test_catalogue_round_trip(wired: Wired) -> None:
    gw = wired.gateway
    product = gw.create_product(
        name="Gateway Pro", metadata={"plan": "pro"}, idempotency_key=key(wired, "product", "pro")
    )
    assert product.id.startswith("prod_")
    assert (product.name, product.active, product.metadata) == (
        "Gateway Pro",
        True,
        {"plan": "pro"},
    )
    old = gw.create_price(
        product_id=product.id,
        unit_amount=2900,
        currency="usd",
        interval="month",
        interval_count=1,
        lookup_key="gateway-pro-monthly",
        metadata={"plan": "pro"},
        transfer_lookup_key=True,
        idempotency_key=key(wired, "price", "pro", 2900),
    )
    assert (old.product_id, old.unit_amount, old.currency) == (product.id, 2900, "usd")
    assert (old.interval, old.interval_count, old.lookup_key) == ("month", 1, "gateway-pro-monthly")
    renamed = gw.update_product(
        product.id, name="Gateway Pro+", idempotency_key=key(wired, "product.rename", "pro")
    )
    assert renamed.name == "Gateway Pro+"
    new = gw.create_price(
        product_id=product.id,
        unit_amount=3900,
        currency="usd",
        interval="month",
        interval_count=1,
        lookup_key="gateway-pro-monthly",
        metadata={"plan": "pro"},
        transfer_lookup_key=True,
        idempotency_key=key(wired, "price", "pro", 3900),
    )
    archived = gw.archive_price(old.id, idempotency_key=key(wired, "price.archive", old.id))
    assert archived.active is False

    assert product.id in {p.id for p in gw.list_products()}
    prices = {p.id: p for p in gw.list_prices()}
    assert prices[old.id].active is False
    assert prices[new.id].active is True
    assert prices[new.id].lookup_key == "gateway-pro-monthly"
    assert prices[old.id].lookup_key is None


def test_customer_round_trip(wired: Wired) -> None:
    gw = wired.gateway
    customer_id = new_customer(wired, "gateway-customer")
    customer = gw.retrieve_customer(customer_id)
    assert (customer.email, customer.name) == ("gateway-customer@example.com", "gateway-customer")
    assert customer.metadata == {"tenant": "gateway-customer"}
    assert customer.default_payment_method is not None
    assert customer_id in {c.id for c in gw.list_customers(email=customer.email)}
    methods = gw.list_payment_methods(customer_id)
    assert [(m.id, m.brand, m.last4) for m in methods] == [
        (customer.default_payment_method, "visa", "4242")
    ]
    deleted = gw.delete_customer(customer_id, idempotency_key=key(wired, "customer.delete", "x"))
    assert (deleted.id, deleted.deleted) == (customer_id, True)


def test_subscription_lifecycle(wired: Wired) -> None:
    gw = wired.gateway
    customer_id = new_customer(wired, "gateway-subscriber")
    basic, pro = new_prices(wired, "Gateway Lifecycle")

    trial = gw.create_subscription(
        customer_id=customer_id,
        price_id=basic,
        trial_days=14,
        default_payment_method=None,
        metadata={"tenant": "gateway-subscriber"},
        idempotency_key=key(wired, "sub.create", "trial"),
    )
    assert (trial.status, trial.customer_id, trial.price_id) == ("trialing", customer_id, basic)
    assert trial.trial_end is not None and trial.created is not None
    assert trial.trial_end - trial.created == timedelta(days=14)
    assert gw.retrieve_subscription(trial.id) == trial
    canceled = gw.cancel_subscription_now(trial.id, idempotency_key=key(wired, "sub.cancel", 1))
    assert canceled.status == "canceled" and canceled.canceled_at is not None

    sub = gw.create_subscription(
        customer_id=customer_id,
        price_id=basic,
        trial_days=None,
        default_payment_method=None,
        metadata={},
        idempotency_key=key(wired, "sub.create", "paid"),
    )
    assert sub.status == "active" and sub.item_id is not None
    assert sub.current_period_start is not None and sub.current_period_end is not None
    assert sub.current_period_start.tzinfo is UTC
    assert sub.current_period_end > sub.current_period_start
    listed = {s.id: s.status for s in gw.list_subscriptions(customer_id=customer_id)}
    assert listed == {trial.id: "canceled", sub.id: "active"}

    preview = gw.preview_price_change(
        sub.id,
        item_id=sub.item_id,
        price_id=pro,
        proration_behavior="create_prorations",
        proration_date=None,
    )
    assert preview.currency == "usd"
    # create_preview is a POST but a read: no key of ours (stripe-python adds a random one).
    assert wired.session.sent[-1] == ("POST", "/v1/invoices/create_preview")
    assert not (wired.session.idempotency_keys[-1] or "").startswith("billing:")
    assert preview.lines, "a preview lists the invoice lines"

    changed = gw.change_subscription_price(
        sub.id,
        item_id=sub.item_id,
        price_id=pro,
        proration_behavior="none",
        idempotency_key=key(wired, "sub.change", pro),
    )
    assert (changed.price_id, changed.item_id) == (pro, sub.item_id)
    ending = gw.set_cancel_at_period_end(sub.id, True, idempotency_key=key(wired, "sub.cape", 1))
    assert ending.cancel_at_period_end is True and ending.status == "active"
    resumed = gw.set_cancel_at_period_end(sub.id, False, idempotency_key=key(wired, "sub.cape", 0))
    assert resumed.cancel_at_period_end is False


def test_one_off_payment_and_decline(wired: Wired) -> None:
    gw = wired.gateway
    customer_id = new_customer(wired, "gateway-payer")
    payment = gw.create_payment(
        customer_id=customer_id,
        amount=1500,
        currency="usd",
        description="setup fee",
        payment_method=None,
        idempotency_key=key(wired, "payment", customer_id, 1500),
    )
    assert payment.id.startswith("pi_")
    assert (payment.amount, payment.currency, payment.status) == (1500, "usd", "succeeded")
    with pytest.raises(CardDeclined, match=r"^card declined: \w+: "):
        gw.attach_payment_method(
            "pm_card_chargeDeclined",
            customer_id=customer_id,
            idempotency_key=key(wired, "pm.attach", "declined"),
        )
    # This test card attaches fine and is declined when charged.
    failing = gw.attach_payment_method(
        "pm_card_chargeCustomerFail",
        customer_id=customer_id,
        idempotency_key=key(wired, "pm.attach", "customer-fail"),
    )
    with pytest.raises(CardDeclined, match=r"^card declined: \w+: "):
        gw.create_payment(
            customer_id=customer_id,
            amount=700,
            currency="usd",
            description="declined",
            payment_method=failing.id,
            idempotency_key=key(wired, "payment", customer_id, 700),
        )


def test_every_write_carries_the_callers_idempotency_key(
    wired: Wired, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="billing.stripe")
    gw = wired.gateway
    create = key(wired, "customer.create", "keyed")
    customer = gw.create_customer(
        email="k@example.com", name="K", metadata={}, idempotency_key=create
    )
    gw.retrieve_customer(customer.id)
    sent = list(zip(wired.session.sent, wired.session.idempotency_keys, strict=True))
    assert sent == [
        (("POST", "/v1/customers"), create),
        (("GET", f"/v1/customers/{customer.id}"), None),
    ]
    # One log line a call, naming the object but never a key.
    logged = [r.getMessage() for r in caplog.records if r.name == "billing.stripe"]
    assert [line.split(" (")[0] for line in logged] == [
        "stripe customers.create -> ok",
        f"stripe customers.retrieve customer={customer.id} -> ok",
    ]
    assert not any("billing:" in line or "sk_test" in line for line in logged)


def test_idempotent_replay_returns_the_first_object(wired: Wired) -> None:
    gw = wired.gateway
    same = key(wired, "customer.create", "replayed")
    first = gw.create_customer(email="r@example.com", name="R", metadata={}, idempotency_key=same)
    again = gw.create_customer(email="r@example.com", name="R", metadata={}, idempotency_key=same)
    assert again.id == first.id
    with pytest.raises(IdempotencyConflict):
        gw.create_customer(email="other@example.com", name="O", metadata={}, idempotency_key=same)


def test_events_oldest_first_and_retrieve(wired: Wired) -> None:
    gw = wired.gateway
    first = new_customer(wired, "gateway-events-1", card=None)
    second = new_customer(wired, "gateway-events-2", card=None)
    events = gw.list_events(types=["customer.created"], created_gte=EVENTS_SINCE)
    created = [e["created"] for e in events]
    assert created == sorted(created)
    ids = [e["data"]["object"]["id"] for e in events]
    assert ids.index(first) < ids.index(second)
    event = gw.retrieve_event(events[ids.index(first)]["id"])
    assert (event["type"], event["data"]["object"]["email"]) == (
        "customer.created",
        "gateway-events-1@example.com",
    )
    assert isinstance(event["data"]["object"], dict)


def test_missing_object_is_an_invalid_request(wired: Wired) -> None:
    with pytest.raises(
        InvalidRequest, match=r"^not found in Stripe \(customer=cus_gatewaymissing\)"
    ):
        wired.gateway.retrieve_customer("cus_gatewaymissing")


def test_dry_run_makes_zero_posts(wired: Wired) -> None:
    real: StripeGateway = wired.gateway
    dry = DryRunGateway(real, now=datetime(2026, 1, 1, tzinfo=UTC))
    products = dry.list_products()
    customer = dry.create_customer(
        email="d@example.com", name="D", metadata={}, idempotency_key="k"
    )
    product = dry.create_product(name="Dry", metadata={}, idempotency_key="k")
    price = dry.create_price(
        product_id=product.id,
        unit_amount=100,
        currency="usd",
        interval="month",
        interval_count=1,
        lookup_key=None,
        metadata={},
        transfer_lookup_key=False,
        idempotency_key="k",
    )
    sub = dry.create_subscription(
        customer_id=customer.id,
        price_id=price.id,
        trial_days=7,
        default_payment_method=None,
        metadata={},
        idempotency_key="k",
    )
    dry.cancel_subscription_now(sub.id, idempotency_key="k")
    dry.create_payment(
        customer_id=customer.id,
        amount=100,
        currency="usd",
        description="dry",
        payment_method="pm_card_visa",
        idempotency_key="k",
    )
    assert wired.session.writes() == []
    assert ("GET", "/v1/products") in wired.session.sent
    assert isinstance(products, list)
    assert [p.operation for p in dry.planned] == [
        "create_customer",
        "create_product",
        "create_price",
        "create_subscription",
        "cancel_subscription_now",
        "create_payment",
    ]
    assert sub.status == "trialing"
