"""Replay in batches: many events in one transaction, with the endpoint's guarantees.

The endpoint must answer each delivery alone, so it pays a transaction per event (about five
round trips). A replay has its events in hand, so it applies them in batches
(:data:`DEFAULT_BATCH_SIZE`): one transaction per batch, the ledger claims, row reads and writes
of the whole batch done set-wise by :mod:`billing_cli.repository.write_behind`, while each event
still goes through the same applier and handlers, in order. The handlers' registers are
last-writer-wins per field group, so applying a batch in memory in order gives the state that
applying its events one by one gives (a property test compares both paths).

What stays as on the endpoint:

- At most once per event id: the batch claims every id up front (``INSERT ... ON CONFLICT DO
  NOTHING``); an id recorded before is locked and reported ``skipped`` unless it failed (or
  ``force``). A delivery of the same id racing the batch waits for the batch's commit, then
  finds the id taken.
- A failing event fails alone: any error in a batch (a handler's, a tie that needs Stripe's
  answer, a deadlock) rolls the batch back, and its events are applied again one by one through
  :meth:`WebhookEngine.process`, where an error is recorded ``failed`` on that event's row only
  and a tie reads Stripe with no transaction open.
- ``dry_run`` runs the same batches in one transaction rolled back at the end, each batch in a
  SAVEPOINT (a failing one is previewed event by event instead), so later events see what earlier
  ones did, as in the real run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlmodel import Session

from billing_cli.gateway import SubscriptionInfo
from billing_cli.models import utcnow
from billing_cli.repository import ledger as ledger_repo
from billing_cli.repository import write_behind
from billing_cli.services.webhooks.applier import EventOutcome, Run, ledger_values, one_line
from billing_cli.services.webhooks.engine import WebhookEngine
from billing_cli.services.webhooks.handlers import names_of
from billing_cli.services.webhooks.payloads import ParsedEvent

log = logging.getLogger("billing.webhooks")

DEFAULT_BATCH_SIZE = 500


class BatchFailed(Exception):
    """Something in the batch needs the event-by-event path; the batch was not applied."""


def process_batch(
    engine: WebhookEngine, events: Sequence[ParsedEvent], *, source: str, force: bool = False
) -> list[EventOutcome]:
    """Apply ``events`` (checked, in order) in one transaction, or one by one if that fails."""
    try:
        with engine.db.transaction() as session:
            return _apply(session, engine, events, source=source, force=force, dry_run=False)
    except Exception as error:
        log.info("a batch of %d events is applied one by one: %s", len(events), one_line(error))
        return [engine.process(event.payload, source=source, force=force) for event in events]


def preview_batch(
    session: Session,
    engine: WebhookEngine,
    events: Sequence[ParsedEvent],
    *,
    source: str,
    force: bool,
    truths: dict[str, SubscriptionInfo],
    wanted: set[str],
) -> list[EventOutcome]:
    """Dry-run ``events`` in the caller's rolled-back transaction, as :func:`process_batch`
    would apply them; ``wanted`` collects the subscriptions a tie needs read from Stripe."""
    try:
        with ledger_repo.savepoint(session=session):
            return _apply(
                session, engine, events, source=source, force=force, dry_run=True, truths=truths
            )
    except Exception:
        return [
            engine.preview_in(
                session, event, source=source, force=force, truths=truths, wanted=wanted
            )
            for event in events
        ]


def _apply(
    session: Session,
    engine: WebhookEngine,
    events: Sequence[ParsedEvent],
    *,
    source: str,
    force: bool,
    dry_run: bool,
    truths: dict[str, SubscriptionInfo] | None = None,
) -> list[EventOutcome]:
    """Claim, lock and read for the whole batch, run each event's handler, write it all."""
    subscriptions: set[str] = set()
    customers: set[str] = set()
    slugs: set[str] = set()
    claims: dict[str, dict[str, object]] = {}
    now = utcnow()
    for event in events:
        subscription_id, customer_id, slug = names_of(event)
        if subscription_id:
            subscriptions.add(subscription_id)
        if customer_id:
            customers.add(customer_id)
        if slug:
            slugs.add(slug)
        if event.id not in claims:
            values = ledger_values(event, source=source, status="processed", now=now)
            values["processed_at"] = now
            claims[event.id] = values
    keys = write_behind.Keys(frozenset(subscriptions), frozenset(customers), frozenset(slugs))
    run = Run(
        source=source,
        force=force,
        dry_run=dry_run,
        truths=truths or {},
        can_fetch=engine.fetch is not None,
    )
    applier = engine.applier
    try:
        with write_behind.begin(session=session, keys=keys, claims=list(claims.values())):
            return [applier.apply_new(session, event, run, defer_claim=False) for event in events]
    except write_behind.BatchAbort as abort:
        raise BatchFailed(str(abort)) from abort.__cause__
