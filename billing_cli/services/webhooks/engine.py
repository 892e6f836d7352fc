"""The webhook engine: one entry point for the live endpoint, replay from Stripe and from files.

:meth:`WebhookEngine.process` applies one event at most once and records it in the ledger
(``webhook_event``) in the same transaction as its state change:

- A malformed envelope, or a ``livemode`` that disagrees with the configured mode, raises
  ``WebhookError`` before any database work: nothing is stored (the endpoint answers 400).
- The ledger row is claimed first, in the transaction that applies the event:
  ``INSERT ... ON CONFLICT (stripe_event_id) DO NOTHING RETURNING id``. A new id costs no
  prior SELECT. An id already recorded falls back to ``SELECT ... FOR UPDATE`` of its row: one
  already ``processed`` or ``ignored`` is reported ``skipped`` (``force`` reprocesses), a
  ``failed`` one is applied again. When two deliveries of a new id race on PostgreSQL, the
  second claim waits for the first transaction; once that commits the claim inserts nothing,
  the SELECT sees the committed row and the second delivery reports ``skipped``. SQLite
  serialises writers (the claim is the transaction's first statement, so it takes the write
  lock at once), same result.
- On PostgreSQL the claim saves its own round trip: it rides, as a data-modifying CTE, on the
  handler's first locked read of the tenant's row (a ``PendingClaim`` until then), which every
  handler makes before changing anything. If it inserted nothing the
  read raises ``ClaimTaken``; the ledger row is then locked as above and a done one reported
  ``skipped``, while one to apply again (``failed``, or ``force``) rolls back and starts over
  claiming first. A handler that returns without a read (an ignored event) gets its claim run
  after it; if that inserts nothing, the same start-over applies. Racing deliveries wait in
  the combined statement (for the row lock or the claim) and end the same way.
- A handler error never escapes: the transaction is rolled back and, in a fresh one, the ledger
  row is written ``failed`` with the error and ``attempts + 1``. A later ``process`` of the same
  id (Stripe's retry, a replay, ``retry-failed``) applies it again.
- ``dry_run`` runs the very same path and rolls everything back; ``changes`` says what would
  have changed.

Handlers are idempotent and order-independent (see :mod:`.policy`), which is what makes
``force`` and retries safe. The hot path runs Core statements from
:mod:`billing_cli.repository.ledger` and :mod:`billing_cli.repository.webhook_rows` (about four
statements per event: claim, locked row lookup, one UPDATE of the changed columns, commit;
claim and lookup are one statement on PostgreSQL) and
builds the before/after views of ``changes`` only for dry runs and engines made with
``collect_changes=True`` (replays, see :meth:`WebhookEngine.for_replay`). The engine holds no
per-event state, so one instance can serve many threads; each call opens its own session.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from billing_cli.errors import WebhookError
from billing_cli.models import EVENT_SOURCES, Change, Invocation, utcnow
from billing_cli.repository import Database
from billing_cli.repository import ledger as ledger_repo
from billing_cli.services.webhooks.handlers import HANDLERS, Context, HandlerResult
from billing_cli.services.webhooks.payloads import ParsedEvent, parse_event

log = logging.getLogger("billing.webhooks")

_DONE = ("processed", "ignored")
_MAX_ERROR_LENGTH = 2000


@dataclass(frozen=True)
class EventOutcome:
    """What processing one event did (or, under dry run, would do)."""

    event_id: str
    type: str
    status: str  # "processed" | "ignored" | "skipped" | "failed"
    reason: str = ""
    changes: tuple[Change, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.event_id,
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "changes": [change.to_dict() for change in self.changes],
        }


class LedgerConflict(Exception):
    """The event id is recorded, yet its row could not be read (it is being written)."""


class _ClaimFirst(Exception):
    """A deferred claim cannot stand: roll back and apply the event again, claiming first."""


class WebhookEngine:
    """Applies Stripe events to the tenant database; thread-safe, one session per call.

    ``collect_changes`` makes every outcome carry the before/after views of what it changed (a
    dry run always does): replays show them, the endpoint does not need them and leaves them out
    (the default). :meth:`for_replay` gives the replay configuration.
    """

    def __init__(
        self,
        db: Database,
        *,
        live_mode: bool,
        max_failed_attempts: int,
        collect_changes: bool = False,
        paused_access: str = "keep",
    ) -> None:
        self.db = db
        self.live_mode = live_mode
        self.max_failed_attempts = max_failed_attempts
        self.collect_changes = collect_changes
        self.paused_access = paused_access  # BILLING_PAUSED_ACCESS (services.paused_access)

    def for_replay(self) -> WebhookEngine:
        """The same engine as a replay runs it: outcomes carry their changes."""
        return WebhookEngine(
            self.db,
            live_mode=self.live_mode,
            max_failed_attempts=self.max_failed_attempts,
            collect_changes=True,
            paused_access=self.paused_access,
        )

    def check(self, event: object) -> ParsedEvent:
        """Parse the envelope and refuse an event from the other mode (raises WebhookError)."""
        parsed = parse_event(event)
        if parsed.livemode != self.live_mode:
            expected, got = ("live", "test") if self.live_mode else ("test", "live")
            raise WebhookError(
                f"event {parsed.id} is a {got}-mode event but this tool runs in {expected} mode "
                "(STRIPE_LIVE_MODE); refused"
            )
        return parsed

    def process(
        self,
        event: Mapping[str, Any],
        *,
        source: str,
        force: bool = False,
        dry_run: bool = False,
    ) -> EventOutcome:
        """Apply one event at most once; see the module docstring for the guarantees."""
        if source not in EVENT_SOURCES:
            raise ValueError(f"source must be one of {EVENT_SOURCES}, not {source!r}")
        parsed = self.check(event)
        try:
            return self._apply(parsed, source=source, force=force, dry_run=dry_run)
        except LedgerConflict:
            return EventOutcome(
                parsed.id, parsed.type, "skipped", "recorded at the same time by another delivery"
            )
        except Exception as error:  # a handler error must not escape: record it as failed
            message = _one_line(error)
            log.warning("event %s (%s) failed: %s", parsed.id, parsed.type, message)
            try:
                return self._record_failure(
                    parsed, source=source, message=message, force=force, dry_run=dry_run
                )
            except LedgerConflict:
                return EventOutcome(parsed.id, parsed.type, "skipped", "recorded meanwhile")

    def _apply(
        self, parsed: ParsedEvent, *, source: str, force: bool, dry_run: bool
    ) -> EventOutcome:
        try:
            return self._apply_once(
                parsed, source=source, force=force, dry_run=dry_run, defer_claim=True
            )
        except _ClaimFirst:
            # the deferred claim met a recorded id that must be applied again (failed, or
            # force), or it was run after a handler: start over, claiming first
            return self._apply_once(
                parsed, source=source, force=force, dry_run=dry_run, defer_claim=False
            )

    def _apply_once(
        self, parsed: ParsedEvent, *, source: str, force: bool, dry_run: bool, defer_claim: bool
    ) -> EventOutcome:
        with self.db.transaction(dry_run=dry_run) as session:
            now = utcnow()
            values = _ledger_values(parsed, source=source, status="processed", now=now)
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
                    recorded = self._recorded(parsed, session=session, force=force)
                    if isinstance(recorded, EventOutcome):
                        return recorded
                    entry = recorded
            context = Context(
                session=session,
                event=parsed,
                invocation=Invocation(
                    operator=f"webhook:{parsed.id}",
                    command=f"webhook {parsed.type}",
                    arguments={"source": source, "force": force},
                    dry_run=dry_run,
                ),
                max_failed_attempts=self.max_failed_attempts,
                collect_changes=self.collect_changes or dry_run,
                claim=pending,
                paused_access=self.paused_access,
            )
            handler = HANDLERS.get(parsed.type)
            try:
                if handler is None:
                    result = HandlerResult("ignored", f"unhandled event type {parsed.type}")
                else:
                    result = handler(context)
            except ledger_repo.ClaimTaken:
                # raised by the handler's first read, before it changed anything
                recorded = self._recorded(parsed, session=session, force=force)
                if isinstance(recorded, EventOutcome):
                    return recorded
                raise _ClaimFirst from None
            session.flush()  # ORM writes (audit, suspension) now: their errors are handler errors
            if pending is not None:
                new_id = ledger_repo.settle(session=session, pending=pending)
                if new_id is None:  # recorded meanwhile; the handler's work must not count
                    raise _ClaimFirst
            if entry is None:
                assert new_id is not None
                if result.status != "processed":
                    ledger_repo.update(
                        session=session, row_id=new_id, values={"status": result.status}
                    )
            else:
                ledger_repo.update(
                    session=session,
                    row_id=entry.id,
                    values={
                        "status": result.status,
                        "attempts": entry.attempts + 1,
                        "error": None,
                        "processed_at": now,
                        "payload": parsed.payload,
                        "api_version": parsed.api_version,
                    },
                )
            log.info("event %s (%s) %s %s", parsed.id, parsed.type, result.status, result.reason)
            return EventOutcome(
                parsed.id, parsed.type, result.status, result.reason, tuple(context.changes)
            )

    @staticmethod
    def _recorded(
        parsed: ParsedEvent, *, session: Session, force: bool
    ) -> ledger_repo.LedgerEntry | EventOutcome:
        """The event id's recorded ledger row, locked, or the outcome "skipped" if it is done."""
        entry = ledger_repo.lock(session=session, event_id=parsed.id)
        if entry is None:
            raise LedgerConflict(parsed.id)
        if entry.status in _DONE and not force:
            return EventOutcome(parsed.id, parsed.type, "skipped", f"already {entry.status}")
        return entry

    def _record_failure(
        self, parsed: ParsedEvent, *, source: str, message: str, force: bool, dry_run: bool
    ) -> EventOutcome:
        failed = EventOutcome(parsed.id, parsed.type, "failed", message)
        if dry_run:
            return failed
        with self.db.transaction() as session:
            values = _ledger_values(parsed, source=source, status="failed", now=utcnow())
            values["error"] = message
            if ledger_repo.claim(session=session, values=values) is not None:
                return failed
            entry = ledger_repo.lock(session=session, event_id=parsed.id)
            if entry is None:
                raise LedgerConflict(parsed.id)
            if entry.status in _DONE and not force:
                return EventOutcome(parsed.id, parsed.type, "skipped", f"already {entry.status}")
            ledger_repo.update(
                session=session,
                row_id=entry.id,
                values={
                    "status": "failed",
                    "attempts": entry.attempts + 1,
                    "error": message,
                    "payload": parsed.payload,
                },
            )
        return failed


def _ledger_values(parsed: ParsedEvent, *, source: str, status: str, now: Any) -> dict[str, Any]:
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


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    message = f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
    return message[:_MAX_ERROR_LENGTH]
