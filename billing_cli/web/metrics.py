"""The endpoint's Prometheus metrics, through the official ``prometheus_client``.

Each app gets its own registry (not the library's global one), so two apps in one process (tests,
an operator mounting the endpoint twice) count apart.

With ``webhooks serve --workers N`` a scrape reaches whichever worker accepts it, so every
worker must answer for all of them: prometheus_client's multiprocess mode. ``webhooks serve``
sets ``PROMETHEUS_MULTIPROC_DIR`` to a fresh directory before the workers start (the library
reads it when it is imported, which in a spawned worker comes after); each worker then keeps its
values in memory-mapped files there, and :meth:`EndpointMetrics.exposition` adds up the files of
every worker, the ones that exited included (a counter never goes back). The in-flight gauge
counts live workers only (``livesum``): :func:`process_exited` drops a worker's share when it
stops (its lifespan's end, or the supervisor when a worker died). The files hold one value per
label set, and the label sets are bounded, so a flood of refusals grows no file.

Label values are bounded: event types come only from deliveries whose signature was verified
(Stripe's own type names), outcomes and rejection reasons from fixed lists.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from billing_cli.services.observe.counters import REJECTION_REASONS

# Outcomes of a verified delivery: the engine's, or "error" when processing raised.
OUTCOMES = ("processed", "ignored", "skipped", "failed", "rejected", "error")
# Seconds; the engine takes about 1-3 ms an event, a slow database tens to hundreds.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_mode() -> bool:
    """True in a worker of ``webhooks serve --workers N`` (see the module's docstring)."""
    return bool(os.environ.get(MULTIPROC_ENV))


def process_exited(pid: int) -> None:
    """Drop a stopped worker's share of the live gauges (its counters stay counted)."""
    if multiprocess_mode():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class EndpointMetrics:
    """Deliveries by event type and outcome, refusals by reason, processing time, in flight."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.deliveries = Counter(
            "billing_webhook_deliveries",
            "Signed deliveries handled, by event type and outcome.",
            ("type", "outcome"),
            registry=self.registry,
        )
        self.rejections = Counter(
            "billing_webhook_rejections",
            "Deliveries refused before processing (400/413), by reason.",
            ("reason",),
            registry=self.registry,
        )
        self.processing = Histogram(
            "billing_webhook_processing_seconds",
            "Time from a delivery's arrival to its answer, for signed deliveries.",
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "billing_webhook_in_flight",
            "Deliveries being received or processed right now.",
            registry=self.registry,
            multiprocess_mode="livesum",  # the workers alive now, added up
        )
        for reason in REJECTION_REASONS:  # every reason shows, at 0, from the first scrape
            self.rejections.labels(reason=reason)

    def exposition(self) -> tuple[bytes, str]:
        """The text format a Prometheus scrape expects, and its content type: this app's
        registry, or in multiprocess mode the sum over every worker's files."""
        if not multiprocess_mode():
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client import multiprocess

        everyone = CollectorRegistry()
        multiprocess.MultiProcessCollector(everyone)  # type: ignore[no-untyped-call]
        return generate_latest(everyone), CONTENT_TYPE_LATEST
