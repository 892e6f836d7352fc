"""The sandbox's ``/v1/webhook_endpoints`` through stripe-python over real HTTP: the resource
behaves as Stripe's does, and its endpoints receive the sandbox's signed deliveries."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import stripe

if TYPE_CHECKING:
    from tests.sandbox.conftest import Receiver

pytestmark = pytest.mark.sandbox


def _create(client: stripe.StripeClient, url: str, events: list[str]) -> stripe.WebhookEndpoint:
    return client.v1.webhook_endpoints.create(
        params={"url": url, "enabled_events": events, "api_version": stripe.api_version}
    )


def _customer_types(receiver: Receiver, secret: str) -> list[str]:
    return [
        stripe.Webhook.construct_event(r.body.decode(), r.signature, secret, tolerance=300).type
        for r in receiver.received
    ]


def test_create_shows_the_secret_once_then_list_retrieve_update_delete(
    client: stripe.StripeClient,
) -> None:
    created = _create(client, "http://127.0.0.1:9/hook", ["customer.created"])
    assert created.secret.startswith("whsec_")
    assert created.status == "enabled" and created.api_version == stripe.api_version
    listed = client.v1.webhook_endpoints.list().data
    assert [e.id for e in listed] == [created.id]
    assert "secret" not in listed[0]
    assert "secret" not in client.v1.webhook_endpoints.retrieve(created.id)
    updated = client.v1.webhook_endpoints.update(
        created.id, params={"enabled_events": ["*"], "disabled": True}
    )
    assert updated.enabled_events == ["*"] and updated.status == "disabled"
    deleted = client.v1.webhook_endpoints.delete(created.id)
    assert deleted.deleted is True
    assert client.v1.webhook_endpoints.list().data == []
    with pytest.raises(stripe.InvalidRequestError, match="No such webhook endpoint"):
        client.v1.webhook_endpoints.retrieve(created.id)


def test_only_loopback_urls_and_real_event_types(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError, match="Webhook URLs must be"):
        _create(client, "https://example.com/hook", ["*"])
    with pytest.raises(stripe.InvalidRequestError, match="Invalid event type"):
        _create(client, "http://127.0.0.1:9/hook", ["not an event"])


def test_an_endpoint_receives_signed_deliveries_of_its_events_while_enabled(
    client: stripe.StripeClient, receiver: Receiver
) -> None:
    endpoint = _create(client, receiver.url, ["customer.created"])
    client.v1.customers.create(params={"name": "First"})
    client.v1.products.create(params={"name": "Not subscribed"})
    receiver.wait_for(lambda got: len(got) >= 1)
    assert _customer_types(receiver, endpoint.secret) == ["customer.created"]

    client.v1.webhook_endpoints.update(endpoint.id, params={"disabled": True})
    client.v1.customers.create(params={"name": "While disabled"})
    client.v1.webhook_endpoints.update(endpoint.id, params={"disabled": False})
    last = client.v1.customers.create(params={"name": "Enabled again"})
    receiver.wait_for(lambda got: len(got) >= 2)
    # Deliveries go out in creation order: one to the disabled endpoint would come second.
    bodies = [r.body for r in receiver.received]
    assert len(bodies) == 2 and last.id.encode() in bodies[1]
