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

PauseBehavior = Literal["keep_as_draft", "mark_uncollectible", "void"]
"""What Stripe does with the invoices of a subscription whose collection is paused."""

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
    balance: int = 0  # Stripe's sign: negative is credit the customer has, positive is owed
    currency: str | None = None


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
    pause_behavior: str | None = None  # pause_collection.behavior; None when collecting
    pause_resumes_at: datetime | None = None
    quantity: int = 1
    # The card this subscription's invoices are charged to; it wins over the customer's
    # invoice default (None: the customer's default pays).
    default_payment_method: str | None = None


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
    subtotal: int | None = None
    total: int | None = None
    discount_amount: int = 0  # total_discount_amounts (current) or the old ``discount`` shape
    discounts: tuple[str, ...] = ()  # coupon ids of the discounts that apply
    starting_balance: int = 0  # negative: customer credit applied to this invoice
    next_payment_attempt: datetime | None = None
    period_end: datetime | None = None


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


@dataclass(frozen=True)
class SubscriptionPreview:
    """A change to preview on a subscription's next invoice; all None previews it as it is."""

    trial_end_now: bool = False
    item_id: str | None = None
    quantity: int | None = None
    proration_behavior: ProrationBehavior | None = None
    proration_date: int | None = None
    coupon: str | None = None  # preview with this coupon instead of the current discount
    without_discounts: bool = False  # preview as if the discount were removed


CouponDuration = Literal["once", "repeating", "forever"]
"""How long a coupon's discount lasts once applied."""


@dataclass(frozen=True)
class CouponInfo:
    """A Stripe Coupon: a percentage or an amount off, for once, N months or forever."""

    id: str
    name: str | None
    percent_off: float | None
    amount_off: int | None
    currency: str | None
    duration: str
    duration_in_months: int | None
    valid: bool
    times_redeemed: int = 0
    metadata: Metadata = field(default_factory=dict)


@dataclass(frozen=True)
class DeletedObject:
    """Stripe's answer to a DELETE: only the id and kind of the object that is gone."""

    id: str
    object: str


@dataclass(frozen=True)
class DiscountInfo:
    """A coupon applied to a subscription, from ``start`` until ``end`` (None: forever)."""

    id: str
    coupon: CouponInfo | None
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class BalanceTransactionInfo:
    """One change to a customer's credit balance (Stripe's sign: negative is a credit)."""

    id: str
    amount: int
    currency: str
    ending_balance: int
    description: str | None
    metadata: Metadata = field(default_factory=dict)
