"""What monitoring needs recorded as it happens: refused webhook deliveries and Stripe API errors.

Refused deliveries are counted in memory by a :class:`RejectionCounter` and written in batches
(one upsert per minute and reason), because they are what a flood is made of: a burst of ten
thousand forged requests costs a handful of statements, not ten thousand transactions. A batch
that cannot be written (the database is down) is kept and added to the next one. Counts still
in memory when the process dies are lost; the endpoint flushes about once a second.

Stripe API errors are rare and each one matters, so :func:`record_stripe_error` writes through
at once, in the caller's transaction or in a short one of its own.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime

from sqlmodel import Session

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
    operation = operation.strip()[:_MAX_LABEL] or "unknown"
    error_class = error_class.strip()[:_MAX_LABEL] or "unknown"
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


def database_answers(db: Database) -> None:
    """Raise ``DatabaseError`` unless the database answers a trivial query."""
    with db.read() as session:
        observe_repo.ping(session=session)
