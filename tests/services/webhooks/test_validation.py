"""Hostile values inside signed events: the envelope is refused whole, a customer's fields are
made to fit (``billing_cli.services.webhooks.validation``)."""

from __future__ import annotations

import pytest

from billing_cli.errors import WebhookError
from billing_cli.repository import Database
from billing_cli.services.webhooks import WebhookEngine
from tests import events
from tests.factories import table_snapshot
from tests.services.webhooks.conftest import Acme, state

T0 = 1_790_000_000


def _customer_updated(**fields: str) -> dict[str, object]:
    return events.customer_event("customer.updated", created=T0, customer_id="cus_acme", **fields)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": "evt_\x00"}, "not a Stripe id"),
        ({"id": "e" * 256}, "not a Stripe id"),
        ({"type": "customer.updated\n"}, "type"),
        ({"type": "x" * 101}, "type"),
        ({"created": 10**20}, "out of range"),
        ({"api_version": "2025-03-31\x1b[0m"}, "api_version"),
    ],
)
def test_a_hostile_envelope_is_refused_before_anything_is_stored(
    db: Database, acme: Acme, engine: WebhookEngine, change: dict[str, object], reason: str
) -> None:
    before = table_snapshot(db)
    with pytest.raises(WebhookError, match=reason):
        engine.process({**_customer_updated(email="ap@acme.example"), **change}, source="file")
    assert table_snapshot(db) == before


def test_an_over_long_name_is_cut_to_the_column_and_the_event_processed(
    db: Database, acme: Acme, engine: WebhookEngine
) -> None:
    outcome = engine.process(_customer_updated(name="N" * 250), source="endpoint")
    assert outcome.status == "processed"  # not failed (which would mean a 500 on every retry)
    assert state(db)["tenant"]["name"] == "N" * 200
    assert "name cut to 200 characters" in outcome.reason


@pytest.mark.parametrize("email", ["not-an-address", "a@b.c\nBcc: x@y.z", "x" * 330 + "@a.io"])
def test_an_email_that_is_not_an_address_is_not_synced(
    db: Database, acme: Acme, engine: WebhookEngine, email: str
) -> None:
    kept = state(db)["tenant"]["email"]
    outcome = engine.process(_customer_updated(email=email, name="Acme"), source="endpoint")
    assert outcome.status == "processed"
    assert state(db)["tenant"]["email"] == kept
    assert state(db)["tenant"]["name"] == "Acme"
    assert "is not an address; kept the tenant's" in outcome.reason


def test_escape_sequences_in_a_name_are_not_stored(
    db: Database, acme: Acme, engine: WebhookEngine
) -> None:
    engine.process(_customer_updated(name="\x1b]0;pwned\x07Acme \x1b[31mInc"), source="endpoint")
    assert state(db)["tenant"]["name"] == "Acme Inc"


def test_a_timestamp_out_of_range_inside_the_object_fails_that_event_only(
    db: Database, acme: Acme, engine: WebhookEngine
) -> None:
    event = events.subscription_event(
        "customer.subscription.updated",
        created=T0,
        subscription_id="sub_acme",
        customer_id="cus_acme",
        status="active",
        price_id="price_basic_monthly",
    )
    event["data"]["object"]["trial_end"] = 10**20
    outcome = engine.process(event, source="file")
    assert outcome.status == "failed"
    assert "out of range" in outcome.reason
