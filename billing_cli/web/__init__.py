"""The HTTP side of the tool: the Stripe webhook endpoint as an importable ASGI app.

``billing webhooks serve`` runs it under uvicorn; an operator with an ASGI server of their own
mounts :func:`create_app` instead. Importing this package imports Starlette, so the CLI imports
it only inside the command that serves.
"""

from billing_cli.web.app import DEFAULT_MAX_BODY_BYTES, DEFAULT_PATH, create_app

__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_PATH", "create_app"]
