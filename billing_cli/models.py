"""The tenant database's tables (docs/architecture.md, Data model) and the small result types
services return.

Every timestamp is stored and returned as an aware UTC datetime (SQLite keeps no zone, so
:class:`UTCDateTime` adds it back on the way out). Money is an integer in minor units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

TENANT_STATUSES = ("active", "suspended")
SUSPENDED_BY = ("billing", "manual")
SUBSCRIPTION_STATUSES = (
    "trialing",
    "active",
    "past_due",
    "unpaid",
    "canceled",
    "incomplete",
    "incomplete_expired",
    "paused",
)
EVENT_SOURCES = ("endpoint", "replay", "file")
EVENT_STATUSES = ("processed", "failed", "ignored", "skipped", "deferred")
INTENT_STATUSES = ("pending", "succeeded", "failed", "unknown")
OPEN_INTENT_STATUSES = ("pending", "unknown")


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp column that always hands back aware UTC datetimes, on SQLite and PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(UTCDateTime(), nullable=nullable, index=index))


def _json(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=sa.Column(sa.JSON(), nullable=nullable))


class Tenant(SQLModel, table=True):
    """A customer organisation of the SaaS product; its access follows its payment state."""

    __tablename__ = "tenant"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=200)
    email: str = Field(max_length=320)
    status: str = Field(default="active", max_length=16)
    suspended_at: datetime | None = _ts()
    suspension_reason: str | None = Field(default=None, max_length=500)
    suspended_by: str | None = Field(default=None, max_length=16)
    created_at: datetime | None = _ts()


class SubscriptionPlan(SQLModel, table=True):
    """A plan the product sells, mirrored to one Stripe Product and its current Price."""

    __tablename__ = "subscription_plan"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=200)
    amount: int
    currency: str = Field(max_length=3)
    interval: str = Field(max_length=8)
    interval_count: int = 1
    trial_days: int = 0
    active: bool = True
    per_seat: bool = False  # priced per unit: ``subs quantity`` sets the number of seats
    stripe_product_id: str | None = Field(default=None, max_length=255)
    stripe_price_id: str | None = Field(default=None, max_length=255, index=True)
    created_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()


class TenantSubscription(SQLModel, table=True):
    """A tenant's Stripe customer and (at most one) subscription, as last applied locally."""

    __tablename__ = "tenant_subscription"

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", unique=True, index=True)
    plan_id: int | None = Field(default=None, foreign_key="subscription_plan.id")
    stripe_customer_id: str | None = Field(default=None, max_length=255, index=True)
    stripe_subscription_id: str | None = Field(default=None, max_length=255, unique=True)
    status: str | None = Field(default=None, max_length=24)
    current_period_start: datetime | None = _ts()
    current_period_end: datetime | None = _ts()
    trial_end: datetime | None = _ts()
    cancel_at_period_end: bool = False
    canceled_at: datetime | None = _ts()
    failed_payment_attempts: int = 0
    last_event_created: int | None = Field(default=None, sa_type=sa.BigInteger)
    updated_at: datetime | None = _ts()
    # Webhook ordering (billing_cli.services.webhooks.policy): what Stripe last reported, and
    # the order key of the newest event applied to each field group, so a stale event is refused.
    stripe_price_id: str | None = Field(default=None, max_length=255)
    stripe_status: str | None = Field(default=None, max_length=24)
    subscription_event_key: str | None = Field(default=None, max_length=300)
    payment_event_key: str | None = Field(default=None, max_length=300)
    customer_event_key: str | None = Field(default=None, max_length=300)
    # The customer ``customer.deleted`` removed from this row: a late, older event about it
    # (e.g. its ``customer.updated``) still finds the tenant it belonged to.
    deleted_customer_id: str | None = Field(default=None, max_length=255, index=True)
    # Stripe's pause_collection.behavior while collection is paused (None: collecting); part of
    # the subscription snapshot, so it follows the same register (BILLING_PAUSED_ACCESS).
    pause_collection: str | None = Field(default=None, max_length=32)


class WebhookEvent(SQLModel, table=True):
    """The ledger: one row per Stripe event id, with what processing it did.

    ``error`` holds why an event failed, was ignored or was deferred (or why its outcome needs a
    refresh). ``customer_id`` is the Stripe customer a ``deferred`` event names: the event is
    parked until a tenant is linked to that customer (billing_cli.services.webhooks.deferred).
    """

    __tablename__ = "webhook_event"
    # Covering indexes for `billing stats` (billing_cli.repository.stats): its scans of a
    # month of ledger rows read these instead of the rows and their payloads.
    __table_args__ = (
        sa.Index("ix_webhook_event_received_stats", "received_at", "status", "processing_ms"),
        sa.Index("ix_webhook_event_type_received", "type", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    stripe_event_id: str = Field(max_length=255, unique=True, index=True)
    type: str = Field(max_length=100, index=True)
    created: int = Field(sa_type=sa.BigInteger, index=True)
    api_version: str | None = Field(default=None, max_length=64)
    livemode: bool = False
    source: str = Field(max_length=16)
    status: str = Field(max_length=16, index=True)
    attempts: int = 0
    error: str | None = Field(default=None, sa_type=sa.Text)
    received_at: datetime | None = _ts()
    processed_at: datetime | None = _ts()
    payload: dict[str, Any] | None = _json()
    # Engine time from receipt to the ledger row's outcome (commit excluded); `billing stats`.
    processing_ms: float | None = None
    customer_id: str | None = Field(default=None, max_length=255, index=True)


class AuditEntry(SQLModel, table=True):
    """Who changed what, when, with which command, and the state before and after."""

    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime | None = _ts(index=True)
    operator: str = Field(max_length=200)
    command: str = Field(max_length=200)
    arguments: dict[str, Any] | None = _json()
    target: str = Field(max_length=255)
    tenant_slug: str | None = Field(default=None, max_length=64, index=True)
    dry_run: bool = False
    outcome: str = Field(max_length=500)
    before: dict[str, Any] | None = _json()
    after: dict[str, Any] | None = _json()


class Notification(SQLModel, table=True):
    """The outbox: messages for a tenant that another process sends."""

    __tablename__ = "notification"

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    kind: str = Field(max_length=40, index=True)
    payload: dict[str, Any] | None = _json()
    created_at: datetime | None = _ts()
    sent_at: datetime | None = _ts()
    # Delivery by `billing notifications send`: tries so far, the last refusal, when to try
    # again (backoff, or the lease of a send in progress), and when it was given up.
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    next_attempt_at: datetime | None = _ts()
    failed_at: datetime | None = _ts()
    # Withdrawn (never to be sent): its claim no longer held, or a person withdrew it; why.
    withdrawn_at: datetime | None = _ts()
    withdrawn_reason: str | None = Field(default=None, sa_type=sa.Text)


class RejectedDelivery(SQLModel, table=True):
    """Deliveries the endpoint refused, counted per minute and reason (one row each, upserted,
    so a flood of bad requests adds to a counter instead of adding rows)."""

    __tablename__ = "rejected_delivery"
    __table_args__ = (sa.UniqueConstraint("minute", "reason", name="uq_rejected_delivery_minute"),)

    id: int | None = Field(default=None, primary_key=True)
    minute: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
    reason: str = Field(max_length=32)
    count: int = 0


class StripeApiError(SQLModel, table=True):
    """Stripe API errors counted per minute, operation and error class (upserted like
    :class:`RejectedDelivery`); read by `billing stats` and `billing check`."""

    __tablename__ = "stripe_api_error"
    __table_args__ = (
        sa.UniqueConstraint(
            "minute", "operation", "error_class", name="uq_stripe_api_error_minute"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    minute: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False, index=True))
    operation: str = Field(max_length=100)
    error_class: str = Field(max_length=64)
    count: int = 0


class StripeIntent(SQLModel, table=True):
    """The write journal: one row per Stripe write (or multi-step write) the tool means to make.

    The row is committed *before* Stripe is called, and its idempotency keys are derived from its
    id, so a re-run after a timeout or a crash finds it and sends the same keys whatever else was
    committed in between. ``open_scope`` holds ``family:target`` while the intent is open and
    NULL once it is closed; its unique index lets one intent per tenant and operation family be
    open at a time, on SQLite and PostgreSQL alike. ``steps`` keeps the recovery points of a
    multi-step command (customer, payment method, subscription). ``runner`` and ``lease_until``
    say which process is working on it, so an identical command started while the first is
    still waiting on Stripe is refused instead of racing it.
    """

    __tablename__ = "stripe_intent"

    id: str = Field(primary_key=True, max_length=40)
    operation: str = Field(max_length=64, index=True)
    family: str = Field(max_length=32)
    target: str = Field(max_length=255)
    tenant_slug: str | None = Field(default=None, max_length=64, index=True)
    params_hash: str = Field(max_length=64)
    params: dict[str, Any] | None = _json()
    idempotency_key: str = Field(max_length=255)
    status: str = Field(default="pending", max_length=16, index=True)
    open_scope: str | None = Field(default=None, max_length=300, unique=True)
    steps: dict[str, Any] | None = _json()
    stripe_object_id: str | None = Field(default=None, max_length=255)
    error: str | None = Field(default=None, sa_type=sa.Text)
    operator: str = Field(max_length=200)
    command: str = Field(max_length=200)
    attempts: int = 1
    runner: str | None = Field(default=None, max_length=120)
    lease_until: datetime | None = _ts()
    created_at: datetime | None = _ts(index=True)
    updated_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()


@dataclass(frozen=True)
class Invocation:
    """Who runs which command with which arguments; what an audit entry records."""

    operator: str
    command: str
    arguments: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False


@dataclass(frozen=True)
class Change:
    """What a mutating service did, or would do under ``--dry-run``."""

    target: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    dry_run: bool
    changed: bool = True
    message: str = ""
    stripe_writes: tuple[dict[str, Any], ...] = ()
    side_effects: tuple[str, ...] = ()

    @classmethod
    def unchanged(
        cls, target: str, view: dict[str, Any] | None, *, dry_run: bool, message: str
    ) -> Change:
        """Nothing to do: the target is already as asked (before and after are the same)."""
        return cls(target, "none", view, view, dry_run, changed=False, message=message)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "action": self.action,
            "changed": self.changed,
            "dry_run": self.dry_run,
            "message": self.message,
            "before": self.before,
            "after": self.after,
            "stripe_writes": list(self.stripe_writes),
            "side_effects": list(self.side_effects),
        }
