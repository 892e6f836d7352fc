"""The sandbox modules behind the support desk, through stripe-python over real HTTP:
refunds (``sandbox/refunds.py``), invoice collection (``sandbox/invoice_collection.py``) and
detaching payment methods (``sandbox/payment_methods.py``), with the events they emit."""

from __future__ import annotations

import pytest
import stripe

from stripe_sandbox import Sandbox

pytestmark = pytest.mark.sandbox


def _customer(client: stripe.StripeClient, card: str = "pm_card_visa") -> tuple[str, str]:
    customer = client.v1.customers.create(params={"email": "desk@example.test"})
    pm = client.v1.payment_methods.attach(card, params={"customer": customer.id})
    client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": pm.id}}
    )
    return customer.id, pm.id


def _paid(client: stripe.StripeClient, amount: int = 2000) -> str:
    customer, pm = _customer(client)
    intent = client.v1.payment_intents.create(
        params={
            "customer": customer,
            "payment_method": pm,
            "amount": amount,
            "currency": "usd",
            "confirm": True,
        }
    )
    return intent.id


def _failed_renewal(client: stripe.StripeClient, sandbox: Sandbox) -> tuple[str, str, str]:
    """(customer, subscription, open invoice) after a renewal declined by the default card."""
    product = client.v1.products.create(params={"name": "Desk"})
    price = client.v1.prices.create(
        params={
            "product": product.id,
            "unit_amount": 1500,
            "currency": "usd",
            "recurring": {"interval": "month"},
        }
    )
    customer, _pm = _customer(client)
    sub = client.v1.subscriptions.create(
        params={"customer": customer, "items": [{"price": price.id}]}
    )
    failing = client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": customer}
    )
    client.v1.customers.update(
        customer, params={"invoice_settings": {"default_payment_method": failing.id}}
    )
    renewed = sandbox.renew(sub.id)
    return customer, sub.id, str(renewed["latest_invoice"])


def _event_types(client: stripe.StripeClient) -> list[str]:
    return [e.type for e in client.v1.events.list(params={"limit": 100}).auto_paging_iter()]


def test_partial_and_full_refunds_and_their_limits(client: stripe.StripeClient) -> None:
    payment = _paid(client)
    part = client.v1.refunds.create(
        params={
            "payment_intent": payment,
            "amount": 500,
            "reason": "duplicate",
            "metadata": {"k": "v"},
        }
    )
    assert (part.amount, part.reason, part.payment_intent, part.metadata["k"]) == (
        500,
        "duplicate",
        payment,
        "v",
    )
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.refunds.create(params={"payment_intent": payment, "amount": 1600})
    assert too_much.value.code == "amount_too_large"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"payment_intent": payment, "reason": "whim"})
    rest = client.v1.refunds.create(params={"payment_intent": payment})
    assert rest.amount == 1500
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create(params={"payment_intent": payment})
    assert again.value.code == "charge_already_refunded"

    intent = client.v1.payment_intents.retrieve(payment, params={"expand": ["latest_charge"]})
    charge = intent.latest_charge
    assert isinstance(charge, stripe.Charge)
    assert (charge.amount_refunded, charge.refunded) == (2000, True)
    listed = client.v1.refunds.list(params={"payment_intent": payment}).data
    assert [r.id for r in listed] == [rest.id, part.id]  # newest first
    assert [r.id for r in client.v1.refunds.list(params={"charge": charge.id}).data] == [
        rest.id,
        part.id,
    ]
    types = _event_types(client)
    assert types.count("charge.refunded") == 2 and types.count("refund.created") == 2


def test_refund_idempotency_key_replays_the_first_refund(client: stripe.StripeClient) -> None:
    payment = _paid(client)
    params = {"payment_intent": payment, "amount": 300}
    first = client.v1.refunds.create(params=params, options={"idempotency_key": "r-1"})  # type: ignore[arg-type]
    second = client.v1.refunds.create(params=params, options={"idempotency_key": "r-1"})  # type: ignore[arg-type]
    assert first.id == second.id
    assert len(client.v1.refunds.list(params={"payment_intent": payment}).data) == 1


def test_pay_with_another_card_leaves_the_defaults(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    customer, sub, invoice = _failed_renewal(client, sandbox)
    stranger = client.v1.payment_methods.attach(
        "pm_card_visa", params={"customer": client.v1.customers.create().id}
    )
    with pytest.raises(stripe.InvalidRequestError, match="not attached"):
        client.v1.invoices.pay(invoice, params={"payment_method": stranger.id})
    with pytest.raises(stripe.CardError):
        client.v1.invoices.pay(invoice)
    assert client.v1.invoices.retrieve(invoice).attempt_count == 2

    good = client.v1.payment_methods.attach("pm_card_mastercard", params={"customer": customer})
    paid = client.v1.invoices.pay(invoice, params={"payment_method": good.id, "off_session": True})
    assert (paid.status, paid.amount_paid, paid.attempt_count) == ("paid", 1500, 3)
    assert client.v1.subscriptions.retrieve(sub).status == "active"
    default = client.v1.customers.retrieve(customer).invoice_settings.default_payment_method
    assert default != good.id  # used for this attempt only
    assert "invoice.paid" in _event_types(client)


def test_mark_uncollectible_then_pay_or_void(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    customer, _sub, invoice = _failed_renewal(client, sandbox)
    written_off = client.v1.invoices.mark_uncollectible(invoice)
    assert (written_off.status, written_off.next_payment_attempt) == ("uncollectible", None)
    assert written_off.status_transitions.marked_uncollectible_at is not None
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.mark_uncollectible(invoice)
    assert "invoice.marked_uncollectible" in _event_types(client)
    voided = client.v1.invoices.void_invoice(invoice)
    assert voided.status == "void"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.pay(invoice)

    _c2, _s2, second = _failed_renewal(client, sandbox)
    client.v1.invoices.mark_uncollectible(second)
    good = client.v1.payment_methods.attach("pm_card_visa", params={"customer": _c2})
    assert client.v1.invoices.pay(second, params={"payment_method": good.id}).status == "paid"
    del customer


def test_detach_clears_the_defaults_it_held(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    customer, sub, _invoice = _failed_renewal(client, sandbox)
    failing = client.v1.customers.retrieve(customer).invoice_settings.default_payment_method
    assert failing is not None
    client.v1.subscriptions.update(sub, params={"default_payment_method": failing})
    detached = client.v1.payment_methods.detach(failing)
    assert detached.customer is None
    assert client.v1.customers.retrieve(customer).invoice_settings.default_payment_method is None
    assert client.v1.subscriptions.retrieve(sub).default_payment_method is None
    assert "payment_method.detached" in _event_types(client)
    with pytest.raises(stripe.InvalidRequestError, match="not attached"):
        client.v1.payment_methods.detach(failing)


def test_customer_update_emits_customer_updated(client: stripe.StripeClient) -> None:
    customer, _pm = _customer(client)
    client.v1.customers.update(customer, params={"name": "Desk Ltd", "email": "new@desk.test"})
    again = client.v1.customers.retrieve(customer)
    assert (again.name, again.email) == ("Desk Ltd", "new@desk.test")
    assert "customer.updated" in _event_types(client)
