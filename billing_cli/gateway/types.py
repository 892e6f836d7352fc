"""The small, frozen types the gateway hands to services instead of Stripe objects.

Stripe objects never leave the gateway (STYLE habit 2): services and tests work with these plain
dataclasses, which hold only the fields the tool acts on, already normalised across API versions
(the billing period is read from the subscription or its first item, timestamps become UTC
datetimes). Nothing here imports stripe, so services can import it without slowing the CLI down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Interval = Literal["day", "week", "month", "year"]
"""Billing frequency of a recurring price."""

ProrationBehavior = Literal["create_prorations", "none", "always_invoice"]
"""How Stripe bills a mid-period price change."""

Metadata = dict[str, str]


@dataclass(frozen=True)
class ProductInfo:
    """A Stripe Product: what a plan is called in Stripe."""

    id: str
    name: str
    active: bool
    metadata: Metadata = field(default_factory=dict)


@dataclass(frozen=True)
class PriceInfo:
    """A Stripe Price; ``interval`` is None for a one-time price."""

    id: str
    product_id: str
    unit_amount: int | None
    currency: str
    interval: str | None
    interval_count: int | None
    active: bool
    lookup_key: str | None
    metadata: Metadata = field(default_factory=dict)


@dataclass(frozen=True)
class CustomerInfo:
    """A Stripe Customer; a deleted customer keeps its id with ``deleted=True`` and no details."""

    id: str
    email: str | None
    name: str | None
    metadata: Metadata
    default_payment_method: str | None
    deleted: bool = False


@dataclass(frozen=True)
class PaymentMethodInfo:
    """A saved payment method; for a non-card method ``brand`` is the method type."""

    id: str
    brand: str
    last4: str | None
    exp_month: int | None
    exp_year: int | None


@dataclass(frozen=True)
class SubscriptionInfo:
    """A Stripe Subscription reduced to its first (and, for this tool, only) item.

    ``price`` is the first item's Price when Stripe sent it as an object (bulk lists ask for it
    expanded), so a report can describe a price no plan knows without another request.
    """

    id: str
    customer_id: str
    status: str
    price_id: str | None
    item_id: str | None
    current_period_start: datetime | None
    current_period_end: datetime | None
    trial_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    latest_invoice_id: str | None
    created: datetime | None
    metadata: Metadata = field(default_factory=dict)
    # The item's price as Stripe bills it (a subscription keeps an older price after a plan's
    # price changes, so the plan's current amount is not necessarily what it pays).
    price_amount: int | None = None
    price_currency: str | None = None
    price_metadata: Metadata = field(default_factory=dict)
    price: PriceInfo | None = None


@dataclass(frozen=True)
class PreviewLine:
    """One line of a previewed invoice; ``proration`` marks the lines a price change creates."""

    description: str | None
    amount: int
    currency: str
    proration: bool
    price_id: str | None
    period_start: datetime | None
    period_end: datetime | None


@dataclass(frozen=True)
class InvoicePreview:
    """What the next invoice would be after a change: the total and the proration part of it."""

    amount_due: int
    currency: str
    proration_amount: int
    lines: tuple[PreviewLine, ...] = ()


@dataclass(frozen=True)
class PaymentInfo:
    """A one-off charge (a PaymentIntent) and where it ended up."""

    id: str
    amount: int
    currency: str
    status: str
    description: str | None
    metadata: Metadata = field(default_factory=dict)
    failure: str | None = None


@dataclass(frozen=True)
class WebhookEndpointInfo:
    """A Stripe webhook endpoint: where Stripe posts events, which ones, in which API version.

    ``secret`` (``whsec_...``) is only ever present in the answer to the creation, the one time
    Stripe shows it; ``repr`` leaves it out so it cannot reach a log line by accident.
    """

    id: str
    url: str
    enabled_events: tuple[str, ...]
    status: str  # "enabled" | "disabled"
    api_version: str | None
    description: str | None = None
    metadata: Metadata = field(default_factory=dict)
    secret: str | None = field(default=None, repr=False, compare=False)

    @property
    def enabled(self) -> bool:
        return self.status == "enabled"


@dataclass(frozen=True)
class AccountMode:
    """What a read-only call says about the key: whether it acts on live or test data."""

    livemode: bool
