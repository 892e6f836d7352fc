"""Builders for realistic Stripe event payloads, from Stripe's own example objects.

The objects start from ``/work/shared/stripe/fixtures3.json`` (Stripe's OpenAPI fixtures, current
API shape) and are reshaped to say only what a test cares about. ``shape="legacy"`` gives the form
events had before API version 2025-03-31 (the billing period on the subscription,
``invoice.subscription``); ``shape="current"`` the form after it (the period on
``items.data[]``, ``invoice.parent.subscription_details.subscription``).

Used by the webhook engine tests, the HTTP endpoint tests and ``bench/replay.py``; every builder
returns a plain JSON-able dict exactly as Stripe would POST it.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

Shape = Literal["current", "legacy"]

FIXTURES = Path(
    os.environ.get("BILLING_STRIPE_FIXTURES", "/work/shared/stripe/fixtures3.json")
).resolve()
CURRENT_API_VERSION = "2026-10-28.endive"
LEGACY_API_VERSION = "2024-06-20"
DEFAULT_CREATED = 1_767_225_600  # 2026-01-01T00:00:00Z

_counter = itertools.count(1)


@lru_cache(maxsize=1)
def _resources() -> dict[str, Any]:
    with FIXTURES.open(encoding="utf-8") as handle:
        resources: dict[str, Any] = json.load(handle)["resources"]
    return resources


def fixture(name: str) -> dict[str, Any]:
    """A deep copy of one of Stripe's example objects (``subscription``, ``invoice``, ...)."""
    return copy.deepcopy(_resources()[name])


def next_id(prefix: str) -> str:
    """A unique, Stripe-looking id for this test process."""
    return f"{prefix}_test{next(_counter):08d}"


def api_version(shape: Shape) -> str:
    return CURRENT_API_VERSION if shape == "current" else LEGACY_API_VERSION


def event(
    type: str,
    obj: dict[str, Any],
    *,
    event_id: str | None = None,
    created: int = DEFAULT_CREATED,
    shape: Shape = "current",
    livemode: bool = False,
    previous_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Wrap ``obj`` in an event envelope, as Stripe delivers it to an endpoint."""
    envelope = fixture("event")
    envelope.update(
        id=event_id or next_id("evt"),
        type=type,
        created=created,
        livemode=livemode,
        api_version=api_version(shape),
        pending_webhooks=1,
        request={"id": None, "idempotency_key": None},
    )
    envelope["data"] = {"object": obj}
    if previous_attributes is not None:
        envelope["data"]["previous_attributes"] = previous_attributes
    return envelope


def subscription_object(
    *,
    subscription_id: str,
    customer_id: str,
    status: str,
    price_id: str,
    period_start: int,
    period_end: int,
    created: int = DEFAULT_CREATED,
    trial_end: int | None = None,
    cancel_at_period_end: bool = False,
    canceled_at: int | None = None,
    tenant: str | None = None,
    shape: Shape = "current",
    livemode: bool = False,
) -> dict[str, Any]:
    """A Subscription with one item on ``price_id``, in the given API shape."""
    sub = fixture("subscription")
    item = sub["items"]["data"][0]
    item.update(id=f"si_{subscription_id.removeprefix('sub_')}", subscription=subscription_id)
    item["price"].update(id=price_id, livemode=livemode)
    item["plan"].update(id=price_id, livemode=livemode, interval_count=1, currency="usd")
    sub.update(
        id=subscription_id,
        customer=customer_id,
        status=status,
        created=created,
        start_date=created,
        billing_cycle_anchor=period_start,
        trial_start=created if trial_end is not None else None,
        trial_end=trial_end,
        cancel_at_period_end=cancel_at_period_end,
        cancel_at=period_end if cancel_at_period_end else None,
        canceled_at=canceled_at,
        ended_at=canceled_at if status == "canceled" else None,
        latest_invoice=None,
        livemode=livemode,
        metadata={"tenant": tenant} if tenant else {},
        next_pending_invoice_item_invoice=None,
    )
    sub["items"]["url"] = f"/v1/subscription_items?subscription={subscription_id}"
    if shape == "current":
        item.update(current_period_start=period_start, current_period_end=period_end)
    else:
        item.pop("current_period_start", None)
        item.pop("current_period_end", None)
        sub.update(
            current_period_start=period_start,
            current_period_end=period_end,
            plan=copy.deepcopy(item["plan"]),
            quantity=1,
        )
    return sub


def subscription_event(
    type: str,
    *,
    event_id: str | None = None,
    created: int = DEFAULT_CREATED,
    subscription_id: str,
    customer_id: str,
    status: str,
    price_id: str,
    period_start: int | None = None,
    period_end: int | None = None,
    trial_end: int | None = None,
    cancel_at_period_end: bool = False,
    canceled_at: int | None = None,
    tenant: str | None = None,
    shape: Shape = "current",
    livemode: bool = False,
    subscription_created: int | None = None,
) -> dict[str, Any]:
    """A ``customer.subscription.*`` event.

    ``subscription_created`` is the Subscription object's own ``created``, the same on every
    event about one subscription (the webhook engine ranks subscriptions by it); by default the
    earlier of the event's time and the period start.
    """
    start = period_start if period_start is not None else created
    end = period_end if period_end is not None else start + 30 * 86_400
    if subscription_created is None:
        subscription_created = min(created, start)
    obj = subscription_object(
        subscription_id=subscription_id,
        customer_id=customer_id,
        status=status,
        price_id=price_id,
        period_start=start,
        period_end=end,
        created=subscription_created,
        trial_end=trial_end,
        cancel_at_period_end=cancel_at_period_end,
        canceled_at=canceled_at,
        tenant=tenant,
        shape=shape,
        livemode=livemode,
    )
    return event(type, obj, event_id=event_id, created=created, shape=shape, livemode=livemode)


def invoice_object(
    *,
    subscription_id: str | None,
    customer_id: str,
    attempt_count: int,
    paid: bool,
    invoice_id: str | None = None,
    amount: int = 2000,
    created: int = DEFAULT_CREATED,
    period_start: int | None = None,
    period_end: int | None = None,
    shape: Shape = "current",
    livemode: bool = False,
    upcoming: bool = False,
    tenant: str | None = None,
) -> dict[str, Any]:
    """An Invoice for one subscription period; ``upcoming`` gives the id-less preview form."""
    inv = fixture("invoice")
    start = period_start if period_start is not None else created
    end = period_end if period_end is not None else start + 30 * 86_400
    status = "draft" if upcoming else ("paid" if paid else "open")
    inv.update(
        id=None if upcoming else (invoice_id or next_id("in")),
        customer=customer_id,
        created=created,
        livemode=livemode,
        attempt_count=attempt_count,
        attempted=attempt_count > 0,
        amount_due=amount,
        amount_paid=amount if paid else 0,
        amount_remaining=0 if paid else amount,
        status=status,
        billing_reason="subscription_cycle",
        period_start=start,
        period_end=end,
        next_payment_attempt=None if paid else created + 3 * 86_400,
        subtotal=amount,
        total=amount,
    )
    inv["lines"]["data"][0].update(amount=amount, period={"start": start, "end": end})
    # Stripe copies the subscription's metadata onto its invoices.
    details = {"metadata": {"tenant": tenant} if tenant else {}, "subscription": subscription_id}
    if shape == "current":
        inv.pop("subscription", None)
        inv["parent"] = {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": details,
        }
    else:
        inv.pop("parent", None)
        inv["subscription"] = subscription_id
        inv["subscription_details"] = {"metadata": details["metadata"]}
        inv["paid"] = paid
        inv["charge"] = None
        inv["payment_intent"] = None
    return inv


def invoice_event(
    type: str,
    *,
    event_id: str | None = None,
    created: int = DEFAULT_CREATED,
    subscription_id: str | None,
    customer_id: str,
    attempt_count: int,
    paid: bool,
    amount: int = 2000,
    tenant: str | None = None,
    shape: Shape = "current",
    livemode: bool = False,
) -> dict[str, Any]:
    """An ``invoice.*`` event; ``invoice.upcoming`` gets an invoice without an id."""
    obj = invoice_object(
        tenant=tenant,
        subscription_id=subscription_id,
        customer_id=customer_id,
        attempt_count=attempt_count,
        paid=paid,
        amount=amount,
        created=created,
        shape=shape,
        livemode=livemode,
        upcoming=type == "invoice.upcoming",
    )
    return event(type, obj, event_id=event_id, created=created, shape=shape, livemode=livemode)


def customer_event(
    type: str,
    *,
    event_id: str | None = None,
    created: int = DEFAULT_CREATED,
    customer_id: str,
    email: str | None = None,
    name: str | None = None,
    tenant: str | None = None,
    shape: Shape = "current",
    livemode: bool = False,
) -> dict[str, Any]:
    """A ``customer.*`` event; ``customer.deleted`` carries a customer with ``deleted: true``."""
    obj = fixture("customer")
    obj.update(
        id=customer_id,
        email=email,
        name=name,
        created=created,
        livemode=livemode,
        metadata={"tenant": tenant} if tenant else {},
        discount=None,
    )
    if type == "customer.deleted":
        obj["deleted"] = True
    return event(type, obj, event_id=event_id, created=created, shape=shape, livemode=livemode)
