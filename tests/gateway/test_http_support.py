"""The support desk's gateway calls over the real StripeClient path, replayed from cassettes
recorded against the local sandbox (see ``cassettes/README.md`` to re-record them).

Invoices (list with a status filter, retrieve, pay with another card, mark uncollectible, void),
the payment history with refunds, refunds themselves, detaching a card, a subscription's
default card and a customer's details: ids, statuses and amounts as the services read them.
"""

from __future__ import annotations

import pytest

from billing_cli.errors import CardDeclined, InvalidRequest

from .conftest import Wired
from .test_http import key, new_customer, new_prices

pytestmark = pytest.mark.vcr


def failed_first_invoice(wired: Wired, name: str) -> tuple[str, str, str]:
    """A subscription whose first invoice the default card declines: (customer, sub, invoice)."""
    gw = wired.gateway
    customer_id = new_customer(wired, name, card="pm_card_chargeCustomerFail")
    price, _ = new_prices(wired, f"Support {name}")
    sub = gw.create_subscription(
        customer_id=customer_id,
        price_id=price,
        trial_days=None,
        default_payment_method=None,
        metadata={},
        idempotency_key=key(wired, "sub.create", name),
    )
    assert sub.status == "incomplete" and sub.latest_invoice_id
    return customer_id, sub.id, sub.latest_invoice_id


def test_invoices_list_show_pay_with_another_card(wired: Wired) -> None:
    gw = wired.gateway
    customer_id, sub_id, invoice_id = failed_first_invoice(wired, "gateway-invoices")
    (listed,) = gw.list_invoices(customer_id=customer_id, status="open", limit=5)
    assert (listed.id, listed.subscription_id, listed.amount_remaining) == (
        invoice_id,
        sub_id,
        1000,
    )
    assert gw.list_invoices(customer_id=customer_id, status="paid") == []
    shown = gw.retrieve_invoice(invoice_id)
    assert (shown.status, shown.attempt_count, shown.billing_reason) == (
        "open",
        1,
        "subscription_create",
    )
    assert [line.amount for line in shown.lines] == [1000]
    with pytest.raises(CardDeclined):
        gw.pay_invoice(invoice_id, payment_method=None, idempotency_key=key(wired, "pay", 1))
    good = gw.attach_payment_method(
        "pm_card_mastercard", customer_id=customer_id, idempotency_key=key(wired, "pm", "good")
    )
    paid = gw.pay_invoice(invoice_id, payment_method=good.id, idempotency_key=key(wired, "pay", 2))
    assert (paid.status, paid.amount_paid, paid.amount_remaining) == ("paid", 1000, 0)
    assert gw.retrieve_subscription(sub_id).status == "active"
    moved = gw.set_subscription_payment_method(
        sub_id, good.id, idempotency_key=key(wired, "sub.default", 1)
    )
    assert moved.id == sub_id


def test_invoice_mark_uncollectible_and_void(wired: Wired) -> None:
    gw = wired.gateway
    _customer, _sub, invoice_id = failed_first_invoice(wired, "gateway-writeoff")
    written_off = gw.mark_invoice_uncollectible(invoice_id, idempotency_key=key(wired, "unc", 1))
    assert (written_off.status, written_off.next_payment_attempt) == ("uncollectible", None)
    voided = gw.void_invoice(invoice_id, idempotency_key=key(wired, "void", 1))
    assert voided.status == "void"


def test_payment_history_refunds_detach_and_customer_update(wired: Wired) -> None:
    gw = wired.gateway
    customer_id = new_customer(wired, "gateway-refunds")
    payment = gw.create_payment(
        customer_id=customer_id,
        amount=2000,
        currency="usd",
        description="refundable",
        payment_method=None,
        idempotency_key=key(wired, "payment", customer_id),
    )
    refund = gw.create_refund(
        payment_id=payment.id,
        amount=500,
        reason="requested_by_customer",
        metadata={"billing_intent": "bi_test"},
        idempotency_key=key(wired, "refund", 1),
    )
    assert (refund.amount, refund.reason, refund.payment_intent_id) == (
        500,
        "requested_by_customer",
        payment.id,
    )
    with pytest.raises(InvalidRequest):
        gw.create_refund(
            payment_id=payment.id,
            amount=1600,
            reason=None,
            metadata={},
            idempotency_key=key(wired, "refund", 2),
        )
    (record,) = gw.list_payment_history(customer_id=customer_id)
    assert (record.id, record.amount_refunded, record.refundable) == (payment.id, 500, 1500)
    again = gw.retrieve_payment(payment.id)
    assert (again.customer_id, again.charge_id) == (customer_id, record.charge_id)
    assert [r.metadata for r in gw.list_refunds(payment_id=payment.id)] == [
        {"billing_intent": "bi_test"}
    ]

    (card,) = gw.list_payment_methods(customer_id)
    detached = gw.detach_payment_method(card.id, idempotency_key=key(wired, "detach", 1))
    assert detached.id == card.id
    customer = gw.update_customer(
        customer_id, name="Renamed", email=None, idempotency_key=key(wired, "cus.update", 1)
    )
    assert (customer.name, customer.email, customer.default_payment_method) == (
        "Renamed",
        "gateway-refunds@example.com",
        None,
    )
