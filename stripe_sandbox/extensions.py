"""The one place that assembles the sandbox's changes to localstripe, from outside.

localstripe (1.15.10) is a stateful fake Stripe, but it speaks the 2017-08-15 API and lacks
what billing_cli needs from the current one. :func:`install` patches a few of its classes and
:data:`ROUTES` lists aiohttp routes that ``server.build_app`` mounts *before* localstripe's own,
so a route here wins over localstripe's route for the same path. Each change lives in the module
named for its resource, whose docstring says what it replaces or adds:

- :mod:`.common`: helpers the modules share (errors, parameters, ``expand[]``, list envelopes);
- :mod:`.controls`: in-memory state, its reset, webhook registration, clock controls;
- :mod:`.events`: events and their signed webhook delivery, ``GET /v1/events``;
- :mod:`.cards`: test cards and declines (payment methods, charges, payment intent errors);
- :mod:`.customers`, :mod:`.products`, :mod:`.payment_intents`, :mod:`.prices`;
- :mod:`.subscriptions` (the resources) and :mod:`.subscriptions_api` (their routes and rules);
- :mod:`.invoices` (the resource and its routes), :mod:`.billing_cycle` (how a subscription
  bills and collects), :mod:`.invoice_preview`;
- :mod:`.idempotency`: ``Idempotency-Key`` on API POSTs (its middleware is mounted by the server).

The order of :data:`ROUTES` and of the patches in :func:`install` is the one the single
module had; fixed paths come before ``{id}`` paths.
"""

from __future__ import annotations

from stripe_sandbox import cards, controls, customers, events
from stripe_sandbox.billing_cycle import _pay_invoice
from stripe_sandbox.common import Handler
from stripe_sandbox.controls import (
    _config_webhook,
    _delete_webhook,
    _flush,
    _sandbox_end_trial,
    _sandbox_renew,
)
from stripe_sandbox.events import _list_events
from stripe_sandbox.invoice_preview import _create_preview
from stripe_sandbox.invoices import (
    _invoice_lines,
    _list_invoices,
    _retrieve_invoice,
    _update_invoice,
    _void_invoice,
)
from stripe_sandbox.payment_intents import _create_payment_intent, _list_payment_intents
from stripe_sandbox.prices import _create_price, _list_prices, _retrieve_price, _update_price
from stripe_sandbox.products import _update_product
from stripe_sandbox.subscriptions_api import (
    _cancel_subscription,
    _create_subscription,
    _list_subscription_items,
    _list_subscriptions,
    _retrieve_subscription,
    _update_subscription,
)

# Order matters: fixed paths before ``{id}`` paths; all of these win over localstripe's.
ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/_config/webhooks/{id}", _config_webhook),
    ("DELETE", "/_config/webhooks/{id}", _delete_webhook),
    ("DELETE", "/_config/data", _flush),
    ("POST", "/_sandbox/subscriptions/{id}/renew", _sandbox_renew),
    ("POST", "/_sandbox/subscriptions/{id}/end_trial", _sandbox_end_trial),
    ("POST", "/v1/prices", _create_price),
    ("GET", "/v1/prices", _list_prices),
    ("GET", "/v1/prices/{id}", _retrieve_price),
    ("POST", "/v1/prices/{id}", _update_price),
    ("POST", "/v1/products/{id}", _update_product),
    ("POST", "/v1/payment_intents", _create_payment_intent),
    ("GET", "/v1/payment_intents", _list_payment_intents),
    ("POST", "/v1/subscriptions", _create_subscription),
    ("GET", "/v1/subscriptions", _list_subscriptions),
    ("GET", "/v1/subscriptions/{id}", _retrieve_subscription),
    ("POST", "/v1/subscriptions/{id}", _update_subscription),
    ("DELETE", "/v1/subscriptions/{id}", _cancel_subscription),
    ("GET", "/v1/subscription_items", _list_subscription_items),
    ("POST", "/v1/invoices/create_preview", _create_preview),
    ("GET", "/v1/invoices", _list_invoices),
    ("GET", "/v1/invoices/{id}", _retrieve_invoice),
    ("POST", "/v1/invoices/{id}", _update_invoice),
    ("GET", "/v1/invoices/{id}/lines", _invoice_lines),
    ("POST", "/v1/invoices/{id}/pay", _pay_invoice),
    ("POST", "/v1/invoices/{id}/void", _void_invoice),
    ("GET", "/v1/events", _list_events),
]

_installed = False


def install() -> None:
    """Apply the class-level patches of each module, in order (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    controls.install()
    events.install()
    cards.install()
    customers.install()
