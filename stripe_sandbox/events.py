"""Events and their webhook delivery.

localstripe behaviours replaced (:func:`install`):
- ``resources.schedule_webhook``: replaced by an in-order background delivery queue (no 1 s
  sleep per event, 5 s timeout per POST, a failing receiver is logged, never fatal), which
  tracks ``pending_webhooks`` and delivery failures for ``delivery_success``; it signs as
  Stripe does (``t=<now>,v1=HMAC-SHA256(secret, "<t>.<body>")``).
- ``Event.__init__``: events carry ``api_version`` = ``stripe.api_version`` (the version
  stripe-python pins), ``pending_webhooks`` and ``request``; ``data.previous_attributes`` is
  added on ``*.updated`` events emitted through :func:`emit`.
- ``GET /v1/events``: newest first; ``type`` with wildcards (``invoice.*``), ``types[]``,
  ``created[gt|gte|lt|lte]``, ``delivery_success``, ``starting_after``/``ending_before``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
import stripe
from aiohttp import web
from localstripe import resources as ls
from localstripe import webhooks as ls_webhooks

from stripe_sandbox.common import (
    JSON,
    _as_list,
    _bool,
    _created_filter,
    _list_response,
    _newest_first,
    _now,
    _params,
    _pop_expand,
    _unknown,
    log,
)

API_VERSION: str = stripe.api_version
WEBHOOK_TIMEOUT_SECONDS = 5.0


@dataclass
class _Delivery:
    generation: int
    event: Any
    payload: bytes
    endpoints: list[tuple[str, str, str]]  # (endpoint id, url, secret)


class WebhookDeliverer:
    """Posts events to registered endpoints from one background task, in creation order,
    so an API response never waits on a receiver and a dead receiver is only logged."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[_Delivery] | None = None
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._generation = 0

    async def start(self, _app: web.Application) -> None:
        self._queue = asyncio.Queue()
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT_SECONDS)
        )
        self._task = asyncio.create_task(self._run())

    async def stop(self, _app: web.Application) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()

    def forget(self) -> None:
        """Drop queued deliveries (used by the state reset)."""
        self._generation += 1

    def schedule(self, event: Any) -> None:
        endpoints = [
            (str(hook_id), str(hook.url), str(hook.secret))
            for hook_id, hook in ls_webhooks._webhooks.items()
            if hook.events is None or event.type in hook.events
        ]
        event.pending_webhooks = len(endpoints)
        if not endpoints:
            return
        if self._queue is None:
            log.warning("no delivery loop running; event %s not delivered", event.id)
            event._failed_webhooks = len(endpoints)
            event.pending_webhooks = 0
            return
        payload = json.dumps(event._export(), indent=2, sort_keys=True).encode("utf-8")
        self._queue.put_nowait(_Delivery(self._generation, event, payload, endpoints))

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            delivery = await self._queue.get()
            if delivery.generation != self._generation:
                continue
            for endpoint in delivery.endpoints:
                ok = await self._post(delivery, *endpoint)
                delivery.event.pending_webhooks -= 1
                if not ok:
                    delivery.event._failed_webhooks += 1

    async def _post(self, delivery: _Delivery, hook_id: str, url: str, secret: str) -> bool:
        assert self._session is not None
        timestamp = _now()
        signed = f"{timestamp}.".encode() + delivery.payload
        signature = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": f"t={timestamp},v1={signature}",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        event_type = delivery.event.type
        try:
            async with self._session.post(url, data=delivery.payload, headers=headers) as resp:
                if 200 <= resp.status < 300:
                    log.info("webhook %s -> %s delivered", event_type, hook_id)
                    return True
                log.warning("webhook %s -> %s answered %d", event_type, hook_id, resp.status)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("webhook %s -> %s failed: %r", event_type, hook_id, exc)
        return False


DELIVERER = WebhookDeliverer()


def emit(event_type: str, obj: Any, previous: JSON | None = None) -> Any:
    event = ls.Event(event_type, obj)
    if previous:
        event.data["previous_attributes"] = previous
    DELIVERER.schedule(event)
    return event


def _event_matches(event: Any, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(event.type, p) for p in patterns)


async def _list_events(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    events: list[Any] = _newest_first([v for k, v in ls.store.items() if k.startswith("event:")])
    if "type" in data:
        pattern = str(data.pop("type"))
        events = [e for e in events if _event_matches(e, [pattern])]
    if "types" in data:
        types = [str(t) for t in _as_list(data.pop("types"), "types")]
        events = [e for e in events if _event_matches(e, types)]
    events = _created_filter(events, data)
    if "delivery_success" in data:
        wanted = _bool(data.pop("delivery_success"), "delivery_success")
        events = [
            e
            for e in events
            if (getattr(e, "pending_webhooks", 0) == 0 and getattr(e, "_failed_webhooks", 0) == 0)
            == wanted
        ]
    _unknown(data, {"limit", "starting_after", "ending_before"})
    return _list_response("/v1/events", events, data, expand)


def install() -> None:
    """Deliver through :data:`DELIVERER` and give events the fields above (called once)."""
    ls.schedule_webhook = DELIVERER.schedule

    original_event_init = ls.Event.__init__

    def event_init(self: Any, type: str, data: Any) -> None:
        original_event_init(self, type, data)
        self.api_version = API_VERSION
        self.pending_webhooks = 0
        self.request = {"id": None, "idempotency_key": None}
        self._failed_webhooks = 0

    ls.Event.__init__ = event_init
