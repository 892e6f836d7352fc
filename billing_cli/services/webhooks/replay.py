"""Replay: run events again through the same engine the endpoint uses.

For on-call after missed or failed deliveries: events come from Stripe's Events API (which keeps
30 days, so an older window is refused before any call, pointing at ``--from-file``), from a file
(a JSON array, JSON lines, or one event object, checked whole before anything is processed), or
from the ledger's failed rows. They are processed oldest first through
:meth:`WebhookEngine.for_replay`, one transaction per event as the endpoint commits: each
outcome carries the before/after the engine computed (under ``dry_run`` nothing is written).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from billing_cli.errors import UsageError, WebhookError
from billing_cli.gateway import Gateway
from billing_cli.models import utcnow
from billing_cli.repository import Database
from billing_cli.repository import events as events_repo
from billing_cli.services.webhooks.engine import EventOutcome, WebhookEngine, lazy_fetch
from billing_cli.timeparse import iso

EVENTS_API_RETENTION = timedelta(days=30)
# A file replay reads at most this much (the bench's 10,000 events are 44 MB).
MAX_FILE_BYTES = 512 * 2**20
STATUSES = ("processed", "skipped", "ignored", "deferred", "failed")

Progress = Callable[[int, int, EventOutcome], None]
"""Called after each event with (done, total, outcome): the CLI's progress bar."""


@dataclass(frozen=True)
class ReplaySummary:
    """What a replay did, event by event, and the count per status."""

    outcomes: tuple[EventOutcome, ...]
    dry_run: bool
    source: str

    @property
    def counts(self) -> dict[str, int]:
        found = Counter(outcome.status for outcome in self.outcomes)
        return {status: found.get(status, 0) for status in STATUSES}

    @property
    def failed(self) -> int:
        return self.counts["failed"]

    @property
    def needs_refresh(self) -> tuple[EventOutcome, ...]:
        """Outcomes whose same-second tie nobody could settle (no Stripe key)."""
        return tuple(o for o in self.outcomes if o.reason.startswith("needs refresh"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dry_run": self.dry_run,
            "counts": self.counts,
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
    if since is not None and until is not None and until < since:
        raise UsageError("--until is before --since")


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


def load_events_file(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> list[dict[str, Any]]:
    """Events from a file: a JSON array, JSON lines, or one event object; oldest first.

    Any problem (unreadable, larger than ``max_bytes``, not JSON, nested too deep, an item that
    is not an event) is one UsageError naming the place, raised before anything is processed.
    Reading stops at the cap, so ``/dev/zero`` or a runaway pipe cannot exhaust memory.
    """
    try:
        with path.open("rb") as stream:
            raw = stream.read(max_bytes + 1)
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
    if len(raw) > max_bytes:
        raise UsageError(
            f"{path} is larger than {max_bytes // 2**20:,} MiB; split it and replay each part"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {path}: not UTF-8 text") from None
    try:
        items = _parse_events_text(text, path)
    except RecursionError:
        raise UsageError(f"{path}: JSON nested too deep to be a Stripe event") from None
    if not items:
        raise UsageError(f"{path} holds no events")
    for number, item in enumerate(items, start=1):
        if not isinstance(item, Mapping):
            raise UsageError(f"{path}: item {number} is not an event object")
    return oldest_first(items)


def _parse_events_text(text: str, path: Path) -> list[Any]:
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    else:
        return whole if isinstance(whole, list) else [whole]
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise UsageError(
                f"{path} line {number} is not JSON ({error.msg}); expected a JSON array, "
                "JSON lines, or one event object"
            ) from None
    return items


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
        events = load_events_file(from_file)
        file_engine = engine.for_replay(fetch=lazy_fetch(gateway) if stripe_key else None)
        return replay(
            file_engine, events, source="file", force=force, dry_run=dry_run, progress=progress
        )
    if not (selection.since or selection.event_ids or selection.undelivered):
        raise UsageError(
            "say which events to replay: --since (e.g. 48h), --event evt_..., --undelivered "
            "or --from-file; without one, replay would take Stripe's whole 30-day window"
        )
    check_window(selection)
    stripe = gateway()
    events = fetch_from_stripe(stripe, selection)
    return replay(
        engine.for_replay(fetch=stripe.retrieve_subscription),
        events,
        source="replay",
        force=force,
        dry_run=dry_run,
        progress=progress,
    )


def replay(
    engine: WebhookEngine,
    events: Sequence[Mapping[str, Any]],
    *,
    source: str,
    force: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ReplaySummary:
    """Check every event first (a bad one refuses the whole batch), then process in order;
    a dry run previews the batch cumulatively (:meth:`WebhookEngine.preview`)."""
    for number, event in enumerate(events, start=1):
        try:
            engine.check(event)
        except WebhookError as error:
            raise UsageError(f"event {number} of {len(events)}: {error}") from None
    engine = engine.for_replay()
    if dry_run:
        previewed = engine.preview(events, source=source, force=force, progress=progress)
        return ReplaySummary(tuple(previewed), dry_run=True, source=source)
    outcomes = []
    for number, event in enumerate(events, start=1):
        outcome = engine.process(event, source=source, force=force, dry_run=dry_run)
        outcomes.append(outcome)
        if progress is not None:
            progress(number, len(events), outcome)
    return ReplaySummary(tuple(outcomes), dry_run=dry_run, source=source)


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
