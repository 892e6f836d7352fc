"""What monitoring needs recorded as it happens: refused webhook deliveries and Stripe API errors.

Refused deliveries are counted in memory by a :class:`RejectionCounter` and written in batches
(one upsert per minute and reason), because they are what a flood is made of: a burst of ten
thousand forged requests costs a handful of statements, not ten thousand transactions. A batch
that cannot be written (the database is down) is kept and added to the next one. Counts still
in memory when the process dies are lost; the endpoint flushes about once a second.

Stripe API errors are rare and each one matters, so :func:`record_stripe_error` writes through
at once, in the caller's transaction or in a short one of its own. Every Stripe error is seen
where the gateway translates it (``billing_cli.gateway.calls``), reads included, but the
gateway opens no database session: it tells the :class:`StripeErrorCounter` a command installs
(:func:`count_stripe_errors`), which writes the counts soon after in a short transaction of its
own (a call may fail while its caller holds a transaction, e.g. the engine's tie reads, so it
never writes from inside the call) and once more when the command ends.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlmodel import Session

from billing_cli.gateway.calls import add_error_sink, remove_error_sink
from billing_cli.models import utcnow
from billing_cli.repository import Database
from billing_cli.repository import observe as observe_repo

# Why the endpoint refused a delivery; the `reason` of rejected_delivery rows and of metrics.
REJECTION_REASONS = (
    "missing_signature",
    "bad_signature",
    "stale_timestamp",
    "malformed_body",
    "body_too_large",
    "livemode_mismatch",
)
# The reasons `billing check` counts as signature failures.
SIGNATURE_REASONS = ("missing_signature", "bad_signature", "stale_timestamp")
_MAX_LABEL = 64
_STRIPE_ERRORS_FLUSH_SECONDS = 1.0

logger = logging.getLogger("billing.observe")


class RejectionCounter:
    """Refused deliveries counted in memory per minute and reason until :meth:`flush`.

    Thread-safe; its memory is bounded by the reasons times the minutes not yet flushed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: Counter[tuple[datetime, str]] = Counter()

    def note(self, reason: str, *, at: datetime | None = None) -> None:
        if reason not in REJECTION_REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        key = (observe_repo.minute_of(at or utcnow()), reason)
        with self._lock:
            self._pending[key] += 1

    @property
    def pending(self) -> int:
        """Refusals noted and not written yet."""
        with self._lock:
            return sum(self._pending.values())

    def flush(self, db: Database) -> int:
        """Write what was noted, one upsert per minute and reason; returns how many refusals.

        On a database error the counts are kept for the next flush, and the error is raised.
        """
        with self._lock:
            batch, self._pending = self._pending, Counter()
        if not batch:
            return 0
        try:
            with db.transaction() as session:
                for (minute, reason), count in sorted(batch.items()):
                    observe_repo.add_rejections(
                        session=session, minute=minute, reason=reason, count=count
                    )
        except BaseException:
            with self._lock:
                self._pending.update(batch)
            raise
        return sum(batch.values())


def record_stripe_error(
    target: Database | Session,
    *,
    operation: str,
    error_class: str,
    at: datetime | None = None,
) -> None:
    """Count one Stripe API error of ``error_class`` (e.g. ``RateLimited``, ``card_error``) from
    ``operation`` (e.g. ``subscription.create``).

    Given a session it joins the caller's transaction (the intent journal's apply phase);
    given a Database it commits in a short transaction of its own. Never call it with a
    transaction open around a Stripe call.
    """
    operation, error_class = _label(operation), _label(error_class)
    when = at or utcnow()
    if isinstance(target, Session):
        observe_repo.add_stripe_errors(
            session=target, minute=when, operation=operation, error_class=error_class
        )
        return
    with target.transaction() as session:
        observe_repo.add_stripe_errors(
            session=session, minute=when, operation=operation, error_class=error_class
        )


class StripeErrorCounter:
    """Stripe API errors noted by the gateway, written to the database by :meth:`flush`.

    :meth:`note` is the gateway's error sink: it only counts in memory (any thread) and asks
    for a flush ``flush_after`` seconds later on a timer thread, so an error raised while the
    caller holds a transaction is written after it, never inside it. A batch that cannot be
    written is kept for the next flush; what is left when the process dies is lost.
    """

    def __init__(self, database: Callable[[], Database], *, flush_after: float) -> None:
        self._database = database
        self._flush_after = flush_after
        self._lock = threading.Lock()
        self._pending: Counter[tuple[datetime, str, str]] = Counter()
        self._timer: threading.Timer | None = None

    def note(self, operation: str, error_class: str) -> None:
        key = (observe_repo.minute_of(utcnow()), _label(operation), _label(error_class))
        with self._lock:
            self._pending[key] += 1
            if self._timer is None:
                self._timer = threading.Timer(self._flush_after, self._flush_quietly)
                self._timer.daemon = True
                self._timer.start()

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(self._pending.values())

    def flush(self) -> int:
        """Write what was noted in one transaction; returns how many errors were written."""
        with self._lock:
            batch, self._pending = self._pending, Counter()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if not batch:
            return 0
        try:
            with self._database().transaction() as session:
                for (minute, operation, error_class), count in sorted(batch.items()):
                    observe_repo.add_stripe_errors(
                        session=session,
                        minute=minute,
                        operation=operation,
                        error_class=error_class,
                        count=count,
                    )
        except BaseException:
            with self._lock:
                self._pending.update(batch)
            raise
        return sum(batch.values())

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except Exception as error:  # a timer thread has no one to raise to
            logger.warning("Stripe API errors not recorded yet: %s", error)


@contextmanager
def count_stripe_errors(
    database: Callable[[], Database], *, flush_after: float = _STRIPE_ERRORS_FLUSH_SECONDS
) -> Iterator[StripeErrorCounter]:
    """Count every Stripe error the gateway sees while the block runs (``billing check``'s
    ``stripe_errors``); what is still pending is written when the block ends."""
    counter = StripeErrorCounter(database, flush_after=flush_after)
    add_error_sink(counter.note)
    try:
        yield counter
    finally:
        remove_error_sink(counter.note)
        try:
            counter.flush()
        except Exception as error:  # never hide the command's own outcome
            logger.warning("Stripe API errors not recorded: %s", error)


def _label(text: str) -> str:
    return text.strip()[:_MAX_LABEL] or "unknown"


def database_answers(db: Database) -> None:
    """Raise ``DatabaseError`` unless the database answers a trivial query."""
    with db.read() as session:
        observe_repo.ping(session=session)
