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
    """
    api_key = settings.require_stripe()

    import stripe

    from billing_cli.gateway.stripe_gateway import StripeGateway

    client = stripe.StripeClient(
        api_key,
        base_addresses={"api": settings.stripe_api_base} if settings.stripe_api_base else None,
        max_network_retries=settings.stripe_max_network_retries,
        http_client=stripe.RequestsClient(session=session),
    )
    return StripeGateway(client)
