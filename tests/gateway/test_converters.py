"""Converters read both API shapes, from plain dicts and from StripeObjects alike."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import stripe

from billing_cli.gateway import converters as conv

FIXTURES = Path("/work/shared/stripe/fixtures3.json")


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    with FIXTURES.open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)["resources"]
    return data


def utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def current_subscription(resources: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The fixtures3 subscription (basil shape: period on the item), with sane timestamps."""
    sub: dict[str, Any] = copy.deepcopy(resources["subscription"])
    item = sub["items"]["data"][0]
    item["current_period_start"] = 1_767_225_600  # 2026-01-01
    item["current_period_end"] = 1_769_904_000  # 2026-02-01
    sub.update(changes)
    return sub


def old_subscription(resources: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The same subscription as a pre-2025-03-31 API renders it: period on the subscription."""
    sub = current_subscription(resources)
    item = sub["items"]["data"][0]
    sub["current_period_start"] = item.pop("current_period_start")
    sub["current_period_end"] = item.pop("current_period_end")
    sub.update(changes)
    return sub


def test_subscription_current_shape(resources: dict[str, Any]) -> None:
    info = conv.subscription_info(current_subscription(resources))
    assert info.id == "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw"
    assert info.customer_id == "cus_QXg1o8vcGmoR32"
    assert info.status == "active"
    assert info.price_id == "price_1PgafmB7WZ01zgkW6dKueIc5"
    assert info.item_id == "si_QXhVnC2h0Jczwc"
    assert info.current_period_start == datetime(2026, 1, 1, tzinfo=UTC)
    assert info.current_period_end == datetime(2026, 2, 1, tzinfo=UTC)
    assert info.trial_end == utc(1234567890)
    assert info.cancel_at_period_end is True
    assert info.canceled_at == utc(1234567890)
    assert info.latest_invoice_id is None
    assert info.created == utc(1234567890)


def test_subscription_old_shape_reads_period_from_subscription(resources: dict[str, Any]) -> None:
    old = conv.subscription_info(old_subscription(resources))
    new = conv.subscription_info(current_subscription(resources))
    assert old == new


def test_subscription_very_old_shape_price_from_plan(resources: dict[str, Any]) -> None:
    sub = old_subscription(resources)
    item = sub["items"]["data"][0]
    del item["price"]
    item["plan"]["id"] = "plan_gold"
    assert conv.subscription_info(sub).price_id == "plan_gold"


def test_subscription_expanded_references_and_no_trial(resources: dict[str, Any]) -> None:
    sub = current_subscription(
        resources,
        customer={"id": "cus_expanded", "object": "customer"},
        latest_invoice={"id": "in_123", "object": "invoice"},
        trial_end=None,
        canceled_at=None,
        cancel_at_period_end=False,
    )
    info = conv.subscription_info(sub)
    assert info.customer_id == "cus_expanded"
    assert info.latest_invoice_id == "in_123"
    assert info.trial_end is None
    assert info.canceled_at is None
    assert info.cancel_at_period_end is False


def test_subscription_without_items() -> None:
    info = conv.subscription_info({"id": "sub_1", "customer": "cus_1", "status": "incomplete"})
    assert (info.price_id, info.item_id, info.current_period_end) == (None, None, None)


def test_stripe_object_input_is_read_like_a_dict(resources: dict[str, Any]) -> None:
    payload = current_subscription(resources)
    obj = stripe.StripeObject.construct_from(payload, "sk_test_x")
    assert conv.subscription_info(obj) == conv.subscription_info(payload)


def test_price_and_legacy_plan(resources: dict[str, Any]) -> None:
    price = conv.price_info(resources["price"])
    assert price.id == "price_1PgafmB7WZ01zgkW6dKueIc5"
    assert price.product_id == "prod_QXg1hqf4jFNsqG"
    assert (price.unit_amount, price.currency) == (2000, "usd")
    assert (price.interval, price.interval_count) == ("month", 1)
    assert price.active is True
    assert price.lookup_key is None
    plan = dict(resources["plan"], id="gold", amount=990, interval_count=1, product="prod_1")
    legacy = conv.price_info(plan)
    assert (legacy.unit_amount, legacy.interval, legacy.product_id) == (990, "month", "prod_1")


def test_one_time_price_has_no_interval(resources: dict[str, Any]) -> None:
    one_time = dict(resources["price"], recurring=None, type="one_time")
    assert conv.price_info(one_time).interval is None


def test_product(resources: dict[str, Any]) -> None:
    product = conv.product_info(dict(resources["product"], metadata={"plan": "gold"}))
    assert (product.id, product.name, product.active) == ("prod_QXg1hqf4jFNsqG", "T-shirt", True)
    assert product.metadata == {"plan": "gold"}


def test_string_booleans_from_the_emulator_are_read_as_booleans() -> None:
    product = conv.product_info({"id": "prod_1", "name": "x", "active": "false"})
    assert product.active is False


def test_customer_and_its_default_payment_method(resources: dict[str, Any]) -> None:
    payload = copy.deepcopy(resources["customer"])
    payload.update(email="ops@acme.test", name="Acme", metadata={"tenant": "acme"})
    payload["invoice_settings"]["default_payment_method"] = "pm_123"
    info = conv.customer_info(payload)
    assert (info.email, info.name, info.default_payment_method) == (
        "ops@acme.test",
        "Acme",
        "pm_123",
    )
    assert info.metadata == {"tenant": "acme"}
    assert info.deleted is False


def test_deleted_customer(resources: dict[str, Any]) -> None:
    info = conv.customer_info(resources["deleted_customer"])
    assert info.deleted is True
    assert (info.email, info.default_payment_method, info.metadata) == (None, None, {})


def test_payment_method(resources: dict[str, Any]) -> None:
    info = conv.payment_method_info(resources["payment_method"])
    assert (info.brand, info.last4, info.exp_month, info.exp_year) == ("visa", "4242", 8, 2030)
    sepa = conv.payment_method_info({"id": "pm_2", "type": "sepa_debit", "sepa_debit": {}})
    assert (sepa.brand, sepa.last4) == ("sepa_debit", None)


def test_invoice_preview_current_shape(resources: dict[str, Any]) -> None:
    invoice = copy.deepcopy(resources["invoice"])
    proration = copy.deepcopy(invoice["lines"]["data"][0])
    proration.update(amount=-500, description="Unused time on Basic")
    renewal = copy.deepcopy(proration)
    renewal.update(amount=1500, description="1 × Pro")
    renewal["parent"]["subscription_item_details"]["proration"] = False
    renewal["parent"]["invoice_item_details"] = None
    renewal["pricing"] = {"type": "price_details", "price_details": {"price": "price_pro"}}
    invoice["lines"]["data"] = [proration, renewal]
    invoice["amount_due"] = 1000
    preview = conv.invoice_preview(invoice)
    assert (preview.amount_due, preview.currency, preview.proration_amount) == (1000, "usd", -500)
    assert [line.proration for line in preview.lines] == [True, False]
    assert preview.lines[1].price_id == "price_pro"
    assert preview.lines[0].period_start == utc(1721954054)


def test_invoice_preview_old_shape() -> None:
    invoice = {
        "amount_due": 700,
        "currency": "eur",
        "lines": {
            "data": [
                {"amount": -300, "proration": True, "price": {"id": "price_old"}},
                {"amount": 1000, "proration": False, "price": {"id": "price_new"}},
            ]
        },
    }
    preview = conv.invoice_preview(invoice)
    assert preview.proration_amount == -300
    assert [line.price_id for line in preview.lines] == ["price_old", "price_new"]
    assert all(line.currency == "eur" for line in preview.lines)


def test_payment_intent(resources: dict[str, Any]) -> None:
    info = conv.payment_info(dict(resources["payment_intent"], description="setup fee"))
    assert (info.id, info.amount, info.currency) == ("pi_1PgafyB7WZ01zgkWSjxsAJo3", 1099, "usd")
    assert (info.status, info.description) == ("requires_payment_method", "setup fee")


def test_as_dict_makes_json_ready_dicts() -> None:
    obj = stripe.StripeObject.construct_from(
        {"id": "evt_1", "data": {"object": {"id": "price_1", "unit_amount_decimal": "12.5"}}},
        "sk_test_x",
    )
    data = conv.as_dict(obj)
    assert isinstance(data["data"]["object"], dict)
    json.dumps(data)
    with pytest.raises(TypeError):
        conv.as_dict(42)


def test_subscription_metadata_and_expanded_price(resources: dict[str, Any]) -> None:
    """Reconcile finds a tenant's subscriptions by ``metadata.tenant`` and describes their
    price from the item's expanded Price, with no request of its own."""
    sub = current_subscription(resources, metadata={"tenant": "acme", "plan": "pro"})
    info = conv.subscription_info(sub)
    assert info.metadata == {"tenant": "acme", "plan": "pro"}
    assert info.price is not None and info.price.id == info.price_id
    assert info.price.unit_amount == sub["items"]["data"][0]["price"]["unit_amount"]
    sub["items"]["data"][0]["price"] = "price_unexpanded"
    bare = conv.subscription_info(sub)
    assert (bare.price_id, bare.price) == ("price_unexpanded", None)
