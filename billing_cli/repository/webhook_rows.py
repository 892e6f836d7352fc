"""The webhook engine's statements on ``tenant_subscription``, ``tenant`` and ``notification``.

The engine applies one event per transaction, thousands per second on a replay, so it reads the
tenant's subscription row and tenant in one locked, joined SELECT into plain records
(:class:`SubscriptionRecord`, :class:`TenantRecord`) and writes back only the columns that
changed with one Core UPDATE, instead of loading ORM objects and flushing a unit of work. The
statements are built once at import and run on the session's connection; rare paths that need
ORM objects (a suspension's audit entry) load them through the other repository modules in the
same transaction.

The locking reads take an optional :class:`~billing_cli.repository.ledger.PendingClaim`
(PostgreSQL only): the first read of an event then carries the engine's ledger claim as a
data-modifying CTE, ``WITH claim AS (INSERT ... ON CONFLICT DO NOTHING RETURNING id), found AS
(<the locked read>) SELECT (SELECT id FROM claim), found.* FROM (one row) LEFT JOIN found``, so
claim and read cost one round trip and the answer always has one row. When the claim inserted
nothing the read raises :class:`~billing_cli.repository.ledger.ClaimTaken` before the handler
changes anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session

from billing_cli.models import (
    Notification,
    SubscriptionPlan,
    Tenant,
    TenantSubscription,
    utcnow,
)
from billing_cli.repository import ledger
from billing_cli.repository.batch_cache import BatchCache, Found, Miss, batch_of
from billing_cli.repository.batch_cache import SubscriptionRecord as SubscriptionRecord
from billing_cli.repository.batch_cache import TenantRecord as TenantRecord
from billing_cli.repository.ledger import PendingClaim

_ROWS: sa.Table = TenantSubscription.metadata.tables[TenantSubscription.__tablename__]
_TENANTS: sa.Table = Tenant.metadata.tables[Tenant.__tablename__]
_PLANS: sa.Table = SubscriptionPlan.metadata.tables[SubscriptionPlan.__tablename__]
_NOTIFICATIONS: sa.Table = Notification.metadata.tables[Notification.__tablename__]


_RECORD_FIELDS = tuple(field.name for field in fields(SubscriptionRecord))
_TENANT_COLUMNS = (
    _TENANTS.c.id,
    _TENANTS.c.slug,
    _TENANTS.c.name,
    _TENANTS.c.email,
    _TENANTS.c.status,
    _TENANTS.c.suspended_by,
    _TENANTS.c.suspended_at,
    _TENANTS.c.suspension_reason,
    _TENANTS.c.created_at,
)
_JOINED = sa.select(*(_ROWS.c[name] for name in _RECORD_FIELDS), *_TENANT_COLUMNS).join_from(
    _ROWS, _TENANTS, _TENANTS.c.id == _ROWS.c.tenant_id
)
_BY_SUBSCRIPTION = _JOINED.where(
    _ROWS.c.stripe_subscription_id == sa.bindparam("value")
).with_for_update()
_BY_CUSTOMER = (
    _JOINED.where(_ROWS.c.stripe_customer_id == sa.bindparam("value"))
    .order_by(_ROWS.c.id)
    .limit(1)
    .with_for_update()
)
_BY_DELETED_CUSTOMER = (
    _JOINED.where(_ROWS.c.deleted_customer_id == sa.bindparam("value"))
    .order_by(_ROWS.c.id)
    .limit(1)
    .with_for_update()
)
_BY_TENANT = _JOINED.where(_ROWS.c.tenant_id == sa.bindparam("value")).with_for_update()
_TENANT_BY_SLUG = (
    sa.select(*_TENANT_COLUMNS).where(_TENANTS.c.slug == sa.bindparam("slug")).with_for_update()
)
_UPDATE_ROW = _ROWS.update().where(_ROWS.c.id == sa.bindparam("row_id"))
_INSERT_ROW = _ROWS.insert().returning(_ROWS.c.id)
_PLAN_FOR_PRICE = (
    sa.select(_PLANS.c.id)
    .where(_PLANS.c.stripe_price_id == sa.bindparam("price_id"))
    .order_by(_PLANS.c.id)
    .limit(1)
)
_INSERT_NOTIFICATION = _NOTIFICATIONS.insert()
_MERGED: dict[tuple[str, tuple[str, ...]], sa.Select[Any]] = {}
_READS = {
    "subscription": _BY_SUBSCRIPTION,
    "customer": _BY_CUSTOMER,
    "deleted_customer": _BY_DELETED_CUSTOMER,
    "slug": _TENANT_BY_SLUG,
}
_UNSENT_NOTICES = sa.select(_NOTIFICATIONS.c.id, _NOTIFICATIONS.c.payload).where(
    _NOTIFICATIONS.c.tenant_id == sa.bindparam("tenant_id"),
    _NOTIFICATIONS.c.kind == sa.bindparam("kind"),
    _NOTIFICATIONS.c.sent_at.is_(None),
    _NOTIFICATIONS.c.withdrawn_at.is_(None),
)
CANCELED_REASON = "the subscription was canceled"


def withdrawn_values() -> dict[str, Any]:
    """What a notice withdrawn by a cancellation gets (kept, with its reason, for `list`)."""
    return {"withdrawn_at": utcnow(), "withdrawn_reason": CANCELED_REASON}


def withdraw_statement(ids: Sequence[int]) -> sa.Update:
    """Mark unsent notices withdrawn."""
    return (
        _NOTIFICATIONS.update()
        .where(_NOTIFICATIONS.c.id.in_(ids), _NOTIFICATIONS.c.sent_at.is_(None))
        .values(**withdrawn_values())
    )


def _split(found: Sequence[Any]) -> Found:
    count = len(_RECORD_FIELDS)
    record = SubscriptionRecord(**dict(zip(_RECORD_FIELDS, found[:count], strict=True)))
    return record, TenantRecord(*found[count:])


def _merged(read: str, columns: tuple[str, ...]) -> sa.Select[Any]:
    """The locked read ``read`` carrying the claim of these ledger columns (PostgreSQL)."""
    statement = _MERGED.get((read, columns))
    if statement is None:
        claim = ledger.claim_cte(columns)
        found = _READS[read].cte("found")
        claimed = sa.select(sa.select(claim.c.id).scalar_subquery().label("claimed_id")).subquery(
            "claimed"
        )
        statement = sa.select(claimed.c.claimed_id, *found.c).select_from(
            claimed.outerjoin(found, sa.true())
        )
        _MERGED[(read, columns)] = statement
    return statement


def _read(
    session: Session, read: str, parameters: dict[str, Any], claim: PendingClaim | None
) -> Sequence[Any] | None:
    """The first row of a locked read, with the pending claim if one is given and unsent."""
    connection = session.connection()
    if claim is None or claim.settled:
        return connection.execute(_READS[read], parameters).first()
    statement = _merged(read, tuple(claim.values))
    parameters = {**parameters, **ledger.claim_parameters(claim.values)}
    row = connection.execute(statement, parameters).first()
    assert row is not None  # the outer join keeps the one row of the claim's answer
    claim.settled, claim.new_id = True, row[0]
    if claim.new_id is None:
        raise ledger.ClaimTaken(claim.values["stripe_event_id"])
    # every read's first column is a non-null id: None means the read found nothing
    return None if row[1] is None else row[1:]


def lock_by_subscription(
    *, session: Session, subscription_id: str, claim: PendingClaim | None = None
) -> Found | None:
    """The row holding this Stripe subscription id and its tenant, both locked."""
    return _lock(
        session,
        "subscription",
        subscription_id,
        claim,
        lambda b: b.by_subscription(subscription_id),
    )


def lock_by_customer(
    *, session: Session, customer_id: str, claim: PendingClaim | None = None
) -> Found | None:
    """The (first) row holding this Stripe customer id and its tenant, both locked."""
    return _lock(session, "customer", customer_id, claim, lambda b: b.by_customer(customer_id))


def lock_by_deleted_customer(
    *, session: Session, customer_id: str, claim: PendingClaim | None = None
) -> Found | None:
    """The row whose customer ``customer.deleted`` removed, and its tenant, both locked."""
    return _lock(
        session,
        "deleted_customer",
        customer_id,
        claim,
        lambda b: b.by_customer(customer_id, deleted=True),
    )


def _lock(
    session: Session,
    read: str,
    value: str,
    claim: PendingClaim | None,
    cached: Callable[[BatchCache], Found | Miss | None],
) -> Found | None:
    """One locked read by a key: in a replay batch, the cache's answer when it has one; a key
    the batch did not name flushes the batch first, so the database agrees with the cache."""
    batch = batch_of(session)
    if batch is not None:
        answer = cached(batch)
        if not isinstance(answer, Miss):
            return answer
        batch.flush()
    return _found(session, _read(session, read, {"value": value}, claim))


def _found(session: Session, found: Sequence[Any] | None) -> Found | None:
    """A row read from the database; in a replay batch, its cached copy (now cached)."""
    if found is None:
        return None
    batch = batch_of(session)
    return _split(found) if batch is None else batch.add_found(found)


def lock_by_tenant_slug(
    *, session: Session, slug: str, claim: PendingClaim | None = None
) -> tuple[SubscriptionRecord | None, TenantRecord] | None:
    """The tenant with this slug (locked) and its row (locked) if it has one."""
    batch = batch_of(session)
    if batch is not None:
        cached = batch.by_slug(slug)
        if not isinstance(cached, Miss):
            return cached
        batch.flush()
    connection = session.connection()
    tenant = _read(session, "slug", {"slug": slug}, claim)
    if tenant is None:
        return None
    if batch is not None:
        record = batch.add_tenant(tenant)
        row = batch.row_of(record.id)
        if row is not None:
            return row
    found = connection.execute(_BY_TENANT, {"value": tenant[0]}).first()
    if found is None:
        return None, TenantRecord(*tenant)
    return _found(session, found)


def attach_tenant(*, session: Session, record: TenantRecord) -> Tenant:
    """The ORM tenant for a record read (and locked) in this transaction, without a query.

    For the rare paths that change the tenant through the ORM (suspension, reactivation, name
    and e-mail sync, which audit it); the session's own object is returned if it has one.
    """
    key = session.identity_key(Tenant, record.id)
    existing = session.identity_map.get(key)
    if isinstance(existing, Tenant):
        tenant = existing
    else:
        tenant = Tenant(**{field.name: getattr(record, field.name) for field in fields(record)})
        make_transient_to_detached(tenant)
        session.add(tenant)
    batch = batch_of(session)
    if batch is not None:
        batch.attach(tenant)
    return tenant


def update_row(*, session: Session, row_id: int, values: dict[str, Any]) -> None:
    """Set only the given columns of one ``tenant_subscription`` row."""
    batch = batch_of(session)
    if batch is not None:
        batch.update_row(row_id, values)
        return
    # The SET clause follows the parameters' keys; the compiled form is cached per key set.
    session.connection().execute(_UPDATE_ROW, {**values, "row_id": row_id})


def insert_row(*, session: Session, values: dict[str, Any]) -> int:
    """Insert a ``tenant_subscription`` row (``id`` left to the database); its new id."""
    values = {name: value for name, value in values.items() if name != "id"}
    new_id: int = session.connection().execute(_INSERT_ROW, values).scalar_one()
    batch = batch_of(session)
    if batch is not None:
        batch.inserted_row(new_id, values)
    return new_id


def plan_id_for_price(*, session: Session, price_id: str) -> int | None:
    """The id of the plan sold at this Stripe price, if any."""
    batch = batch_of(session)
    if batch is not None and price_id in batch.plans:
        return batch.plans[price_id]
    plan_id: int | None = (
        session.connection().execute(_PLAN_FOR_PRICE, {"price_id": price_id}).scalar()
    )
    if batch is not None:
        batch.plans[price_id] = plan_id
    return plan_id


def add_notification(
    *, session: Session, tenant_id: int, kind: str, payload: dict[str, Any], created_at: datetime
) -> None:
    """Put one message in the outbox."""
    values = {"tenant_id": tenant_id, "kind": kind, "payload": payload, "created_at": created_at}
    values |= {"withdrawn_at": None, "withdrawn_reason": None}  # set if the batch withdraws it
    batch = batch_of(session)
    if batch is not None:
        batch.add_notification(values)
        return
    session.connection().execute(_INSERT_NOTIFICATION, values)


def withdraw_notifications(
    *, session: Session, tenant_id: int, kind: str, subscription_id: str
) -> int:
    """Withdraw the tenant's unsent notifications of ``kind`` about one subscription; how many.

    Sent ones stay: they are facts. The payload names the subscription (JSON on both backends,
    so the match is made here; a tenant has a handful of unsent notifications at most).
    """
    batch = batch_of(session)
    if batch is not None:
        if batch.knows_tenant(tenant_id):
            return batch.withdraw(tenant_id=tenant_id, kind=kind, subscription_id=subscription_id)
        batch.flush()  # notices added earlier in the batch are in its buffer
    connection = session.connection()
    found = connection.execute(_UNSENT_NOTICES, {"tenant_id": tenant_id, "kind": kind}).all()
    ids = [row[0] for row in found if (row[1] or {}).get("subscription") == subscription_id]
    if ids:
        connection.execute(withdraw_statement(ids))
    return len(ids)
