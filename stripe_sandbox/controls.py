"""The sandbox's own controls: its in-memory state, webhook registration and clock.

localstripe behaviours replaced:
- ``Store.try_load_from_disk`` / ``Store.dump_to_disk``: no-ops (:func:`install`), the sandbox
  never reads or writes ``/tmp/localstripe.pickle`` (state lives only in the process).
- ``POST /_config/webhooks/{id}`` only accepts loopback URLs; ``DELETE /_config/data`` also
  forgets registered webhooks, undelivered events and remembered idempotent answers.

Added: clock controls (no test clocks in localstripe):
``POST /_sandbox/subscriptions/{id}/renew`` and ``POST /_sandbox/subscriptions/{id}/end_trial``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web
from localstripe import resources as ls
from localstripe import webhooks as ls_webhooks

from stripe_sandbox.billing_cycle import end_trial, renew
from stripe_sandbox.common import LOOPBACK_HOSTS, _bad, _params, _req_str, _respond
from stripe_sandbox.events import DELIVERER
from stripe_sandbox.idempotency import _IDEMPOTENT_RESPONSES
from stripe_sandbox.subscriptions import _subscription


async def _config_webhook(request: web.Request) -> web.Response:
    data = await _params(request)
    url = _req_str(data.get("url"), "url")
    secret = _req_str(data.get("secret"), "secret")
    events = data.get("events")
    parts = urlsplit(url)
    # The sandbox must never reach another host: only loopback receivers are accepted.
    if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK_HOSTS:
        raise _bad("url", "Webhook URLs must be http(s) on 127.0.0.1, ::1 or localhost.")
    if events is not None and not isinstance(events, list):
        raise _bad("events")
    ls_webhooks.register_webhook(request.match_info["id"], url, secret, events)
    return web.Response()


async def _delete_webhook(request: web.Request) -> web.Response:
    ls_webhooks._webhooks.pop(request.match_info["id"], None)
    return web.Response()


async def _flush(request: web.Request) -> web.Response:
    ls.store.clear()
    ls_webhooks._webhooks.clear()
    DELIVERER.forget()
    _IDEMPOTENT_RESPONSES.clear()
    return web.Response()


async def _sandbox_renew(request: web.Request) -> web.Response:
    return _respond(renew(_subscription(request.match_info["id"])))


async def _sandbox_end_trial(request: web.Request) -> web.Response:
    return _respond(end_trial(_subscription(request.match_info["id"])))


def install() -> None:
    """Keep the store in memory only (called once)."""
    ls.Store.try_load_from_disk = lambda self: None
    ls.Store.dump_to_disk = lambda self: None
