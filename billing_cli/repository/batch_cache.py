"""What the webhook statements and a replay batch's write-behind share: the floor under both.

:mod:`.ledger` and :mod:`.webhook_rows` answer from a replay batch's cache when the session holds
one (:func:`batch_of`), and :mod:`.write_behind` builds that cache from the same records. The
names all three need live here, below them, so none imports another to reach them: the records
(:class:`SubscriptionRecord`, :class:`TenantRecord`, :class:`LedgerState`), the cache's miss,
the error that aborts a batch, and :class:`BatchCache`, what the statements ask of the cache.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlmodel import Session

from billing_cli.models import Tenant

WRITE_BEHIND_KEY = "billing.write_behind"


@dataclass
class SubscriptionRecord:
    """One ``tenant_subscription`` row as plain values; ``id`` is None until it is inserted.

    It has the same attribute names and types as :class:`TenantSubscription`, so the webhook
    policy's pure functions take either.
    """

    tenant_id: int
    id: int | None = None
    plan_id: int | None = None
    stripe_customer_id: str | None = None
    stripe_subscription_id: str | None = None
    status: str | None = None
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    trial_end: datetime | None = None
    cancel_at_period_end: bool = False
    canceled_at: datetime | None = None
    failed_payment_attempts: int = 0
    last_event_created: int | None = None
    updated_at: datetime | None = None
    stripe_price_id: str | None = None
    stripe_status: str | None = None
    subscription_event_key: str | None = None
    payment_event_key: str | None = None
    customer_event_key: str | None = None
    deleted_customer_id: str | None = None
    pause_collection: str | None = None

    def values(self) -> dict[str, Any]:
        """Every column's value, keyed by column name."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class TenantRecord:
    """A ``tenant`` row as plain values: what the engine decides a suspension or a sync on."""

    id: int
    slug: str
    name: str
    email: str
    status: str
    suspended_by: str | None
    suspended_at: datetime | None
    suspension_reason: str | None
    created_at: datetime | None


class Miss:
    """What a replay batch's cache answers for a key its events did not name: ask the database."""


MISS = Miss()


Found = tuple[SubscriptionRecord, TenantRecord]


@dataclass
class LedgerState:
    """A ledger row as the batch knows it (kept current as outcomes are buffered)."""

    id: int
    status: str
    attempts: int
    event_id: str


class BatchAbort(BaseException):
    """An error inside a batch that only re-running its events one by one can handle.

    A BaseException so that the engine's own ``except Exception`` (which records a parked
    event failed and goes on) cannot swallow it: the whole batch must be rolled back.
    """


class BatchCache(Protocol):
    """What the webhook statements ask of a replay batch's cache (:class:`.write_behind.WriteBehind`
    is the one implementation)."""

    locked_customers: frozenset[str]
    plans: dict[str, int | None]

    def flush(self) -> None: ...
    def take_claim(self, event_id: str) -> int | None: ...
    def ledger_entry(self, event_id: str) -> LedgerState | None: ...
    def update_ledger(self, row_id: int, values: Mapping[str, Any]) -> None: ...
    def remember_ledger(self, row_id: int, status: str, attempts: int, event_id: str) -> None: ...
    def by_subscription(self, subscription_id: str) -> Found | Miss | None: ...
    def by_customer(self, customer_id: str, *, deleted: bool = False) -> Found | Miss | None: ...
    def by_slug(
        self, slug: str
    ) -> tuple[SubscriptionRecord | None, TenantRecord] | Miss | None: ...
    def add_found(self, found: Sequence[Any]) -> Found: ...
    def add_tenant(self, found: Sequence[Any]) -> TenantRecord: ...
    def row_of(self, tenant_id: int) -> Found | None: ...
    def update_row(self, row_id: int, values: Mapping[str, Any]) -> None: ...
    def inserted_row(self, row_id: int, values: Mapping[str, Any]) -> None: ...
    def add_notification(self, values: dict[str, Any]) -> None: ...
    def withdraw(self, *, tenant_id: int, kind: str, subscription_id: str) -> int: ...
    def knows_tenant(self, tenant_id: int) -> bool: ...
    def attach(self, tenant: Tenant) -> None: ...


def batch_of(session: Session) -> BatchCache | None:
    """The replay batch running in this session (:mod:`.write_behind`), if any."""
    batch: BatchCache | None = session.info.get(WRITE_BEHIND_KEY)
    return batch
