"""A stateful local Stripe sandbox for tests and demos: localstripe plus the pieces of the
current Stripe API it lacks (prices, current-shape subscriptions and invoices, signed
webhooks for every state change, declines with decline codes, clock controls).

A package of its own beside billing_cli, which it does not import: a fake Stripe for
``billing demo``, ``billing sandbox`` and the tests. It ships in billing-cli's wheel, but what its
server runs on (localstripe, aiohttp) comes only with the optional ``sandbox`` extra, which a
production install leaves out; :func:`missing_dependencies` says whether they are there.

``Sandbox`` runs it in a subprocess on 127.0.0.1; importing this package stays cheap (the
server side, ``server`` and the resource modules it mounts, is only imported by the
subprocess).
"""

from stripe_sandbox.process import (
    SANDBOX_PUBLISHABLE_KEY,
    SANDBOX_SECRET_KEY,
    Sandbox,
    SandboxError,
    missing_dependencies,
)

__all__ = [
    "SANDBOX_PUBLISHABLE_KEY",
    "SANDBOX_SECRET_KEY",
    "Sandbox",
    "SandboxError",
    "missing_dependencies",
]
