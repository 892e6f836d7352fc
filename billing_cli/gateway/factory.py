"""Build the real gateway from the settings of one command run.

stripe-python is imported here, inside :func:`make_gateway`, and nowhere at module level, so
importing :mod:`billing_cli.gateway` (which every command module does) costs nothing and
``billing --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from billing_cli.config import Settings

if TYPE_CHECKING:
    import requests

    from billing_cli.gateway.protocol import Gateway


def make_gateway(settings: Settings, *, session: requests.Session | None = None) -> Gateway:
    """A ``StripeGateway`` for these settings.

    ``settings.require_stripe()`` checks the key exists and matches the live/test mode before
    anything is sent. ``STRIPE_API_BASE`` points the client at a local emulator; ``session``
    lets a caller (a test counting POSTs, the sandbox) supply its own ``requests.Session``.
    Without one, a :class:`.http.RetryingSession` does the retrying (with the same idempotency
    key), bounds each attempt by ``STRIPE_TIMEOUT`` and all of them by ``STRIPE_TIME_BUDGET``;
    stripe-python's own retries are off so that the two never multiply.
    """
    api_key = settings.require_stripe()

    import stripe

    from billing_cli.gateway.http import RetryingSession
    from billing_cli.gateway.stripe_gateway import StripeGateway

    if session is None:
        session = RetryingSession(
            max_retries=settings.stripe_max_network_retries,
            timeout=settings.stripe_timeout,
            budget=settings.stripe_time_budget,
        )
    client = stripe.StripeClient(
        api_key,
        base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else None,
        max_network_retries=0,
        http_client=stripe.RequestsClient(session=session, timeout=settings.stripe_timeout),
    )
    return StripeGateway(client)
