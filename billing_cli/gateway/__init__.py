"""The gateway: the only part of the tool that talks to Stripe (and the only one importing stripe).

Services get a :class:`Gateway` as an argument and see only the small types of :mod:`.types`;
Stripe's errors reach them as ``billing_cli.errors.GatewayError``. :func:`make_gateway` builds
the real adapter and imports stripe only when it is called, so importing this package is cheap
and ``billing --help`` stays fast. :class:`DryRunGateway` wraps any gateway for ``--dry-run``;
:func:`idempotency_key` derives the key every write must carry.
"""

from billing_cli.gateway.dry_run import DryRunGateway, PlannedWrite
from billing_cli.gateway.factory import make_gateway
from billing_cli.gateway.idempotency import idempotency_key
from billing_cli.gateway.protocol import Gateway
from billing_cli.gateway.types import (
    AccountMode,
    CustomerInfo,
    Interval,
    InvoicePreview,
    PauseBehavior,
    PaymentInfo,
    PaymentMethodInfo,
    PreviewLine,
    PriceInfo,
    ProductInfo,
    ProrationBehavior,
    SubscriptionInfo,
    SubscriptionPreview,
    WebhookEndpointInfo,
)

__all__ = [
    "AccountMode",
    "CustomerInfo",
    "DryRunGateway",
    "Gateway",
    "Interval",
    "InvoicePreview",
    "PauseBehavior",
    "PaymentInfo",
    "PaymentMethodInfo",
    "PlannedWrite",
    "PreviewLine",
    "PriceInfo",
    "ProductInfo",
    "ProrationBehavior",
    "SubscriptionInfo",
    "SubscriptionPreview",
    "WebhookEndpointInfo",
    "idempotency_key",
    "make_gateway",
]
