"""Webhook events: one engine for the live endpoint, replay from Stripe's Events API and from
files, plus the ledger and outbox queries the CLI shows.

``engine`` (at-most-once processing, the ledger), ``handlers`` (what each type does),
``policy`` (order keys and the suspension rule), ``payloads`` (both API shapes), ``replay``.
"""

from billing_cli.services.webhooks.engine import EventOutcome, WebhookEngine

__all__ = ["EventOutcome", "WebhookEngine"]
