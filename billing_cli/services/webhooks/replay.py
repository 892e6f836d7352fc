"""Replay: run events again through the same engine the endpoint uses.

For on-call after missed or failed deliveries: events come from Stripe's Events API (which keeps
30 days, so an older window is refused before any call, pointing at ``--from-file``), from a file
(a JSON array, JSON lines, or one event object, read as a stream and checked whole before
anything is processed, see :mod:`.event_files`), or from the ledger's failed rows. They are
processed oldest first, in batches (:mod:`.batches`: one transaction per batch, the same
handlers, a failing event alone re-run by itself), or one transaction per event as the endpoint
commits with ``batch_size=1``. Each outcome carries the before/after the engine computed (under
``dry_run`` nothing is written); the summary counts them all and keeps the details of the first
:data:`DETAILS_KEPT` and of every failure, so memory stays flat however many events there are.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from billing_cli import timeparse
from billing_cli.errors import UsageError, WebhookError
from billing_cli.gateway import Gateway, SubscriptionInfo
from billing_cli.models import utcnow
from billing_cli.repository import Database
from billing_cli.repository import events as events_repo
from billing_cli.services.webhooks.batches import DEFAULT_BATCH_SIZE, preview_batch, process_batch
from billing_cli.services.webhooks.engine import EventOutcome, WebhookEngine, lazy_fetch
from billing_cli.services.webhooks.event_files import load_events_file, open_events_file
from billing_cli.services.webhooks.payloads import ParsedEvent
from billing_cli.services.webhooks.stripe_feed import SlicedFeed
from billing_cli.timeparse import iso

__all__ = ["DEFAULT_BATCH_SIZE", "ReplaySummary", "load_events_file", "run_replay"]

EVENTS_API_RETENTION = timedelta(days=30)
STATUSES = ("processed", "skipped", "ignored", "deferred", "failed")
DETAILS_KEPT = 10_000
Item = TypeVar("Item")
MAX_PREVIEW_PASSES = 3

Progress = Callable[[int, int | None, EventOutcome], None]
"""Called after each event with (done, total or None if unknown, outcome): the progress bar."""


@dataclass(frozen=True)
class ReplaySummary:
    """What a replay did: the count per status, and the outcomes kept in detail (the first
    :data:`DETAILS_KEPT`, and every failure; ``omitted`` says how many more there were)."""

    outcomes: tuple[EventOutcome, ...]
    dry_run: bool
    source: str
    tallied: Mapping[str, int] | None = None
    omitted: int = 0
    fetch_seconds: float | None = None  # reading the Events API
    apply_seconds: float | None = None

    @property
    def counts(self) -> dict[str, int]:
        if self.tallied is not None:
            return dict(self.tallied)
        found = Counter(outcome.status for outcome in self.outcomes)
        return {status: found.get(status, 0) for status in STATUSES}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def failed(self) -> int:
        return self.counts["failed"]

    @property
    def needs_refresh(self) -> tuple[EventOutcome, ...]:
        """Outcomes whose same-second tie nobody could settle (no Stripe key)."""
        return tuple(o for o in self.outcomes if o.reason.startswith("needs refresh"))

    def rates(self) -> dict[str, float]:
        """Events per second fetched from Stripe and applied, where measured."""
        rates = {}
        if self.fetch_seconds:
            rates["fetched_per_s"] = round(self.total / self.fetch_seconds, 1)
        if self.apply_seconds:
            rates["applied_per_s"] = round(self.total / self.apply_seconds, 1)
        return rates

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dry_run": self.dry_run,
            "counts": self.counts,
            **self.rates(),
            "events_omitted": self.omitted,
            "events": [outcome.to_dict() for outcome in self.outcomes],
        }


@dataclass(frozen=True)
class StripeSelection:
    """Which events to fetch from the Events API."""

    since: datetime | None = None
    until: datetime | None = None
    types: tuple[str, ...] = ()
    event_ids: tuple[str, ...] = ()
    undelivered: bool = False


def check_window(selection: StripeSelection, *, now: datetime | None = None) -> None:
    """Refuse a window Stripe cannot serve, before any call is made."""
    now = now or utcnow()
    # A minute's grace: `--since 30d` was computed a moment before `now` and means the window.
    oldest = now - EVENTS_API_RETENTION - timedelta(minutes=1)
    since, until = selection.since, selection.until
    if since is not None and since < oldest:
        days = (now - since).days
        raise UsageError(
            f"--since {iso(since)} reaches back {days} days, but Stripe's Events API keeps "
            "events for 30 days only; narrow the window, or replay older events from a saved "
            "file with --from-file"
        )
    if until is not None and until < oldest:
        raise UsageError("--until is more than 30 days ago: Stripe's Events API has nothing there")
    timeparse.check_window(since, until, now=now)


def fetch_from_stripe(gateway: Gateway, selection: StripeSelection) -> list[dict[str, Any]]:
    """The selected events from the Events API, oldest first."""
    check_window(selection)
    if selection.event_ids:
        found = [gateway.retrieve_event(event_id) for event_id in selection.event_ids]
    else:
        found = gateway.list_events(
            types=selection.types,
            created_gte=_unix(selection.since),
            created_lte=_unix(selection.until),
            undelivered=selection.undelivered,
        )
    return oldest_first(found)


def oldest_first(events: Iterable[Any]) -> list[dict[str, Any]]:
    """Sort by ``created``; a stable sort keeps the source's own order within one second."""

    def key(event: Any) -> int:
        created = event.get("created") if isinstance(event, Mapping) else None
        return created if isinstance(created, int) else -1

    return sorted(events, key=key)


def run_replay(
    engine: WebhookEngine,
    *,
    from_file: Path | None,
    selection: StripeSelection,
    gateway: Callable[[], Gateway],
    force: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
    stripe_key: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ReplaySummary:
    """``webhooks replay``: from a file, or from the Events API (``gateway`` is only built then,
    after the window was checked, so a file replay needs no Stripe key). ``stripe_key`` says
    whether one is configured: a file replay then reads Stripe to settle ties, else it cannot.
    """
    if from_file is not None:
        if selection != StripeSelection():
            raise UsageError(
                "--from-file replays the file's events; it cannot be combined with "
                "--since, --until, --type, --event or --undelivered"
            )
        file_engine = engine.for_replay(fetch=lazy_fetch(gateway) if stripe_key else None)
        with open_events_file(from_file, check=engine.check) as event_file:
            return replay_stream(
                file_engine,
                event_file.events,
                total=len(event_file),
                source="file",
                force=force,
                dry_run=dry_run,
                progress=progress,
                batch_size=batch_size,
            )
    if not (selection.since or selection.event_ids or selection.undelivered):
        raise UsageError(
            "say which events to replay: --since (e.g. 48h), --event evt_..., --undelivered "
            "or --from-file; without one, replay would take Stripe's whole 30-day window"
        )
    check_window(selection)
    stripe = gateway()
    if not dry_run and not selection.event_ids:
        return replay_feed(
            engine.for_replay(fetch=stripe.retrieve_subscription),
            _feed(gateway, selection),
            force=force,
            progress=progress,
            batch_size=batch_size,
        )
    started = time.perf_counter()
    events = fetch_from_stripe(stripe, selection)
    fetch_seconds = time.perf_counter() - started
    summary = replay(
        engine.for_replay(fetch=stripe.retrieve_subscription),
        events,
        source="replay",
        force=force,
        dry_run=dry_run,
        progress=progress,
        batch_size=batch_size,
    )
    return replace(summary, fetch_seconds=fetch_seconds)


def replay(
    engine: WebhookEngine,
    events: Sequence[Mapping[str, Any]],
    *,
    source: str,
    force: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ReplaySummary:
    """Check every event first (a bad one refuses them all), then replay them in this order."""
    for number, event in enumerate(events, start=1):
        try:
            engine.check(event)
        except WebhookError as error:
            raise UsageError(f"event {number} of {len(events)}: {error}") from None
    return replay_stream(
        engine.for_replay(),
        lambda: iter(events),
        total=len(events),
        source=source,
        force=force,
        dry_run=dry_run,
        progress=progress,
        batch_size=batch_size,
    )


def _feed(gateway: Callable[[], Gateway], selection: StripeSelection) -> SlicedFeed:
    now = utcnow()
    since = selection.since or now - EVENTS_API_RETENTION
    until = selection.until or now
    return SlicedFeed(
        gateway,
        start=int(since.timestamp()),
        end=int(until.timestamp()) + 1,
        types=selection.types,
        undelivered=selection.undelivered,
    )


def replay_feed(
    engine: WebhookEngine,
    feed: SlicedFeed,
    *,
    force: bool = False,
    progress: Progress | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ReplaySummary:
    """Replay the Events API's window slice by slice while the next slice is fetched
    (:mod:`.stripe_feed`). An event the engine refuses (the other mode's) is counted failed
    and the others go on: earlier slices may already be applied when it arrives."""
    tally = _Tally(None, progress)
    apply_seconds = 0.0
    for events in feed:
        started = time.perf_counter()
        checked: list[ParsedEvent] = []
        for event in events:
            try:
                checked.append(engine.check(event))
            except WebhookError as error:
                tally.add(
                    [
                        EventOutcome(
                            str(event.get("id")), str(event.get("type")), "failed", str(error)
                        )
                    ]
                )
        for chunk in _chunks(iter(checked), batch_size):
            tally.add(_apply(engine, chunk, source="replay", force=force, batch_size=batch_size))
        apply_seconds += time.perf_counter() - started
    summary = tally.summary(dry_run=False, source="replay", apply_seconds=apply_seconds)
    return replace(summary, fetch_seconds=feed.stats.fetch_seconds)


def replay_stream(
    engine: WebhookEngine,
    events: Callable[[], Iterator[Mapping[str, Any]]],
    *,
    total: int,
    source: str,
    force: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ReplaySummary:
    """Replay checked events in the order ``events()`` yields them (it may be called again: a
    dry run that meets ties previews once more with Stripe's answers).

    ``batch_size`` > 1 applies them in batches (:mod:`.batches`); 1 applies them one by one as
    the endpoint does (one transaction per event; a dry run previews them in one transaction).
    """
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, not {batch_size}")
    started = time.perf_counter()
    if dry_run:
        tally = _preview(engine, events, total, source, force, progress, batch_size)
    else:
        tally = _Tally(total, progress)
        for chunk in _chunks(events(), batch_size):
            parsed = [engine.check(event) for event in chunk]
            tally.add(_apply(engine, parsed, source=source, force=force, batch_size=batch_size))
    return tally.summary(
        dry_run=dry_run, source=source, apply_seconds=time.perf_counter() - started
    )


def _apply(
    engine: WebhookEngine,
    events: Sequence[ParsedEvent],
    *,
    source: str,
    force: bool,
    batch_size: int,
) -> list[EventOutcome]:
    """One chunk: as the endpoint applies an event (``batch_size`` 1), or as one batch."""
    if batch_size == 1:
        return [engine.process(event.payload, source=source, force=force) for event in events]
    return process_batch(engine, events, source=source, force=force)


def _preview(
    engine: WebhookEngine,
    events: Callable[[], Iterator[Mapping[str, Any]]],
    total: int,
    source: str,
    force: bool,
    progress: Progress | None,
    batch_size: int,
) -> _Tally:
    """Dry-run passes: one transaction rolled back; again with Stripe's answers to ties."""
    truths: dict[str, SubscriptionInfo] = {}
    for _ in range(MAX_PREVIEW_PASSES):
        tally = _Tally(total, progress)
        wanted: set[str] = set()
        with engine.db.transaction(dry_run=True) as session:
            for chunk in _chunks(events(), batch_size):
                parsed = [engine.check(event) for event in chunk]
                if batch_size == 1:
                    one = engine.preview_in(
                        session, parsed[0], source=source, force=force, truths=truths, wanted=wanted
                    )
                    tally.add([one])
                    continue
                tally.add(
                    preview_batch(
                        session,
                        engine,
                        parsed,
                        source=source,
                        force=force,
                        truths=truths,
                        wanted=wanted,
                    )
                )
        if not engine.read_truths(wanted, truths):  # no transaction is open here
            break
    return tally


def _weight(outcome: EventOutcome) -> int:
    return 1 + sum(_weight(parked) for parked in outcome.parked)


class _Tally:
    """Counts every outcome, keeps the details of the first :data:`DETAILS_KEPT` (and of every
    failed one), and reports progress: a replay of a million events stays in flat memory. An
    outcome that linked a customer carries its parked events' outcomes, and they count too
    (10,000 links of 10 parked events each would otherwise keep 110,000 outcomes)."""

    def __init__(self, total: int | None, progress: Progress | None) -> None:
        self.total = total
        self.progress = progress
        self.counts: Counter[str] = Counter()
        self.kept: list[EventOutcome] = []
        self.kept_weight = 0  # outcomes kept, with the parked outcomes inside them
        self.omitted = 0
        self.done = 0

    def add(self, outcomes: Sequence[EventOutcome]) -> None:
        for outcome in outcomes:
            self.done += 1
            self.counts[outcome.status] += 1
            noteworthy = outcome.status == "failed" or outcome.reason.startswith("needs refresh")
            if self.kept_weight < DETAILS_KEPT or noteworthy:
                self.kept.append(outcome)
                self.kept_weight += _weight(outcome)
            else:
                self.omitted += 1
            if self.progress is not None:
                self.progress(self.done, self.total, outcome)

    def summary(self, *, dry_run: bool, source: str, apply_seconds: float) -> ReplaySummary:
        counts = {status: self.counts.get(status, 0) for status in STATUSES}
        return ReplaySummary(
            tuple(self.kept),
            dry_run=dry_run,
            source=source,
            tallied=counts,
            omitted=self.omitted,
            apply_seconds=apply_seconds,
        )


def _chunks(items: Iterator[Item], size: int) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def retry_failed(
    engine: WebhookEngine, db: Database, *, dry_run: bool = False, progress: Progress | None = None
) -> ReplaySummary:
    """Process the ledger's failed events again, oldest first, from their stored payloads."""
    with db.read() as session:
        stored = [
            (row.payload, row.source)
            for row in events_repo.failed(session=session)
            if row.payload is not None
        ]
    outcomes = []
    engine = engine.for_replay()
    for number, (payload, source) in enumerate(stored, start=1):
        try:
            outcome = engine.process(payload, source=source, dry_run=dry_run)
        except WebhookError as error:  # e.g. STRIPE_LIVE_MODE changed since it was stored
            outcome = EventOutcome(
                str(payload.get("id")), str(payload.get("type")), "failed", str(error)
            )
        outcomes.append(outcome)
        if progress is not None:
            progress(number, len(stored), outcome)
    return ReplaySummary(tuple(outcomes), dry_run=dry_run, source="ledger")


def _unix(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())
