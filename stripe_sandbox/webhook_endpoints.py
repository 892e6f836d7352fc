"""The sandbox's ``/v1/webhook_endpoints``: list, create, retrieve, update and delete.

localstripe has no WebhookEndpoint resource, only the private ``POST /_config/webhooks/{id}``.
This module adds Stripe's public one, so ``billing webhooks setup`` runs against the sandbox
exactly as against Stripe. An endpoint created here is registered with localstripe's webhook
registry (``localstripe.webhooks._webhooks``), which the sandbox's deliverer
(:class:`.events.WebhookDeliverer`) reads: it receives the sandbox's signed deliveries for
its ``enabled_events`` (``*`` for every type) while it is ``enabled``; a disabled or deleted
endpoint receives nothing. Like Stripe, the signing secret is in the creation's answer only.

Endpoints live in localstripe's store (``webhook_endpoint:<id>``), so ``DELETE /_config/data``
forgets them with everything else. Only loopback URLs are accepted: the sandbox never posts to
another host. Its ``ROUTES`` are mounted by :func:`.server.build_app` like ``extensions.ROUTES``.
"""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from localstripe import resources as ls
from localstripe import webhooks as ls_webhooks

from stripe_sandbox.common import (
    JSON,
    LOOPBACK_HOSTS,
    Handler,
    _as_list,
    _bad,
    _bool,
    _error,
    _merge_metadata,
    _now,
    _opt_str,
    _paginate,
    _params,
    _pop_expand,
    _req_str,
    _respond,
    _rid,
    _unknown,
)
from stripe_sandbox.events import API_VERSION

_EVENT_TYPE = re.compile(r"^(\*|[a-z_]+(\.[a-z_*]+)+)$")
_KIND = "webhook_endpoint"


class WebhookEndpoint:
    """One endpoint, as Stripe shows it (the secret is kept, and shown on creation only)."""

    object = _KIND

    def __init__(self, *, url: str, enabled_events: list[str], api_version: str | None) -> None:
        self.id = _rid("we_")
        self.created = _now()
        self.url = url
        self.enabled_events = enabled_events
        self.api_version = api_version
        self.description: str | None = None
        self.metadata: dict[str, str] = {}
        self.status = "enabled"
        self.secret = "whsec_" + secrets.token_hex(24)
        ls.store[f"{_KIND}:{self.id}"] = self

    def export(self, *, with_secret: bool = False) -> JSON:
        data: JSON = {
            "id": self.id,
            "object": _KIND,
            "api_version": self.api_version,
            "application": None,
            "created": self.created,
            "description": self.description,
            "enabled_events": list(self.enabled_events),
            "livemode": False,
            "metadata": dict(self.metadata),
            "status": self.status,
            "url": self.url,
        }
        if with_secret:
            data["secret"] = self.secret
        return data

    def register(self) -> None:
        """Deliver to it while enabled; stop when disabled."""
        if self.status != "enabled":
            ls_webhooks._webhooks.pop(self.id, None)
            return
        events = None if "*" in self.enabled_events else list(self.enabled_events)
        ls_webhooks.register_webhook(self.id, self.url, self.secret, events)


def _url(value: Any) -> str:
    url = _req_str(value, "url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK_HOSTS:
        raise _bad("url", "Webhook URLs must be http(s) on 127.0.0.1, ::1 or localhost.")
    return url


def _events(value: Any) -> list[str]:
    events = [str(e) for e in _as_list(value, "enabled_events")]
    if not events:
        raise _error(
            400,
            "Missing required param: enabled_events.",
            param="enabled_events",
            code="parameter_missing",
        )
    for event in events:
        if not _EVENT_TYPE.match(event):
            raise _bad("enabled_events", f"Invalid event type: {event}")
    return list(dict.fromkeys(events))


def _endpoint(endpoint_id: str) -> WebhookEndpoint:
    found = ls.store.get(f"{_KIND}:{endpoint_id}")
    if not isinstance(found, WebhookEndpoint):
        raise _error(
            404,
            f"No such webhook endpoint: '{endpoint_id}'",
            param="id",
            code="resource_missing",
        )
    return found


def _all() -> list[WebhookEndpoint]:
    return [v for v in ls.store.values() if isinstance(v, WebhookEndpoint)]


async def _create(request: web.Request) -> web.Response:
    data = await _params(request)
    _pop_expand(data)
    _unknown(data, {"url", "enabled_events", "api_version", "description", "metadata"})
    endpoint = WebhookEndpoint(
        url=_url(data.get("url")),
        enabled_events=_events(data.get("enabled_events")),
        api_version=_opt_str(data.get("api_version"), "api_version") or API_VERSION,
    )
    endpoint.description = _opt_str(data.get("description"), "description")
    endpoint.metadata = _merge_metadata({}, data.get("metadata"))
    endpoint.register()
    return _respond(endpoint.export(with_secret=True))


async def _list(request: web.Request) -> web.Response:
    data = await _params(request)
    _pop_expand(data)
    _unknown(data, {"limit", "starting_after", "ending_before"})
    envelope = _paginate("/v1/webhook_endpoints", list(reversed(_all())), data)
    envelope["data"] = [e.export() for e in envelope["data"]]
    return _respond(envelope)


async def _retrieve(request: web.Request) -> web.Response:
    return _respond(_endpoint(request.match_info["id"]).export())


async def _update(request: web.Request) -> web.Response:
    endpoint = _endpoint(request.match_info["id"])
    data = await _params(request)
    _pop_expand(data)
    _unknown(data, {"url", "enabled_events", "disabled", "description", "metadata"})
    if "url" in data:
        endpoint.url = _url(data["url"])
    if "enabled_events" in data:
        endpoint.enabled_events = _events(data["enabled_events"])
    if "disabled" in data:
        endpoint.status = "disabled" if _bool(data["disabled"], "disabled") else "enabled"
    if "description" in data:
        endpoint.description = _opt_str(data["description"], "description")
    endpoint.metadata = _merge_metadata(endpoint.metadata, data.get("metadata"))
    endpoint.register()
    return _respond(endpoint.export())


async def _delete(request: web.Request) -> web.Response:
    endpoint = _endpoint(request.match_info["id"])
    ls.store.pop(f"{_KIND}:{endpoint.id}", None)
    ls_webhooks._webhooks.pop(endpoint.id, None)
    return _respond({"id": endpoint.id, "object": _KIND, "deleted": True})


ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/v1/webhook_endpoints", _create),
    ("GET", "/v1/webhook_endpoints", _list),
    ("GET", "/v1/webhook_endpoints/{id}", _retrieve),
    ("POST", "/v1/webhook_endpoints/{id}", _update),
    ("DELETE", "/v1/webhook_endpoints/{id}", _delete),
]
