"""End-to-end tests of the sandbox through stripe-python's StripeClient over real HTTP.

Each test exercises behaviour that localstripe alone lacks or gets wrong (prices, items with
prices, trials, current-shape objects, declines with decline codes, the extra events,
signed webhooks, the clock controls, proration previews)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import pytest
import stripe

from stripe_sandbox import Sandbox

if TYPE_CHECKING:
    from tests.sandbox.conftest import Receiver

pytestmark = pytest.mark.sandbox

WEBHOOK_SECRET = "whsec_sandbox_test"


def _product(client: stripe.StripeClient, name: str = "Pro") -> stripe.Product:
    return client.v1.products.create(params={"name": name, "metadata": {"tier": "pro"}})


def _price(
    client: stripe.StripeClient,
    product: str,
    amount: int,
    lookup_key: str | None = None,
    interval: str = "month",
) -> stripe.Price:
    params: dict[str, object] = {
        "product": product,
        "unit_amount": amount,
        "currency": "usd",
        "recurring": {"interval": interval, "interval_count": 1},
        "metadata": {"plan": "pro"},
    }
    if lookup_key:
        params["lookup_key"] = lookup_key
    return client.v1.prices.create(params=params)  # type: ignore[arg-type]


def _customer(client: stripe.StripeClient, card: str = "pm_card_visa") -> stripe.Customer:
    customer = client.v1.customers.create(params={"email": "ops@example.test"})
    pm = client.v1.payment_methods.attach(card, params={"customer": customer.id})
    return client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": pm.id}}
    )


def _subscribe(
    client: stripe.StripeClient, customer: str, price: str, **extra: object
) -> stripe.Subscription:
    params: dict[str, object] = {"customer": customer, "items": [{"price": price}], **extra}
    return client.v1.subscriptions.create(params=params)  # type: ignore[arg-type]


def test_products_create_list_page_and_archive(client: stripe.StripeClient) -> None:
    created = [_product(client, f"P{i}") for i in range(3)]
    assert created[0].metadata["tier"] == "pro"
    page = client.v1.products.list(params={"limit": 2})
    assert len(page.data) == 2 and page.has_more
    assert {p.id for p in page.auto_paging_iter()} == {p.id for p in created}
    assert len(client.v1.products.list(params={"limit": 100}).data) == 3

    archived = client.v1.products.update(created[0].id, params={"active": False})
    assert archived.active is False
    active = client.v1.products.list(params={"active": True}).data
    assert created[0].id not in {p.id for p in active}


def test_price_round_trip_filters_and_lookup_keys(client: stripe.StripeClient) -> None:
    product = _product(client)
    monthly = _price(client, product.id, 1500, lookup_key="pro_monthly")
    assert monthly.id.startswith("price_")
    assert monthly.recurring is not None and monthly.recurring.interval == "month"
    fetched = client.v1.prices.retrieve(monthly.id)
    assert (fetched.unit_amount, fetched.currency, fetched.lookup_key) == (
        1500,
        "usd",
        "pro_monthly",
    )
    assert fetched.metadata["plan"] == "pro"

    by_key = client.v1.prices.list(params={"lookup_keys": ["pro_monthly"]})
    assert [p.id for p in by_key.data] == [monthly.id]

    with pytest.raises(stripe.InvalidRequestError):
        _price(client, product.id, 2000, lookup_key="pro_monthly")
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.update(monthly.id, params={"unit_amount": 1})  # type: ignore[typeddict-unknown-key]

    replacement = client.v1.prices.create(
        params={
            "product": product.id,
            "unit_amount": 2000,
            "currency": "usd",
            "recurring": {"interval": "month"},
            "lookup_key": "pro_monthly",
            "transfer_lookup_key": True,
        }
    )
    assert client.v1.prices.retrieve(monthly.id).lookup_key is None
    archived = client.v1.prices.update(
        monthly.id, params={"active": False, "metadata": {"plan": "", "note": "old"}}
    )
    assert archived.active is False and dict(archived.metadata.to_dict()) == {"note": "old"}

    active = client.v1.prices.list(params={"active": True, "product": product.id})
    assert [p.id for p in active.data] == [replacement.id]
    for i in range(3):
        _price(client, product.id, 100 + i)
    pages = client.v1.prices.list(params={"limit": 2, "product": product.id})
    assert len(pages.data) == 2 and pages.has_more
    assert len(list(pages.auto_paging_iter())) == 5


def test_customers_and_default_payment_method(client: stripe.StripeClient) -> None:
    customer = _customer(client)
    pm = customer.invoice_settings.default_payment_method
    assert isinstance(pm, str) and pm.startswith("pm_")
    assert client.v1.customers.retrieve(customer.id).invoice_settings.default_payment_method == pm
    assert customer.id in {c.id for c in client.v1.customers.list().auto_paging_iter()}
    assert client.v1.customers.delete(customer.id).deleted is True


def test_payment_intents_succeed_and_decline_with_codes(client: stripe.StripeClient) -> None:
    customer = _customer(client)
    ok = client.v1.payment_intents.create(
        params={
            "customer": customer.id,
            "amount": 4200,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
            "off_session": True,
            "description": "one-off charge",
        }
    )
    assert ok.status == "succeeded" and ok.description == "one-off charge"

    failing = client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": customer.id}
    )
    for card, decline_code in (
        (failing.id, "generic_decline"),
        ("pm_card_chargeDeclined", "generic_decline"),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ):
        with pytest.raises(stripe.CardError) as info:
            client.v1.payment_intents.create(
                params={
                    "customer": customer.id,
                    "amount": 4200,
                    "currency": "usd",
                    "payment_method": card,
                    "confirm": True,
                    "off_session": True,
                }
            )
        assert info.value.http_status == 402
        assert info.value.code == "card_declined"
        assert info.value.error is not None and info.value.error.decline_code == decline_code


def test_subscription_with_price_in_current_shape(client: stripe.StripeClient) -> None:
    price = _price(client, _product(client).id, 1500)
    customer = _customer(client)
    sub = _subscribe(client, customer.id, price.id, metadata={"tenant": "acme"})
    assert sub.status == "active" and sub.metadata["tenant"] == "acme"
    item = sub["items"].data[0]
    assert item.price.id == price.id
    assert item.current_period_end > item.current_period_start >= sub.start_date - 1
    assert "current_period_end" not in sub.to_dict()

    invoice = client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert invoice.status == "paid" and invoice.amount_paid == 1500
    assert invoice.parent is not None
    assert invoice.parent.subscription_details is not None
    assert invoice.parent.subscription_details.subscription == sub.id
    listed = client.v1.subscriptions.list(params={"customer": customer.id, "price": price.id})
    assert [s.id for s in listed.data] == [sub.id]


def test_trial_then_end_trial_charges(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    price = _price(client, _product(client).id, 900)
    customer = _customer(client)
    before = int(time.time())
    sub = _subscribe(client, customer.id, price.id, trial_period_days=7)
    assert sub.status == "trialing"
    assert sub.trial_end is not None and abs(sub.trial_end - (before + 7 * 86400)) < 5
    first = client.v1.invoices.retrieve(str(sub.latest_invoice))
    assert first.amount_due == 0
    assert not client.v1.payment_intents.list().data  # no charge during the trial

    ended = sandbox.end_trial(sub.id)
    assert ended["status"] == "active"
    charged = client.v1.invoices.retrieve(ended["latest_invoice"])
    assert charged.status == "paid" and charged.amount_paid == 900
    types = [e.type for e in client.v1.events.list(params={"type": "customer.subscription.*"})]
    assert "customer.subscription.trial_will_end" in types
    assert "customer.subscription.updated" in types


def test_price_change_prorations_and_preview(client: stripe.StripeClient) -> None:
    product = _product(client)
    cheap, dear = _price(client, product.id, 1000), _price(client, product.id, 3000)
    sub = _subscribe(client, _customer(client).id, cheap.id)
    item = sub["items"].data[0]
    start, end = item.current_period_start, item.current_period_end
    at = start + (end - start) // 2

    preview = client.v1.invoices.create_preview(
        params={
            "subscription": sub.id,
            "subscription_details": {
                "items": [{"id": item.id, "price": dear.id}],
                "proration_behavior": "always_invoice",
                "proration_date": at,
            },
        }
    )
    assert preview.id is None
    prorations = [
        ln
        for ln in preview.lines.data
        if ln.parent
        and ln.parent.subscription_item_details
        and ln.parent.subscription_item_details.proration
    ]
    assert sorted(ln.amount for ln in prorations) == [-500, 1500]
    assert preview.amount_due == 1000 and preview.total == 1000

    updated = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": item.id, "price": dear.id}],
            "proration_behavior": "always_invoice",
        },
    )
    assert updated["items"].data[0].price.id == dear.id
    invoice = client.v1.invoices.retrieve(str(updated.latest_invoice))
    assert invoice.billing_reason == "subscription_update" and invoice.status == "paid"
    assert 0 < invoice.amount_paid <= 2000

    unchanged = client.v1.subscriptions.update(
        sub.id,
        params={"items": [{"id": item.id, "price": cheap.id}], "proration_behavior": "none"},
    )
    assert unchanged.latest_invoice == updated.latest_invoice


def test_cancel_at_period_end_and_cancel(client: stripe.StripeClient, sandbox: Sandbox) -> None:
    price = _price(client, _product(client).id, 500)
    customer = _customer(client)
    sub = _subscribe(client, customer.id, price.id)
    flagged = client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    assert flagged.cancel_at_period_end is True and flagged.status == "active"
    assert sandbox.renew(sub.id)["status"] == "canceled"

    other = _subscribe(client, customer.id, price.id)
    canceled = client.v1.subscriptions.cancel(other.id)
    assert canceled.status == "canceled" and canceled.ended_at is not None
    deleted = client.v1.events.list(params={"type": "customer.subscription.deleted"}).data
    assert {e.data.object["id"] for e in deleted} == {sub.id, other.id}


def test_renewal_failure_retries_then_recovers(
    client: stripe.StripeClient, sandbox: Sandbox
) -> None:
    price = _price(client, _product(client).id, 1200)
    customer = _customer(client)
    sub = _subscribe(client, customer.id, price.id)
    old_end = sub["items"].data[0].current_period_end
    failing = client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": customer.id}
    )
    client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": failing.id}}
    )

    first = sandbox.renew(sub.id)
    assert first["status"] == "past_due"
    assert first["items"]["data"][0]["current_period_start"] == old_end
    invoice_id = first["latest_invoice"]
    assert client.v1.invoices.retrieve(invoice_id).attempt_count == 1
    second = sandbox.renew(sub.id)
    assert second["latest_invoice"] == invoice_id
    assert client.v1.invoices.retrieve(invoice_id).attempt_count == 2
    failed = client.v1.events.list(params={"type": "invoice.payment_failed"}).data
    assert [e.data.object["attempt_count"] for e in failed] == [2, 1]

    visa = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": visa.id}}
    )
    recovered = sandbox.renew(sub.id)
    assert recovered["status"] == "active"
    assert client.v1.invoices.retrieve(invoice_id).status == "paid"
    paid = client.v1.events.list(params={"types": ["invoice.paid", "invoice.payment_succeeded"]})
    assert len(paid.data) == 4  # creation + recovery, each paid + payment_succeeded

    renewed = sandbox.renew(sub.id)
    assert renewed["latest_invoice"] != invoice_id and renewed["status"] == "active"


def test_event_list_filters_and_shape(client: stripe.StripeClient) -> None:
    price = _price(client, _product(client).id, 700)
    _subscribe(client, _customer(client).id, price.id)
    events = list(client.v1.events.list(params={"limit": 3}).auto_paging_iter())
    assert len(events) > 5
    assert [e.created for e in events] == sorted((e.created for e in events), reverse=True)
    assert all(e.api_version == stripe.api_version and e.livemode is False for e in events)
    invoice_types = {e.type for e in client.v1.events.list(params={"type": "invoice.*"}).data}
    assert {"invoice.created", "invoice.paid", "invoice.payment_succeeded"} <= invoice_types
    assert all(t.startswith("invoice.") for t in invoice_types)
    now = int(time.time())
    assert client.v1.events.list(params={"created": {"gte": now + 60}}).data == []
    assert client.v1.events.list(params={"created": {"lte": now + 1}}).data
    one = client.v1.events.retrieve(events[0].id)
    assert one.type == events[0].type
    created = client.v1.events.list(params={"type": "customer.subscription.created"}).data[0]
    assert created.data.object["items"]["data"][0]["price"]["id"] == price.id


def test_signed_webhooks_are_delivered(
    client: stripe.StripeClient, sandbox: Sandbox, receiver: Receiver
) -> None:
    sandbox.register_webhook(receiver.url, WEBHOOK_SECRET)
    price = _price(client, _product(client).id, 800)
    sub = _subscribe(client, _customer(client).id, price.id)
    receiver.wait_for(lambda got: any(b"customer.subscription.created" in r.body for r in got))
    events = [
        stripe.Webhook.construct_event(r.body.decode(), r.signature, WEBHOOK_SECRET, tolerance=300)
        for r in receiver.received
    ]
    types = [e.type for e in events]
    assert {"customer.created", "price.created", "invoice.paid"} <= set(types)
    assert types.index("invoice.paid") + 1 == types.index("invoice.payment_succeeded")
    created = next(e for e in events if e.type == "customer.subscription.created")
    assert created.data.object["id"] == sub.id
    assert created.api_version == stripe.api_version
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            receiver.received[0].body.decode(), receiver.received[0].signature, "whsec_wrong"
        )


def test_dead_webhook_receiver_does_not_block(
    client: stripe.StripeClient, sandbox: Sandbox, receiver: Receiver
) -> None:
    sandbox.register_webhook("http://127.0.0.1:9/unreachable", WEBHOOK_SECRET, "dead")
    sandbox.register_webhook(receiver.url, WEBHOOK_SECRET, "live")
    started = time.monotonic()
    customer = client.v1.customers.create(params={"name": "Still works"})
    assert time.monotonic() - started < 1.0
    receiver.wait_for(lambda got: len(got) >= 1)
    undelivered = client.v1.events.list(params={"delivery_success": False}).data
    assert [e.data.object["id"] for e in undelivered] == [customer.id]
    with pytest.raises(Exception, match="Webhook URLs must be"):
        sandbox.register_webhook("http://example.com/hook", WEBHOOK_SECRET, "remote")


def test_sandbox_binds_loopback_only(sandbox: Sandbox) -> None:
    assert sandbox.api_base.startswith("http://127.0.0.1:")
    request = urllib.request.Request(sandbox.api_base + "/v1/prices")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 401
    assert json.loads(info.value.read())["error"]["type"] == "invalid_request_error"


def test_idempotency_key_replays_the_first_answer(client: stripe.StripeClient) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "billing:test:same"}
    first = client.v1.customers.create({"email": "a@a.test"}, options)
    second = client.v1.customers.create({"email": "a@a.test"}, options)
    assert first.id == second.id
    assert len(client.v1.customers.list({"limit": 100}).data) == 1
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create({"email": "other@a.test"}, options)


def test_wildcard_event_filter_with_many_matches(client: stripe.StripeClient) -> None:
    for n in range(3):
        client.v1.customers.create({"email": f"c{n}@a.test"})
    events = client.v1.events.list({"type": "customer.*", "limit": 100}).data
    assert len(events) >= 3
    assert all(event.type.startswith("customer.") for event in events)
