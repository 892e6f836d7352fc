"""Applying one event inside a transaction someone else opened: the engine's inner half.

:class:`EventApplier` claims (or takes over) the event's ledger row, runs its handler, records
the outcome on the row, and then applies the parked events of every customer the handler linked
to a tenant, in the same transaction (:meth:`EventApplier.apply_parked`). It never opens a
transaction and never calls Stripe: :class:`~billing_cli.services.webhooks.engine.WebhookEngine`
wraps it in one transaction per event (or one for a whole dry run) and reads Stripe between
transactions when a tie asks for it; :func:`billing_cli.services.webhooks.deferred.apply_parked`
uses it in the transaction of a command that linked a customer.

The ledger row records the outcome: ``processed``, ``ignored`` or ``deferred`` with the reason
in ``error`` (kept for a processed event only when it needs a refresh), ``failed`` with the
error, and for a deferred event the customer it waits for in ``customer_id``. A parked event is
applied later in a SAVEPOINT of its own: if it fails, only its work is undone and its row says
``failed`` (``webhooks retry-failed`` takes it from there), the linking change stands.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlmodel import Session

from billing_cli.errors import WebhookError
from billing_cli.gateway import SubscriptionInfo
from billing_cli.models import Change, Invocation, utcnow
from billing_cli.repository import ledger as ledger_repo
from billing_cli.services.webhooks.handlers import HANDLERS, Context, HandlerResult
from billing_cli.services.webhooks.payloads import ParsedEvent, parse_event

log = logging.getLogger("billing.webhooks")

DONE = ("processed", "ignored", "deferred")
_MAX_ERROR_LENGTH = 2000
PARKED_DETAILS = 1_000
"""A link's parked outcomes keep their before/after up to this many; later ones keep their
status and reason only, so a customer with 100,000 parked events does not hold 100,000 views."""
# Parked events apply oldest first; within a second, creations before updates before deletions.
_TYPE_RANK = {
    "customer.created": 0,
    "customer.subscription.created": 0,
    "customer.subscription.deleted": 2,
    "customer.deleted": 2,
}


@dataclass(frozen=True)
class EventOutcome:
    """What processing one event did (or, under dry run, would do).

    ``parked`` are the outcomes of the parked events this event's link let apply.
    """

    event_id: str
    type: str
    status: str  # "processed" | "ignored" | "deferred" | "skipped" | "failed"
    reason: str = ""
    changes: tuple[Change, ...] = ()
    parked: tuple[EventOutcome, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.event_id,
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "changes": [change.to_dict() for change in self.changes],
            "parked": [outcome.to_dict() for outcome in self.parked],
        }


@dataclass(frozen=True)
class Run:
    """How this event is being applied: where it came from, and what Stripe may add."""

    source: str
    force: bool = False
    dry_run: bool = False
    truths: Mapping[str, SubscriptionInfo] = field(default_factory=dict)
    can_fetch: bool = False
    started: float | None = None  # time.perf_counter() at receipt, for processing_ms

    def processing_ms(self) -> float | None:
        """Engine time from receipt until now (the ledger row's outcome), for `billing stats`."""
        if self.started is None:
            return None
        return round((time.perf_counter() - self.started) * 1000, 3)


class LedgerConflict(Exception):
    """The event id is recorded, yet its row could not be read (it is being written)."""


class ClaimFirst(Exception):
    """A deferred claim cannot stand: roll back and apply the event again, claiming first."""


class EventApplier:
    """Applies events in the caller's session; holds no per-event state (thread-safe)."""

    def __init__(
        self,
        *,
        max_failed_attempts: int,
        collect_changes: bool = False,
        paused_access: str = "keep",
    ) -> None:
        self.max_failed_attempts = max_failed_attempts
        self.collect_changes = collect_changes
        self.paused_access = paused_access  # BILLING_PAUSED_ACCESS (services.paused_access)

    def apply_new(
        self, session: Session, parsed: ParsedEvent, run: Run, *, defer_claim: bool
    ) -> EventOutcome:
        """Claim the event's ledger row and apply it (see the engine's docstring)."""
        now = utcnow()
        values = ledger_values(parsed, source=run.source, status="processed", now=now)
        values["processed_at"] = now
        pending = None
        entry: ledger_repo.LedgerEntry | None = None
        if defer_claim and ledger_repo.defers_claims(session=session):
            # PostgreSQL: the handler's first locked read carries the claim
            pending = ledger_repo.PendingClaim(values)
            new_id = None
        else:
            new_id = ledger_repo.claim(session=session, values=values)
            if new_id is None:
                recorded = recorded_entry(parsed, session=session, force=run.force)
                if isinstance(recorded, EventOutcome):
                    return recorded
                entry = recorded
        try:
            result, context = self._handle(session, parsed, run, claim=pending)
        except ledger_repo.ClaimTaken:
            # raised by the handler's first read, before it changed anything
            recorded = recorded_entry(parsed, session=session, force=run.force)
            if isinstance(recorded, EventOutcome):
                return recorded
            raise ClaimFirst from None
        # ORM writes (audit, suspension) now: their errors are handler errors
        ledger_repo.flush_orm(session=session)
        if pending is not None:
            new_id = ledger_repo.settle(session=session, pending=pending)
            if new_id is None:  # recorded meanwhile; the handler's work must not count
                raise ClaimFirst
        if entry is None:
            assert new_id is not None
            _record(
                session,
                row_id=new_id,
                entry=None,
                parsed=parsed,
                result=result,
                now=now,
                processing_ms=run.processing_ms(),
            )
        else:
            _record(
                session,
                row_id=entry.id,
                entry=entry,
                parsed=parsed,
                result=result,
                now=now,
                processing_ms=run.processing_ms(),
            )
        return self._finish(session, parsed, run, result, context, visited=set())

    def apply_parked(
        self, session: Session, customer_id: str, run: Run, *, visited: set[str] | None = None
    ) -> list[EventOutcome]:
        """Apply the events parked for ``customer_id``, in order-key order, each in a SAVEPOINT.

        An event that links yet another customer applies that customer's parked events too
        (``visited`` stops a cycle).
        """
        visited = set() if visited is None else visited
        if customer_id in visited:
            return []
        visited.add(customer_id)
        ledger_repo.lock_customer(session=session, customer_id=customer_id)
        outcomes = []
        for parked in ledger_repo.parked(
            session=session, customer_id=customer_id, type_rank=_TYPE_RANK, other_rank=1
        ):
            try:
                parsed = parse_event(parked.payload)
            except WebhookError as error:
                outcomes.append(self._fail_recorded(session, parked.entry, parked.payload, error))
                continue
            outcome = self._apply_recorded(session, parsed, parked.entry, run, visited)
            if len(outcomes) >= PARKED_DETAILS and outcome.changes:
                outcome = replace(outcome, changes=())
            outcomes.append(outcome)
        return outcomes

    def record_failure(
        self, session: Session, parsed: ParsedEvent, run: Run, message: str
    ) -> EventOutcome:
        """Record the event ``failed`` with ``message`` (claiming its row if it has none)."""
        failed = EventOutcome(parsed.id, parsed.type, "failed", message)
        values = ledger_values(parsed, source=run.source, status="failed", now=utcnow())
        values["error"] = message
        values["processing_ms"] = run.processing_ms()
        if ledger_repo.claim(session=session, values=values) is not None:
            return failed
        entry = ledger_repo.lock(session=session, event_id=parsed.id)
        if entry is None:
            raise LedgerConflict(parsed.id)
        if entry.status in DONE and not run.force:
            return EventOutcome(parsed.id, parsed.type, "skipped", f"already {entry.status}")
        ledger_repo.update(
            session=session,
            row_id=entry.id,
            values={
                "status": "failed",
                "attempts": entry.attempts + 1,
                "error": message,
                "payload": parsed.payload,
                "processing_ms": values["processing_ms"],
            },
        )
        return failed

    # -- inside ---------------------------------------------------------------------------

    def _handle(
        self,
        session: Session,
        parsed: ParsedEvent,
        run: Run,
        *,
        claim: ledger_repo.PendingClaim | None,
    ) -> tuple[HandlerResult, Context]:
        context = Context(
            session=session,
            event=parsed,
            invocation=Invocation(
                operator=f"webhook:{parsed.id}",
                command=f"webhook {parsed.type}",
                arguments={"source": run.source, "force": run.force},
                dry_run=run.dry_run,
            ),
            max_failed_attempts=self.max_failed_attempts,
            collect_changes=self.collect_changes or run.dry_run,
            claim=claim,
            truths=run.truths,
            can_fetch=run.can_fetch,
            paused_access=self.paused_access,
        )
        handler = HANDLERS.get(parsed.type)
        if handler is None:
            return HandlerResult("ignored", f"unhandled event type {parsed.type}"), context
        return handler(context), context

    def _apply_recorded(
        self,
        session: Session,
        parsed: ParsedEvent,
        entry: ledger_repo.LedgerEntry,
        run: Run,
        visited: set[str],
    ) -> EventOutcome:
        """Apply a parked event (its ledger row exists and is locked) in a SAVEPOINT."""
        now = utcnow()
        parked_run = Run(source="deferred", dry_run=run.dry_run, truths=run.truths)
        try:
            with ledger_repo.savepoint(session=session):
                result, context = self._handle(session, parsed, parked_run, claim=None)
                ledger_repo.flush_orm(session=session)
                _record(
                    session, row_id=entry.id, entry=entry, parsed=parsed, result=result, now=now
                )
                return self._finish(session, parsed, parked_run, result, context, visited=visited)
        except Exception as error:  # undo only this event's work; the link stands
            return self._fail_recorded(session, entry, parsed.payload, error, parsed=parsed)

    def _fail_recorded(
        self,
        session: Session,
        entry: ledger_repo.LedgerEntry,
        payload: Mapping[str, Any],
        error: BaseException,
        *,
        parsed: ParsedEvent | None = None,
    ) -> EventOutcome:
        message = one_line(error)
        log.warning("parked event %s failed: %s", payload.get("id"), message)
        ledger_repo.update(
            session=session,
            row_id=entry.id,
            values={"status": "failed", "attempts": entry.attempts + 1, "error": message},
        )
        event_id = parsed.id if parsed else str(payload.get("id"))
        event_type = parsed.type if parsed else str(payload.get("type"))
        return EventOutcome(event_id, event_type, "failed", message)

    def _finish(
        self,
        session: Session,
        parsed: ParsedEvent,
        run: Run,
        result: HandlerResult,
        context: Context,
        *,
        visited: set[str],
    ) -> EventOutcome:
        """The outcome, after applying the parked events of the customers this event linked."""
        parked: list[EventOutcome] = []
        for customer_id in context.linked:
            parked += self.apply_parked(session, customer_id, run, visited=visited)
        reason = result.reason
        if parked:
            applied = f"applied {len(parked)} parked event(s) of {', '.join(context.linked)}"
            reason = f"{reason}; {applied}" if reason else applied
        log.info("event %s (%s) %s %s", parsed.id, parsed.type, result.status, reason)
        changes = tuple(context.changes)
        for outcome in parked:
            changes += outcome.changes
        return EventOutcome(parsed.id, parsed.type, result.status, reason, changes, tuple(parked))


def recorded_entry(
    parsed: ParsedEvent, *, session: Session, force: bool
) -> ledger_repo.LedgerEntry | EventOutcome:
    """The event id's recorded ledger row, locked, or the outcome "skipped" if it is done."""
    entry = ledger_repo.lock(session=session, event_id=parsed.id)
    if entry is None:
        raise LedgerConflict(parsed.id)
    if entry.status in DONE and not force:
        return EventOutcome(parsed.id, parsed.type, "skipped", f"already {entry.status}")
    return entry


def _record(
    session: Session,
    *,
    row_id: int,
    entry: ledger_repo.LedgerEntry | None,
    parsed: ParsedEvent,
    result: HandlerResult,
    now: datetime,
    processing_ms: float | None = None,
) -> None:
    """Write the outcome (and the processing time) on the ledger row."""
    keep = result.status != "processed" or result.keep_reason
    values: dict[str, Any] = {}
    if entry is not None:
        values = {
            "status": result.status,
            "attempts": entry.attempts + 1,
            "error": result.reason[:_MAX_ERROR_LENGTH] if keep else None,
            "processed_at": now,
            "payload": parsed.payload,
            "api_version": parsed.api_version,
        }
    else:
        if result.status != "processed":
            values["status"] = result.status
        if keep:
            values["error"] = result.reason[:_MAX_ERROR_LENGTH]
    if result.customer_id is not None:
        values["customer_id"] = result.customer_id
    if processing_ms is not None:
        values["processing_ms"] = processing_ms
    if values:
        ledger_repo.update(session=session, row_id=row_id, values=values)


def ledger_values(parsed: ParsedEvent, *, source: str, status: str, now: Any) -> dict[str, Any]:
    return {
        "stripe_event_id": parsed.id,
        "type": parsed.type,
        "created": parsed.created,
        "api_version": parsed.api_version,
        "livemode": parsed.livemode,
        "source": source,
        "status": status,
        "attempts": 1,
        "error": None,
        "received_at": now,
        "processed_at": None,
        "payload": parsed.payload,
    }


def one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    message = f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
    return message[:_MAX_ERROR_LENGTH]
