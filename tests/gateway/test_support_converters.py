"""Invoices, payments and refunds are read in both API shapes, from dicts and StripeObjects."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import stripe

from billing_cli.gateway import support_converters as sconv

FIXTURES = Path("/work/shared/stripe/fixtures3.json")


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    with FIXTURES.open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)["resources"]
    return data


def test_invoice_current_shape(resources: dict[str, Any]) -> None:
    raw = copy.deepcopy(resources["invoice"])
    raw["parent"]["subscription_details"]["subscription"] = "sub_new"
    raw.update(status="open", attempt_count=2, number="ABC-0001", amount_paid=0)
    info = sconv.invoice_info(stripe.StripeObject.construct_from(raw, "sk_test_x"))
    assert (info.id, info.status, info.number, info.subscription_id) == (
        raw["id"],
        "open",
        "ABC-0001",
        "sub_new",
    )
    assert (info.amount_due, info.amount_paid, info.amount_remaining) == (1000, 0, 1000)
    assert info.attempt_count == 2
    assert info.next_payment_attempt == datetime.fromtimestamp(1234567890, tz=UTC)
    assert info.billing_reason == "manual" and info.customer_id == raw["customer"]
    (line,) = info.lines
    assert (line.amount, line.currency, line.quantity) == (1000, "usd", 1)
    assert line.period_start == datetime.fromtimestamp(1721954054, tz=UTC)


def test_invoice_old_shape_names_its_subscription_at_the_top(resources: dict[str, Any]) -> None:
    raw = copy.deepcopy(resources["invoice"])
    del raw["parent"], raw["amount_remaining"]
    raw.update(subscription="sub_old", amount_paid=400)
    info = sconv.invoice_info(raw)
    assert info.subscription_id == "sub_old"
    assert info.amount_remaining == 600  # derived when the field is absent


def test_payment_intent_with_its_charge_expanded(resources: dict[str, Any]) -> None:
    charge = copy.deepcopy(resources["charge"])
    charge.update(status="succeeded", captured=True, amount=1099, amount_captured=1099)
    charge["amount_refunded"] = 300
    intent = copy.deepcopy(resources["payment_intent"])
    intent.update(
        status="succeeded", latest_charge=charge, customer="cus_1", last_payment_error=None
    )
    record = sconv.payment_record(stripe.StripeObject.construct_from(intent, "sk_test_x"))
    assert (record.id, record.customer_id, record.charge_id) == (
        intent["id"],
        "cus_1",
        charge["id"],
    )
    assert (record.amount, record.amount_refunded, record.refundable) == (1099, 300, 799)
    assert record.decline_code is None and record.failure is None


def test_declined_payment_intent_old_shape_with_charges_list(resources: dict[str, Any]) -> None:
    charge = copy.deepcopy(resources["charge"])
    charge.update(status="failed", failure_code="card_declined", amount_captured=None)
    del charge["amount_captured"]
    charge["outcome"]["reason"] = "insufficient_funds"
    intent = copy.deepcopy(resources["payment_intent"])
    del intent["latest_charge"]
    intent.update(
        charges={"object": "list", "data": [charge]},
        last_payment_error={"decline_code": "insufficient_funds", "message": "No money."},
    )
    record = sconv.payment_record(intent)
    assert record.charge_id == charge["id"]
    assert record.decline_code == "insufficient_funds"
    assert record.failure == "insufficient_funds: No money."
    assert record.refundable == 0


def test_bare_charge_and_refund(resources: dict[str, Any]) -> None:
    charge = copy.deepcopy(resources["charge"])
    charge.update(status="succeeded", amount_captured=100, amount_refunded=100, customer="cus_2")
    record = sconv.payment_record(charge)
    assert (record.id, record.customer_id, record.refundable) == (charge["id"], "cus_2", 0)
    refund = sconv.refund_info(resources["refund"])
    assert (refund.amount, refund.charge_id, refund.status, refund.reason) == (
        100,
        charge["id"],
        "succeeded",
        None,
    )


def test_invoice_names_the_payment_that_paid_it_in_both_shapes(
    resources: dict[str, Any],
) -> None:
    raw = copy.deepcopy(resources["invoice"])

    def paying(status: str, intent: str, *, default: bool = False) -> dict[str, Any]:
        return {
            "status": status,
            "is_default": default,
            "payment": {"type": "payment_intent", "payment_intent": intent},
        }

    raw["payments"] = {
        "object": "list",
        "data": [paying("canceled", "pi_first", default=True), paying("paid", "pi_paid")],
    }
    assert sconv.invoice_info(raw).payment_intent_id == "pi_paid"
    raw["payments"]["data"] = [
        paying("open", "pi_other"),
        paying("open", "pi_default", default=True),
    ]
    assert sconv.invoice_info(raw).payment_intent_id == "pi_default"
    old = {k: v for k, v in raw.items() if k != "payments"} | {"payment_intent": "pi_old"}
    assert sconv.invoice_info(old).payment_intent_id == "pi_old"
    assert sconv.invoice_info({**old, "payment_intent": None}).payment_intent_id is None
