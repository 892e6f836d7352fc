"""The gateway's types for the support desk: invoices, the payment history, refunds.

Kept apart from :mod:`.types` (the subscription and catalogue types) so each stays small. Like
those, they are frozen dataclasses holding only what the tool shows or acts on, already
normalised across API versions (see :mod:`.support_converters`); nothing here imports stripe.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

RefundReason = Literal["duplicate", "fraudulent", "requested_by_customer"]
"""Stripe's reasons for a refund."""


@dataclass(frozen=True)
class InvoiceLineInfo:
    """One line of an invoice."""

    description: str | None
    amount: int
    currency: str
    quantity: int | None
    period_start: datetime | None
    period_end: datetime | None


@dataclass(frozen=True)
class InvoiceInfo:
    """An invoice and where its collection stands.

    ``subscription_id`` is read from ``parent.subscription_details`` (2025-03-31 and later) or
    from ``subscription`` (before). Why a payment failed is on the payment (:class:`PaymentRecord`),
    named by ``payment_intent_id`` (``payments`` from 2025-03-31, ``payment_intent`` before).
    """

    id: str
    number: str | None
    status: str
    customer_id: str
    subscription_id: str | None
    currency: str
    amount_due: int
    amount_paid: int
    amount_remaining: int
    attempt_count: int
    next_payment_attempt: datetime | None
    billing_reason: str | None
    hosted_invoice_url: str | None
    created: datetime | None
    period_start: datetime | None
    period_end: datetime | None
    lines: tuple[InvoiceLineInfo, ...] = ()
    payment_intent_id: str | None = None


@dataclass(frozen=True)
class PaymentRecord:
    """One payment of the history: a PaymentIntent (or a bare Charge) with its charge's state.

    ``id`` is what a refund names (``pi_...`` or ``ch_...``); ``refundable`` is what was
    captured and not yet refunded.
    """

    id: str
    customer_id: str | None
    created: datetime | None
    amount: int
    currency: str
    status: str
    description: str | None
    charge_id: str | None
    amount_captured: int
    amount_refunded: int
    decline_code: str | None = None
    failure: str | None = None

    @property
    def refundable(self) -> int:
        return max(0, self.amount_captured - self.amount_refunded)


@dataclass(frozen=True)
class RefundInfo:
    """A refund of (part of) a payment."""

    id: str
    amount: int
    currency: str
    status: str
    reason: str | None
    charge_id: str | None
    payment_intent_id: str | None
    metadata: dict[str, str]
