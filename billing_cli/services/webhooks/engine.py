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
  have changed. :meth:`WebhookEngine.preview_in` previews one event inside a caller's
  transaction, in a SAVEPOINT; a replay's dry run (:mod:`.replay`) runs all its events in *one*
  transaction rolled back at the end, so every event sees what the earlier ones did: a
  duplicate previews ``skipped`` and a failed-then-paid pair previews the suspension and the
  reactivation, exactly as the real replay would.
- An event naming a customer no tenant has yet is recorded ``deferred`` (parked) with that
  customer; when an event links a tenant to a customer, that customer's parked events are
  applied in the same transaction (:class:`.applier.EventApplier`, :mod:`.deferred`).
- A same-second tie only Stripe can settle (:mod:`.ties`) makes the handler raise
  ``NeedsTruth``: the transaction is rolled back, the subscription is read through ``fetch``
  (``Gateway.retrieve_subscription``) with *no* transaction open, and the event is applied
  again with Stripe's answer (at most :data:`MAX_STRIPE_READS` reads per event). Without
  ``fetch`` (a file replay with no Stripe key) the outcome says the subscription needs a
  refresh. A failed read records the event ``failed`` so that Stripe's retry (or
  ``retry-failed``) settles it later.

Handlers are idempotent and order-independent (see :mod:`.policy`), which is what makes
``force`` and retries safe. The hot path runs Core statements from
:mod:`billing_cli.repository.ledger` and :mod:`billing_cli.repository.webhook_rows` (about four
statements per event: claim, locked row lookup, one UPDATE of the changed columns, commit;
claim and lookup are one statement on PostgreSQL; plus one UPDATE of the ledger row that sets its
outcome and ``processing_ms``, the time from receipt to that row, for ``billing stats``) and
builds the before/after views of ``changes`` only for dry runs and engines made with
``collect_changes=True`` (replays, see :meth:`WebhookEngine.for_replay`). The engine holds no
per-event state, so one instance can serve many threads; each call opens its own session.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlmodel import Session

from billing_cli.errors import WebhookError
from billing_cli.gateway import Gateway, SubscriptionInfo
from billing_cli.models import EVENT_SOURCES
from billing_cli.repository import Database
from billing_cli.repository import ledger as ledger_repo
from billing_cli.services.webhooks.applier import (
    ClaimFirst,
    EventApplier,
    EventOutcome,
    LedgerConflict,
    Run,
    one_line,
)
from billing_cli.services.webhooks.payloads import ParsedEvent, parse_event
from billing_cli.services.webhooks.ties import NeedsTruth

log = logging.getLogger("billing.webhooks")

MAX_STRIPE_READS = 3
Fetch = Callable[[str], SubscriptionInfo]
"""Reads one subscription from Stripe (``Gateway.retrieve_subscription``)."""

__all__ = ["EventOutcome", "Fetch", "LedgerConflict", "WebhookEngine", "lazy_fetch"]


class WebhookEngine:
    """Applies Stripe events to the tenant database; thread-safe, one session per call.

    ``collect_changes`` makes every outcome carry the before/after views of what it changed (a
    dry run always does): replays show them, the endpoint does not need them and leaves them out
    (the default). :meth:`for_replay` gives the replay configuration. ``fetch`` reads a
    subscription from Stripe to settle a same-second tie; None where no Stripe key is known.
    """

    def __init__(
        self,
        db: Database,
        *,
        live_mode: bool,
        max_failed_attempts: int,
        collect_changes: bool = False,
        fetch: Fetch | None = None,
        paused_access: str = "keep",
    ) -> None:
        self.db = db
        self.live_mode = live_mode
        self.max_failed_attempts = max_failed_attempts
        self.collect_changes = collect_changes
        self.fetch = fetch
        self.paused_access = paused_access  # BILLING_PAUSED_ACCESS (services.paused_access)
        self._applier = EventApplier(
            max_failed_attempts=max_failed_attempts,
            collect_changes=collect_changes,
            paused_access=paused_access,
        )

    def for_replay(self, *, fetch: Fetch | None = None) -> WebhookEngine:
        """The same engine as a replay runs it: outcomes carry their changes; ``fetch`` (if
        given) replaces this engine's way of reading Stripe."""
        return WebhookEngine(
            self.db,
            live_mode=self.live_mode,
            max_failed_attempts=self.max_failed_attempts,
            collect_changes=True,
            fetch=fetch or self.fetch,
            paused_access=self.paused_access,
        )

    def check(self, event: object) -> ParsedEvent:
        """Parse the envelope and refuse an event from the other mode (raises WebhookError)."""
        parsed = parse_event(event)
        if parsed.livemode != self.live_mode:
            expected, got = ("live", "test") if self.live_mode else ("test", "live")
            raise WebhookError(
                f"event {parsed.id} is a {got}-mode event but this tool runs in {expected} mode "
                "(STRIPE_LIVE_MODE); refused",
                reason="livemode_mismatch",
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
        _check_source(source)
        started = time.perf_counter()  # for the ledger row's processing_ms
        parsed = self.check(event)
        truths: dict[str, SubscriptionInfo] = {}
        while True:
            run = Run(
                source=source,
                force=force,
                dry_run=dry_run,
                truths=dict(truths),
                can_fetch=self.fetch is not None and len(truths) < MAX_STRIPE_READS,
                started=started,
            )
            try:
                return self._apply(parsed, run)
            except NeedsTruth as need:  # rolled back: read Stripe with no transaction open
                try:
                    truths[need.subscription_id] = self._read_stripe(need.subscription_id)
                except Exception as error:
                    message = (
                        f"could not read subscription {need.subscription_id} from Stripe to "
                        f"settle a same-second tie: {one_line(error)}"
                    )
                    return self._failed(parsed, run, message)
            except LedgerConflict:
                return EventOutcome(
                    parsed.id,
                    parsed.type,
                    "skipped",
                    "recorded at the same time by another delivery",
                )
            except Exception as error:  # a handler error must not escape: record it as failed
                return self._failed(parsed, run, one_line(error))

    @property
    def applier(self) -> EventApplier:
        """The inner half, for a caller that runs several events in one transaction
        (:mod:`.batches`)."""
        return self._applier

    def preview_in(
        self,
        session: Session,
        parsed: ParsedEvent,
        *,
        source: str,
        force: bool,
        truths: dict[str, SubscriptionInfo],
        wanted: set[str],
    ) -> EventOutcome:
        """Dry-run one event in the caller's (rolled back) transaction, in a SAVEPOINT.

        A tie that needs Stripe adds its subscription to ``wanted`` and previews without it:
        the caller reads the wanted subscriptions with no transaction open and previews again.
        """
        run = Run(
            source=source,
            force=force,
            dry_run=True,
            truths=truths,
            can_fetch=self.fetch is not None,
        )
        try:
            return self._preview_one(session, parsed, run)
        except NeedsTruth as need:
            wanted.add(need.subscription_id)
            no_fetch = Run(source=source, force=force, dry_run=True, truths=truths)
            return self._preview_one(session, parsed, no_fetch)

    def read_truths(self, wanted: set[str], truths: dict[str, SubscriptionInfo]) -> bool:
        """Read the wanted subscriptions from Stripe (no transaction may be open) into
        ``truths``; False when there is nothing new to read or no way to read it."""
        wanted = wanted - set(truths)
        if not wanted or self.fetch is None:
            return False
        for subscription_id in sorted(wanted):
            truths[subscription_id] = self._read_stripe(subscription_id)
        return True

    def _preview_one(self, session: Session, parsed: ParsedEvent, run: Run) -> EventOutcome:
        try:
            with ledger_repo.savepoint(session=session):
                return self._applier.apply_new(session, parsed, run, defer_claim=False)
        except (NeedsTruth, LedgerConflict):
            raise
        except Exception as error:  # as the real run: recorded failed, the batch goes on
            return self._applier.record_failure(session, parsed, run, one_line(error))

    def _apply(self, parsed: ParsedEvent, run: Run) -> EventOutcome:
        try:
            return self._apply_once(parsed, run, defer_claim=True)
        except ClaimFirst:
            # the deferred claim met a recorded id that must be applied again (failed, or
            # force), or it was run after a handler: start over, claiming first
            return self._apply_once(parsed, run, defer_claim=False)

    def _apply_once(self, parsed: ParsedEvent, run: Run, *, defer_claim: bool) -> EventOutcome:
        with self.db.transaction(dry_run=run.dry_run) as session:
            return self._applier.apply_new(session, parsed, run, defer_claim=defer_claim)

    def _read_stripe(self, subscription_id: str) -> SubscriptionInfo:
        assert self.fetch is not None
        log.info("reading subscription %s from Stripe to settle a tie", subscription_id)
        return self.fetch(subscription_id)

    def _failed(self, parsed: ParsedEvent, run: Run, message: str) -> EventOutcome:
        log.warning("event %s (%s) failed: %s", parsed.id, parsed.type, message)
        if run.dry_run:
            return EventOutcome(parsed.id, parsed.type, "failed", message)
        try:
            with self.db.transaction() as session:
                return self._applier.record_failure(session, parsed, run, message)
        except LedgerConflict:
            return EventOutcome(parsed.id, parsed.type, "skipped", "recorded meanwhile")


def lazy_fetch(gateway: Callable[[], Gateway]) -> Fetch:
    """Read subscriptions through a gateway built on first use (most replays have no tie)."""
    built: list[Gateway] = []

    def fetch(subscription_id: str) -> SubscriptionInfo:
        if not built:
            built.append(gateway())
        return built[0].retrieve_subscription(subscription_id)

    return fetch


def _check_source(source: str) -> None:
    if source not in EVENT_SOURCES:
        raise ValueError(f"source must be one of {EVENT_SOURCES}, not {source!r}")
