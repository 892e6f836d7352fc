"""The endpoint's Prometheus metrics, through the official ``prometheus_client``.

Each app gets its own registry (not the library's global one), so two apps in one process (tests,
an operator mounting the endpoint twice) count apart. With ``webhooks serve --workers N`` every
worker process has its own registry and a scrape sees the worker that answered it; run one
worker per port (or sum over the processes' ``instance`` labels) when the count must be total.

Label values are bounded: event types come only from deliveries whose signature was verified
(Stripe's own type names), outcomes and rejection reasons from fixed lists.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from billing_cli.services.observe import REJECTION_REASONS

# Outcomes of a verified delivery: the engine's, or "error" when processing raised.
OUTCOMES = ("processed", "ignored", "skipped", "failed", "rejected", "error")
# Seconds; the engine takes about 1-3 ms an event, a slow database tens to hundreds.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


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
        )
        for reason in REJECTION_REASONS:  # every reason shows, at 0, from the first scrape
            self.rejections.labels(reason=reason)

    def exposition(self) -> tuple[bytes, str]:
        """The text format a Prometheus scrape expects, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
