"""The next invoice of a tenant's subscription, as Stripe previews it (a read, no side effect).

Stripe answers ``POST /v1/invoices/create_preview`` (current API) with the invoice it would
issue next: its date, lines, discounts, the customer's credit applied, the amount due. Older
API versions answered ``GET /v1/invoices/upcoming`` in the older invoice shape (one
``discount``, ``line.proration``, ``line.price``); the gateway's converter reads both shapes.
"""

from __future__ import annotations

from typing import Any

from billing_cli.gateway import Gateway, InvoicePreview, SubscriptionPreview
from billing_cli.repository import Database
from billing_cli.services.payments.invoice_views import preview_view
from billing_cli.services.subscriptions.updates import live_subscription


def upcoming_invoice(
    db: Database, gateway: Gateway, *, tenant_slug: str
) -> tuple[dict[str, Any], InvoicePreview]:
    """The tenant's next invoice: a view for ``--json`` and the preview for people."""
    tenant, live = live_subscription(db, gateway, tenant_slug)
    preview = gateway.preview_subscription_invoice(live.id, SubscriptionPreview())
    view = {"tenant": tenant.slug, "subscription": live.id, **preview_view(preview)}
    return view, preview
