"""Webhook events: one engine for the live endpoint, replay from Stripe's Events API and from
files, plus the ledger and outbox queries the CLI shows.

``engine`` (at-most-once processing, the ledger), ``applier`` (one event in a transaction),
``deferred`` (parked events), ``ties`` (same-second ties), ``handlers`` (what each type does),
``policy`` (order keys and the suspension rule), ``payloads`` (both API shapes), ``replay``.
"""

from billing_cli.services.webhooks.applier import EventOutcome
from billing_cli.services.webhooks.engine import WebhookEngine

__all__ = ["EventOutcome", "WebhookEngine"]
