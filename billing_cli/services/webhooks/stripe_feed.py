"""The Events API in time slices, fetched one slice ahead of the replay that applies them.

Stripe lists events newest first and has no oldest-first order, so a replay of a whole window
used to wait for every page before applying the first event. Here the window is cut into
consecutive time slices, oldest first; each slice is listed (every page, then put oldest
first) by a background thread while the replay applies the slice before it, so the network and
the database work at the same time. The slice width adapts to the density of events: a slice
that brought many more than :data:`SLICE_TARGET` events halves the next one, a sparse one
doubles it. Slices are disjoint (``created`` in ``[start, end)``), so no event is listed twice.

The thread only reads Stripe, through a gateway of its own; it never touches the database.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from billing_cli.gateway import Gateway

SLICE_TARGET = 1_000
FIRST_SLICE_SECONDS = 3_600
MIN_SLICE_SECONDS = 1
MAX_SLICE_SECONDS = 7 * 86_400


@dataclass
class FeedStats:
    """How much was fetched, and the time spent fetching (in the background thread)."""

    fetched: int = 0
    fetch_seconds: float = 0.0
    slices: int = 0


class SlicedFeed:
    """Iterate over the window's events one slice at a time (each a list, oldest first)."""

    def __init__(
        self,
        gateway: Callable[[], Gateway],
        *,
        start: int,
        end: int,
        types: Sequence[str] = (),
        undelivered: bool = False,
        first_width: int = FIRST_SLICE_SECONDS,
    ) -> None:
        self.gateway = gateway
        self.start = start
        self.end = end  # exclusive
        self.types = tuple(types)
        self.undelivered = undelivered
        self.width = max(MIN_SLICE_SECONDS, first_width)
        self.stats = FeedStats()

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        if self.start >= self.end:
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="events-feed") as pool:
            reader: list[Gateway] = []
            window_start = self.start
            pending: Future[list[dict[str, Any]]] | None = self._submit(pool, reader, window_start)
            window_start = min(self.end, window_start + self.width)
            while pending is not None:
                events = pending.result()
                self._adapt(len(events))
                pending = None
                if window_start < self.end:
                    pending = self._submit(pool, reader, window_start)
                    window_start = min(self.end, window_start + self.width)
                yield events

    def _submit(
        self, pool: ThreadPoolExecutor, reader: list[Gateway], start: int
    ) -> Future[list[dict[str, Any]]]:
        end = min(self.end, start + self.width)
        return pool.submit(self._fetch, reader, start, end)

    def _fetch(self, reader: list[Gateway], start: int, end: int) -> list[dict[str, Any]]:
        """One slice, oldest first; runs in the background thread."""
        if not reader:
            reader.append(self.gateway())
        started = time.perf_counter()
        events = reader[0].list_events(
            types=self.types, created_gte=start, created_lte=end - 1, undelivered=self.undelivered
        )
        self.stats.fetch_seconds += time.perf_counter() - started
        self.stats.fetched += len(events)
        self.stats.slices += 1
        return events

    def _adapt(self, count: int) -> None:
        if count > 2 * SLICE_TARGET:
            self.width = max(MIN_SLICE_SECONDS, self.width // 2)
        elif count < SLICE_TARGET // 2:
            self.width = min(MAX_SLICE_SECONDS, self.width * 2)
