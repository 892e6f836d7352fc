"""DryRunGateway: reads go through, writes are planned and answered with synthetic objects."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from billing_cli.errors import Conflict
from billing_cli.gateway import (
    CustomerInfo,
    DryRunGateway,
    Gateway,
    PlannedWrite,
    ProductInfo,
    SubscriptionInfo,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SUB = SubscriptionInfo(
    id="sub_1",
    customer_id="cus_1",
    status="active",
    price_id="price_basic",
    item_id="si_1",
    current_period_start=NOW - timedelta(days=10),
    current_period_end=NOW + timedelta(days=20),
    trial_end=None,
    cancel_at_period_end=False,
    canceled_at=None,
    latest_invoice_id="in_1",
    created=NOW - timedelta(days=40),
)


class ReadOnlyFake:
    """Answers the reads a dry run needs; any write reaching it fails the test."""

    def __init__(self, default_payment_method: str | None = "pm_1") -> None:
        self.reads: list[str] = []
        self.default_payment_method = default_payment_method

    def list_products(self) -> list[ProductInfo]:
        self.reads.append("list_products")
        return [ProductInfo("prod_1", "Basic", True, {})]

    def retrieve_customer(self, customer_id: str) -> CustomerInfo:
        self.reads.append(f"retrieve_customer {customer_id}")
        return CustomerInfo(customer_id, "a@b.test", "A", {}, self.default_payment_method)

    def retrieve_subscription(self, subscription_id: str) -> SubscriptionInfo:
        self.reads.append(f"retrieve_subscription {subscription_id}")
        return replace(SUB, id=subscription_id)

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"DryRunGateway forwarded {name} to the real gateway")


def dry(fake: ReadOnlyFake | None = None) -> tuple[DryRunGateway, ReadOnlyFake]:
    inner = fake or ReadOnlyFake()
    return DryRunGateway(cast(Gateway, inner), now=NOW), inner


def test_reads_pass_through() -> None:
    gw, inner = dry()
    assert gw.list_products()[0].id == "prod_1"
    assert gw.retrieve_subscription("sub_1") == SUB
    assert inner.reads == ["list_products", "retrieve_subscription sub_1"]
    assert gw.planned == []


def test_catalogue_writes_are_planned_with_synthetic_ids() -> None:
    gw, _ = dry()
    product = gw.create_product(name="Pro", metadata={"plan": "pro"}, idempotency_key="k1")
    price = gw.create_price(
        product_id=product.id,
        unit_amount=2900,
        currency="usd",
        interval="month",
        interval_count=1,
        lookup_key="pro",
        metadata={},
        transfer_lookup_key=True,
        idempotency_key="k2",
    )
    archived = gw.archive_price("price_old", idempotency_key="k3")
    assert (product.id, price.id, price.product_id) == (
        "(new product)",
        "(new price)",
        "(new product)",
    )
    assert archived.active is False
    assert [(p.operation, p.target) for p in gw.planned] == [
        ("create_product", "(new product)"),
        ("create_price", "(new price)"),
        ("archive_price", "price_old"),
    ]
    assert gw.planned[1].params["unit_amount"] == 2900
    assert all("k1" not in repr(p) and "idempotency" not in repr(p) for p in gw.planned)


def test_new_subscription_with_trial_is_trialing_and_can_be_changed() -> None:
    gw, inner = dry()
    customer = gw.create_customer(email="a@b.test", name="A", metadata={}, idempotency_key="k")
    sub = gw.create_subscription(
        customer_id=customer.id,
        price_id="price_basic",
        trial_days=14,
        default_payment_method=None,
        metadata={},
        idempotency_key="k",
    )
    assert sub.status == "trialing"
    assert sub.trial_end == NOW + timedelta(days=14)
    changed = gw.change_subscription_price(
        sub.id,
        item_id=sub.item_id or "",
        price_id="price_pro",
        proration_behavior="none",
        idempotency_key="k",
    )
    assert changed.price_id == "price_pro"
    assert gw.retrieve_subscription(sub.id).price_id == "price_pro"
    assert gw.list_subscriptions(customer_id=customer.id) == [changed]
    assert inner.reads == []


def test_subscription_without_trial_is_active() -> None:
    gw, _ = dry()
    sub = gw.create_subscription(
        customer_id="cus_1",
        price_id="p",
        trial_days=None,
        default_payment_method="pm_1",
        metadata={},
        idempotency_key="k",
    )
    assert (sub.status, sub.trial_end) == ("active", None)


def test_existing_subscription_writes_start_from_real_state() -> None:
    gw, inner = dry()
    scheduled = gw.set_cancel_at_period_end("sub_1", True, idempotency_key="k")
    canceled = gw.cancel_subscription_now("sub_1", idempotency_key="k")
    assert scheduled.cancel_at_period_end is True
    assert scheduled.current_period_end == SUB.current_period_end
    assert (canceled.status, canceled.canceled_at) == ("canceled", NOW)
    assert inner.reads == ["retrieve_subscription sub_1"] * 2
    assert gw.planned == [
        PlannedWrite("set_cancel_at_period_end", "sub_1", {"cancel_at_period_end": True}),
        PlannedWrite("cancel_subscription_now", "sub_1", {}),
    ]


def test_payment_uses_the_default_method_and_fails_like_the_real_run() -> None:
    gw, _ = dry()
    payment = gw.create_payment(
        customer_id="cus_1",
        amount=500,
        currency="usd",
        description="fee",
        payment_method=None,
        idempotency_key="k",
    )
    assert (payment.id, payment.amount, payment.status) == ("(new payment)", 500, "not sent")
    assert gw.planned[0].params["payment_method"] == "pm_1"
    gw, _ = dry(ReadOnlyFake(default_payment_method=None))
    with pytest.raises(Conflict, match="no default payment method"):
        gw.create_payment(
            customer_id="cus_1",
            amount=500,
            currency="usd",
            description="fee",
            payment_method=None,
            idempotency_key="k",
        )
    assert gw.planned == []


def test_customer_writes() -> None:
    gw, _ = dry()
    assert gw.delete_customer("cus_1", idempotency_key="k").deleted is True
    attached = gw.attach_payment_method("pm_card_visa", customer_id="cus_1", idempotency_key="k")
    assert attached.id == "pm_card_visa"
    updated = gw.set_default_payment_method("cus_1", "pm_2", idempotency_key="k")
    assert updated.default_payment_method == "pm_2"
    product = gw.update_product("prod_1", active=False, idempotency_key="k")
    assert product.active is False
    assert [p.operation for p in gw.planned] == [
        "delete_customer",
        "attach_payment_method",
        "set_default_payment_method",
        "update_product",
    ]
    assert gw.planned[-1].params == {"active": False}
