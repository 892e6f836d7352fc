"""The webhook engine's hot-path statements on the ``webhook_event`` ledger.

Every delivery runs these, so they are Core statements built once at import and executed on the
session's connection (no ORM unit of work): claim the event id, or lock the row that already
holds it, then set its outcome. Like every repository function they take the caller's session
and keyword-only arguments; the engine decides what to do with what they return.

:func:`claim` is ``INSERT ... ON CONFLICT (stripe_event_id) DO NOTHING RETURNING id`` (SQLite
>= 3.35 and PostgreSQL): a new event costs no prior SELECT, and on PostgreSQL a concurrent claim
of the same id waits for the first transaction to end and then returns nothing, so the caller
falls back to :func:`lock` and sees the committed row. Reads of the ledger for the CLI live in
:mod:`.events`.

On PostgreSQL the engine saves the claim's round trip: it holds the claim as a
:class:`PendingClaim` and the handler's first locked read of ``tenant_subscription`` carries it
as a data-modifying CTE (:func:`claim_cte`, see :mod:`.webhook_rows`), one statement for both.
That read raises :class:`ClaimTaken` when the claim inserted nothing; :func:`settle` runs a
claim no read carried.

Deferred events (status ``deferred``, see :mod:`billing_cli.services.webhooks.deferred`) are
found again by the customer they name (:func:`parked`); :func:`lock_customer` serialises parking
an event for a customer and linking that customer on PostgreSQL, and :func:`savepoint` lets one
transaction apply several events, each undone alone if it fails.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from billing_cli.models import WebhookEvent
from billing_cli.repository.batch_cache import BatchAbort, batch_of

_TABLE: sa.Table = WebhookEvent.metadata.tables[WebhookEvent.__tablename__]
_CLAIM = {
    "postgresql": postgresql.insert(_TABLE)
    .on_conflict_do_nothing(index_elements=["stripe_event_id"])
    .returning(_TABLE.c.id),
    "sqlite": sqlite.insert(_TABLE)
    .on_conflict_do_nothing(index_elements=["stripe_event_id"])
    .returning(_TABLE.c.id),
}
_LOCK = (
    sa.select(_TABLE.c.id, _TABLE.c.status, _TABLE.c.attempts)
    .where(_TABLE.c.stripe_event_id == sa.bindparam("event_id"))
    .with_for_update()
)
_CLAIM_CTES: dict[tuple[str, ...], sa.CTE] = {}
_UPDATE = _TABLE.update().where(_TABLE.c.id == sa.bindparam("row_id"))
_PARKED_KEYS: sa.Select[Any] = sa.select(
    _TABLE.c.id, _TABLE.c.status, _TABLE.c.attempts, _TABLE.c.stripe_event_id
)
_PARKED_PAYLOADS = sa.select(_TABLE.c.id, _TABLE.c.payload).where(
    _TABLE.c.id.in_(sa.bindparam("row_ids", expanding=True))
)
_PARKED_ORDERS: dict[tuple[str, tuple[tuple[str, int], ...], int], sa.Select[Any]] = {}
PARKED_CHUNK = 500
"""Parked payloads read per statement: a customer's parked events stream in chunks this size."""
_PAYLOAD = sa.select(_TABLE.c.payload).where(_TABLE.c.stripe_event_id == sa.bindparam("event_id"))
_CUSTOMER_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:customer_id, 8))")


@dataclass(frozen=True)
class LedgerEntry:
    """What the engine needs of an event id's existing ledger row."""

    id: int
    status: str
    attempts: int


class ClaimTaken(Exception):
    """A claim carried by another statement inserted nothing: the event id is recorded."""


@dataclass
class PendingClaim:
    """A claim of the event's ledger row not sent yet (PostgreSQL: it rides on a locked read).

    ``settled`` once a statement ran it; ``new_id`` is then the new row's id (None: the id was
    already recorded, and the statement raised :class:`ClaimTaken`).
    """

    values: dict[str, Any]
    settled: bool = False
    new_id: int | None = None


def defers_claims(*, session: Session) -> bool:
    """Whether claims on this session's database can ride on a locked read (PostgreSQL)."""
    return session.get_bind().dialect.name == "postgresql"


def claim_cte(columns: tuple[str, ...]) -> sa.CTE:
    """PostgreSQL's claim as a data-modifying CTE ``claim`` with bind parameters ``claim_<column>``
    (see :func:`claim_parameters`); it returns the new row's ``id``, or no row."""
    cte = _CLAIM_CTES.get(columns)
    if cte is None:
        insert = (
            postgresql.insert(_TABLE)
            .values(
                {name: sa.bindparam(f"claim_{name}", type_=_TABLE.c[name].type) for name in columns}
            )
            .on_conflict_do_nothing(index_elements=["stripe_event_id"])
            .returning(_TABLE.c.id)
        )
        cte = _CLAIM_CTES[columns] = insert.cte("claim")
    return cte


def claim_parameters(values: dict[str, Any]) -> dict[str, Any]:
    """The parameters of :func:`claim_cte` for these ledger values."""
    return {f"claim_{name}": value for name, value in values.items()}


def settle(*, session: Session, pending: PendingClaim) -> int | None:
    """Run a pending claim that no statement carried; the new row's id, or None."""
    if not pending.settled:
        pending.new_id = claim(session=session, values=pending.values)
        pending.settled = True
    return pending.new_id


def claim(*, session: Session, values: dict[str, Any]) -> int | None:
    """Insert the event's ledger row unless its id is recorded; the new row's id, or None.

    On PostgreSQL a claim of an id another open transaction has just claimed waits for that
    transaction: once it commits this returns None, once it rolls back this claim succeeds.
    """
    batch = batch_of(session)
    if batch is not None:
        return batch.take_claim(values["stripe_event_id"])
    connection = session.connection()
    statement = _CLAIM.get(connection.dialect.name)
    if statement is None:
        raise NotImplementedError(
            f"the ledger needs SQLite or PostgreSQL, not {connection.dialect.name}"
        )
    new_id: int | None = connection.execute(statement, values).scalar()
    return new_id


def lock(*, session: Session, event_id: str) -> LedgerEntry | None:
    """The event's existing ledger row, locked (``FOR UPDATE`` on PostgreSQL)."""
    batch = batch_of(session)
    if batch is not None:
        state = batch.ledger_entry(event_id)
        if state is not None:
            return LedgerEntry(state.id, state.status, state.attempts)
        batch.flush()
    found = session.connection().execute(_LOCK, {"event_id": event_id}).first()
    return None if found is None else LedgerEntry(found[0], found[1], found[2])


def update(*, session: Session, row_id: int, values: dict[str, Any]) -> None:
    """Set some columns of one ledger row."""
    batch = batch_of(session)
    if batch is not None:
        batch.update_ledger(row_id, values)
        return
    # The SET clause follows the parameters' keys; the compiled form is cached per key set.
    session.connection().execute(_UPDATE, {**values, "row_id": row_id})


@dataclass(frozen=True)
class ParkedEvent:
    """A ``deferred`` ledger row (locked) with the payload to apply."""

    entry: LedgerEntry
    payload: dict[str, Any]


def parked(
    *, session: Session, customer_id: str, type_rank: Mapping[str, int], other_rank: int
) -> Iterator[ParkedEvent]:
    """The events parked for this customer, locked, in order-key order, as a stream.

    The order key is (``created``, the rank of the type, the event id compared byte by byte):
    ``type_rank`` ranks some types, every other type ranks ``other_rank``. The rows' keys are
    read and locked in one statement, then their payloads :data:`PARKED_CHUNK` at a time, so a
    customer with 100,000 parked events never has all their payloads in memory; inside a
    replay batch the batch's buffers are written before each chunk, so they stay small too.
    """
    batch = batch_of(session)
    connection = session.connection()
    if batch is not None:
        batch.flush()  # events parked earlier in the batch are in the buffers
    statement = _parked_in_order(connection.dialect.name, type_rank, other_rank)
    keys = [tuple(row) for row in connection.execute(statement, {"customer_id": customer_id})]
    for start in range(0, len(keys), PARKED_CHUNK):
        chunk = keys[start : start + PARKED_CHUNK]
        if batch is not None and start:
            batch.flush()
        found = connection.execute(_PARKED_PAYLOADS, {"row_ids": [key[0] for key in chunk]})
        payloads: dict[int, Any] = {row[0]: row[1] for row in found}
        for row_id, status, attempts, event_id in chunk:
            if batch is not None:
                batch.remember_ledger(row_id, status, attempts, event_id)
            yield ParkedEvent(LedgerEntry(row_id, status, attempts), payloads.get(row_id) or {})


def _parked_in_order(dialect: str, type_rank: Mapping[str, int], other_rank: int) -> sa.Select[Any]:
    """The locked read of a customer's parked keys, sorted by the order key in SQL (the ids in
    code-point order: ``COLLATE "C"`` on PostgreSQL, SQLite's default BINARY), built once."""
    cache_key = (dialect, tuple(sorted(type_rank.items())), other_rank)
    statement = _PARKED_ORDERS.get(cache_key)
    if statement is None:
        rank = sa.case(dict(type_rank), value=_TABLE.c.type, else_=other_rank)
        event_id: sa.ColumnElement[str] = _TABLE.c.stripe_event_id
        status: sa.ColumnElement[str] = _TABLE.c.status
        if dialect == "postgresql":
            event_id = sa.collate(event_id, "C")
        else:  # SQLite (no ANALYZE statistics) would scan every customer's parked rows through
            # the status index: a unary plus keeps it on the customer's index
            status = sa.literal_column(f"+{_TABLE.name}.status")
        customer = _TABLE.c.customer_id == sa.bindparam("customer_id")
        statement = (
            _PARKED_KEYS.where(customer, status == "deferred")
            .order_by(_TABLE.c.created, rank, event_id)
            .with_for_update()
        )
        _PARKED_ORDERS[cache_key] = statement
    return statement


def payload_of(*, session: Session, event_id: str) -> dict[str, Any] | None:
    """The stored payload of one event id, if the ledger has it."""
    batch = batch_of(session)
    if batch is not None:
        batch.flush()
    payload: dict[str, Any] | None = (
        session.connection().execute(_PAYLOAD, {"event_id": event_id}).scalar()
    )
    return payload


def lock_customer(*, session: Session, customer_id: str) -> bool:
    """Serialise, until the transaction ends, parking events for a customer and linking it.

    PostgreSQL: a transaction-scoped advisory lock on the customer id, so an event parked while
    another transaction links its customer is either seen by that transaction's
    :func:`parked` or sees the committed link itself. SQLite serialises writers already, and
    this returns False there (True when a lock was taken).
    """
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return False
    batch = batch_of(session)
    if batch is not None and customer_id in batch.locked_customers:
        return True  # taken when the batch began
    connection.execute(_CUSTOMER_LOCK, {"customer_id": customer_id})
    return True


def flush_orm(*, session: Session) -> None:
    """Send the session's pending ORM writes (audit entries, suspensions) now, so that their
    errors surface where they were made; in a replay batch they go with its other writes, at
    its end (an error there aborts the batch)."""
    if batch_of(session) is None:
        session.flush()


@contextmanager
def savepoint(*, session: Session) -> Iterator[None]:
    """A SAVEPOINT in the session's transaction: an error inside undoes only this block.

    On SQLite a SAVEPOINT issued outside a transaction *starts* one that its RELEASE commits, so
    an explicit BEGIN opens the outer transaction first when none is open yet.

    Inside a replay batch (:mod:`.write_behind`) no SAVEPOINT is taken: an error in the block
    raises :class:`~billing_cli.repository.batch_cache.BatchAbort`, which aborts the batch.
    """
    batch = batch_of(session)
    if batch is not None:
        try:
            yield
        except Exception as error:
            raise BatchAbort(str(error)) from error
        return
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        raw = connection.connection.dbapi_connection
        if raw is not None and not getattr(raw, "in_transaction", True):
            connection.exec_driver_sql("BEGIN")
    with session.begin_nested():
        yield
