"""Reading Stripe event payloads of either API shape into small, typed facts.

Events are rendered in the API version that was current when they were created (STRIPE.md), so
a replay of last month's events or an endpoint pinned to an older version hands us the shape
from before 2025-03-31 (``current_period_*`` on the subscription, ``invoice.subscription``) as
well as the current one (the period on ``items.data[]``,
``invoice.parent.subscription_details.subscription``). Everything shape-dependent lives here, so
the handlers never look at raw JSON.

:func:`parse_event` checks the envelope and raises ``WebhookError`` (the endpoint answers 400 and
stores nothing); the ``read_*`` functions raise ``ValueError`` for a bad field deeper down, which
the engine records as a failed event that can be retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billing_cli.errors import WebhookError
from billing_cli.services.webhooks.validation import check_envelope, check_unix_time
from billing_cli.timeparse import from_unix


@dataclass(frozen=True)
class ParsedEvent:
    """An event envelope whose required fields were checked."""

    id: str
    type: str
    created: int
    api_version: str | None
    livemode: bool
    obj: Mapping[str, Any]
    payload: dict[str, Any]


@dataclass(frozen=True)
class SubscriptionFacts:
    """What the tool keeps of a Subscription, the same for both API shapes."""

    id: str
    created: int  # the Subscription object's own creation time (0 when absent)
    customer_id: str | None
    status: str
    price_id: str | None
    period_start: datetime | None
    period_end: datetime | None
    trial_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    tenant_slug: str | None


@dataclass(frozen=True)
class InvoiceFacts:
    """What the tool keeps of an Invoice; ``id`` is None for ``invoice.upcoming``."""

    id: str | None
    subscription_id: str | None
    customer_id: str | None
    attempt_count: int
    paid: bool
    created: int
    period_end: int
    amount_due: int | None
    currency: str | None
    next_payment_attempt: int | None
    tenant_slug: str | None


@dataclass(frozen=True)
class CustomerFacts:
    """A Customer, or the stub of a deleted one."""

    id: str
    email: str | None
    name: str | None
    deleted: bool
    tenant_slug: str | None


def parse_event(event: object) -> ParsedEvent:
    """Check the envelope: a JSON object with id, type, created, livemode and data.object."""
    if not isinstance(event, Mapping):
        raise WebhookError("malformed event: not a JSON object")
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise WebhookError("malformed event: no id")
    event_type = event.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise WebhookError(f"malformed event {event_id}: no type")
    created = event.get("created")
    if not isinstance(created, int) or isinstance(created, bool) or created < 0:
        raise WebhookError(f"malformed event {event_id}: no created timestamp")
    livemode = event.get("livemode")
    if not isinstance(livemode, bool):
        raise WebhookError(f"malformed event {event_id}: no livemode flag")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(obj, Mapping):
        raise WebhookError(f"malformed event {event_id}: no data.object")
    api_version = event.get("api_version")
    api_version = api_version if isinstance(api_version, str) else None
    check_envelope(
        event_id=event_id, event_type=event_type, created=created, api_version=api_version
    )
    return ParsedEvent(
        id=event_id,
        type=event_type,
        created=created,
        api_version=api_version,
        livemode=livemode,
        obj=obj,
        payload=dict(event),
    )


def read_subscription(obj: Mapping[str, Any]) -> SubscriptionFacts:
    """A Subscription of either shape; the period comes from the first item when it is there."""
    items = _list_data(obj.get("items"))
    first = items[0] if items else {}
    price = first.get("price") or first.get("plan") or obj.get("plan") or {}
    start = first.get("current_period_start", obj.get("current_period_start"))
    end = first.get("current_period_end", obj.get("current_period_end"))
    status = obj.get("status")
    if not isinstance(status, str) or not status:
        raise ValueError("subscription has no status")
    created = obj.get("created")
    return SubscriptionFacts(
        id=_required_id(obj, "subscription"),
        created=max(created, 0)
        if isinstance(created, int) and not isinstance(created, bool)
        else 0,
        customer_id=_id_of(obj.get("customer")),
        status=status,
        price_id=_id_of(price),
        period_start=_time(start, "current_period_start"),
        period_end=_time(end, "current_period_end"),
        trial_end=_time(obj.get("trial_end"), "trial_end"),
        cancel_at_period_end=bool(obj.get("cancel_at_period_end") or False),
        canceled_at=_time(obj.get("canceled_at"), "canceled_at"),
        tenant_slug=_tenant_of(obj.get("metadata")),
    )


def read_invoice(obj: Mapping[str, Any]) -> InvoiceFacts:
    """An Invoice of either shape: its subscription at ``parent.subscription_details`` or at
    ``subscription`` (before 2025-03-31), paid from ``status`` or the old ``paid`` flag."""
    parent = obj.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
    if not isinstance(details, Mapping):
        details = obj.get("subscription_details")  # the older spelling of the metadata copy
    subscription_id = _id_of(details.get("subscription")) if isinstance(details, Mapping) else None
    if subscription_id is None:
        subscription_id = _id_of(obj.get("subscription"))
    metadata = details.get("metadata") if isinstance(details, Mapping) else None
    attempt_count = obj.get("attempt_count", 0)
    if not isinstance(attempt_count, int) or isinstance(attempt_count, bool) or attempt_count < 0:
        raise ValueError(f"invoice attempt_count is not a count: {attempt_count!r}")
    paid = obj.get("status") == "paid" or obj.get("paid") is True
    created = obj.get("created")
    period_end = obj.get("period_end")
    amount = obj.get("amount_due")
    currency = obj.get("currency")
    next_attempt = obj.get("next_payment_attempt")
    invoice_id = obj.get("id")
    return InvoiceFacts(
        id=invoice_id if isinstance(invoice_id, str) and invoice_id else None,
        subscription_id=subscription_id,
        customer_id=_id_of(obj.get("customer")),
        attempt_count=attempt_count,
        paid=paid,
        created=created if isinstance(created, int) else 0,
        period_end=period_end if isinstance(period_end, int) else 0,
        amount_due=amount if isinstance(amount, int) else None,
        currency=currency if isinstance(currency, str) else None,
        next_payment_attempt=next_attempt if isinstance(next_attempt, int) else None,
        tenant_slug=_tenant_of(metadata) or _tenant_of(obj.get("metadata")),
    )


def read_customer(obj: Mapping[str, Any]) -> CustomerFacts:
    """A Customer; ``customer.deleted`` carries one with ``deleted: true``."""
    email = obj.get("email")
    name = obj.get("name")
    return CustomerFacts(
        id=_required_id(obj, "customer"),
        email=email if isinstance(email, str) and email else None,
        name=name if isinstance(name, str) and name else None,
        deleted=obj.get("deleted") is True,
        tenant_slug=_tenant_of(obj.get("metadata")),
    )


def _list_data(value: Any) -> list[Mapping[str, Any]]:
    data = value.get("data") if isinstance(value, Mapping) else None
    return [item for item in data if isinstance(item, Mapping)] if isinstance(data, list) else []


def _required_id(obj: Mapping[str, Any], kind: str) -> str:
    value = obj.get("id")
    if not isinstance(value, str) or not value:
        raise ValueError(f"{kind} has no id")
    return value


def _id_of(value: Any) -> str | None:
    """An id given as a string or as an expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _tenant_of(metadata: Any) -> str | None:
    slug = metadata.get("tenant") if isinstance(metadata, Mapping) else None
    return slug if isinstance(slug, str) and slug else None


def _time(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} is not a Unix timestamp: {value!r}")
    return from_unix(check_unix_time(value, name))
