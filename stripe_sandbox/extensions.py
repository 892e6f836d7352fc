"""The one place that changes localstripe's behaviour, from outside, for the sandbox.

localstripe (1.15.10) is a stateful fake Stripe, but it speaks the 2017-08-15 API and lacks
what billing_cli needs from the current one. This module patches a few of its classes when
``install()`` is called and supplies aiohttp routes that ``server.build_app`` mounts
*before* localstripe's own, so a route here wins over localstripe's route for the same path.

localstripe behaviours replaced:
- ``Store.try_load_from_disk`` / ``Store.dump_to_disk``: no-ops, the sandbox never reads or
  writes ``/tmp/localstripe.pickle`` (state lives only in the process).
- ``resources.schedule_webhook``: replaced by an in-order background delivery queue (no 1 s
  sleep per event, 5 s timeout per POST, a failing receiver is logged, never fatal), which
  tracks ``pending_webhooks`` and delivery failures for ``delivery_success``; it signs as
  Stripe does (``t=<now>,v1=HMAC-SHA256(secret, "<t>.<body>")``).
- ``Event.__init__``: events carry ``api_version`` = ``stripe.api_version`` (the version
  stripe-python pins), ``pending_webhooks`` and ``request``; ``data.previous_attributes`` is
  added on ``*.updated`` events emitted here.
- ``PaymentMethod._try_get_canonical_test_article``: adds ``pm_card_chargeDeclined``,
  ``pm_card_chargeDeclinedInsufficientFunds`` (and the ``pm_card_visa_`` spellings),
  ``..LostCard``, ``..StolenCard``, ``..ExpiredCard``, ``..IncorrectCvc``,
  ``..ProcessingError``, ``pm_card_mastercard``.
- ``PaymentMethod._charging_is_declined``: cards that Stripe declines at attach time also
  decline when charged directly (localstripe charged them successfully).
- ``Charge._set_auth_failure`` / ``Charge._raise_failure``: failures carry the card's
  ``failure_code`` and ``decline_code`` and answer HTTP 402 with ``type=card_error`` (which
  stripe-python raises as ``stripe.CardError``), plus ``charge`` and ``payment_intent``.
- ``PaymentIntent.last_payment_error``: adds ``type`` and ``decline_code``.
- ``POST /v1/products/{id}``: ``active``/``shippable`` stored as booleans (localstripe stored
  the string 'false'), ``""`` deletes a metadata key, emits ``product.updated``.
- ``POST /v1/payment_intents``: accepts ``description``, ``off_session`` and other common
  parameters localstripe rejects; emits ``payment_intent.created``.
- ``GET /v1/events``: newest first; ``type`` with wildcards (``invoice.*``), ``types[]``,
  ``created[gt|gte|lt|lte]``, ``delivery_success``, ``starting_after``/``ending_before``.
- Subscriptions (``/v1/subscriptions``, ``/v1/subscription_items``) and subscription invoices
  (``/v1/invoices``, ``/v1/invoices/{id}``, ``/pay``, ``/void``, ``/lines``,
  ``/v1/invoices/create_preview``): reimplemented in the current API shape (prices, periods on
  items, ``invoice.parent.subscription_details``, ``invoice.payments``, trials,
  ``default_payment_method``, ``proration_behavior``, ``cancel_at_period_end``).
- ``Idempotency-Key`` (ignored by localstripe) is honoured on ``POST /v1/...`` by
  ``idempotency_middleware``: the first answer is replayed, other parameters are refused with
  ``idempotency_error``.
- ``Customer._api_delete``/``_api_retrieve``: a deleted customer is still retrievable, as
  Stripe's ``{"id": ..., "object": "customer", "deleted": true}`` stub (localstripe: 404).
- ``POST /_config/webhooks/{id}`` only accepts loopback URLs; ``DELETE /_config/data`` also
  forgets registered webhooks and undelivered events.

Added (absent from localstripe):
- A Price resource: ``POST/GET /v1/prices``, ``GET/POST /v1/prices/{id}`` with lookup keys,
  ``transfer_lookup_key``, immutable amounts; ``price.created``/``price.updated`` events.
- Events: ``customer.subscription.updated`` (with ``previous_attributes``),
  ``customer.subscription.deleted``, ``customer.subscription.trial_will_end``,
  ``invoice.created``, ``invoice.finalized``, ``invoice.paid`` + ``invoice.payment_succeeded``,
  ``invoice.payment_failed``, ``invoice.voided``, ``invoice.updated``, ``product.updated``,
  ``payment_intent.created`` (localstripe keeps emitting its own, e.g. ``customer.created``).
- Sandbox-only clock controls (no test clocks in localstripe):
  ``POST /_sandbox/subscriptions/{id}/renew`` and ``POST /_sandbox/subscriptions/{id}/end_trial``.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import fnmatch
import hashlib
import hmac
import json
import logging
import secrets
import string
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import stripe
from aiohttp import web
from localstripe import resources as ls
from localstripe import server as ls_server
from localstripe import webhooks as ls_webhooks
from localstripe.errors import UserError

JSON = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

API_VERSION: str = stripe.api_version
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
WEBHOOK_TIMEOUT_SECONDS = 5.0
# Stripe's Smart Retries schedule the next attempt days later; the sandbox only reports it.
RETRY_DELAY_SECONDS = 3 * 86400
TRIAL_WILL_END_WINDOW = 3 * 86400
PRORATION_BEHAVIORS = ("create_prorations", "none", "always_invoice")

log = logging.getLogger("stripe_sandbox")

_ALPHABET = string.ascii_letters + string.digits


def _rid(prefix: str, n: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(n))


def _now() -> int:
    return int(time.time())


# ---------------------------------------------------------------------------------------
# Errors and parameter parsing (stripe-python form-encodes everything as strings)
# ---------------------------------------------------------------------------------------


def _error(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    type_: str = "invalid_request_error",
    **extra: Any,
) -> BaseException:
    contents: JSON = {"message": message}
    if param is not None:
        contents["param"] = param
    if code is not None:
        contents["code"] = code
    contents.update(extra)
    err: BaseException = UserError(status, message, contents)
    # UserError forces invalid_request_error; Stripe's type drives stripe-python's mapping.
    err.body["error"]["type"] = type_  # type: ignore[attr-defined]
    return err


def _bad(param: str, message: str | None = None) -> BaseException:
    return _error(400, message or f"Invalid value for {param}.", param=param)


def _unknown(data: JSON, allowed: set[str]) -> None:
    for key in data:
        if key not in allowed:
            raise _error(
                400,
                f"Received unknown parameter: {key}",
                param=key,
                code="parameter_unknown",
            )


def _int(value: Any, param: str, *, minimum: int | None = None) -> int:
    try:
        result = int(value)
    except (TypeError, ValueError):
        raise _bad(param, f"Invalid integer: {value}") from None
    if isinstance(value, bool) or (minimum is not None and result < minimum):
        raise _bad(param)
    return result


def _opt_int(value: Any, param: str, *, minimum: int | None = None) -> int | None:
    return None if value is None or value == "" else _int(value, param, minimum=minimum)


def _bool(value: Any, param: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _bad(param, f"Invalid boolean: {value}")


def _opt_str(value: Any, param: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _bad(param)
    return value


def _req_str(value: Any, param: str) -> str:
    result = _opt_str(value, param)
    if result is None:
        raise _error(
            400, f"Missing required param: {param}.", param=param, code="parameter_missing"
        )
    return result


def _as_list(value: Any, param: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return value
    raise _bad(param)


def _merge_metadata(current: dict[str, str], update: Any) -> dict[str, str]:
    """Stripe semantics: ``""`` clears everything, a key set to ``""`` is deleted."""
    if update is None:
        return current
    if update == "":
        return {}
    if not isinstance(update, dict):
        raise _bad("metadata")
    merged = dict(current)
    for key, value in update.items():
        if value is None or value == "":
            merged.pop(key, None)
        else:
            merged[str(key)] = str(value)
    return merged


# ---------------------------------------------------------------------------------------
# Time arithmetic for billing periods (calendar months, clamped to the month's last day)
# ---------------------------------------------------------------------------------------


def add_interval(ts: int, interval: str, count: int) -> int:
    start = datetime.fromtimestamp(ts, tz=UTC)
    if interval == "day":
        end = start + timedelta(days=count)
    elif interval == "week":
        end = start + timedelta(weeks=count)
    else:
        months = count * (12 if interval == "year" else 1)
        year, month0 = divmod(start.month - 1 + months, 12)
        year += start.year
        day = min(start.day, calendar.monthrange(year, month0 + 1)[1])
        end = start.replace(year=year, month=month0 + 1, day=day)
    return int(end.timestamp())


# ---------------------------------------------------------------------------------------
# Store access and resources
# ---------------------------------------------------------------------------------------


def _get(kind: str, obj_id: str) -> Any:
    obj = ls.store.get(f"{kind}:{obj_id}")
    if obj is None:
        raise _error(404, f"No such {kind}: '{obj_id}'", param="id", code="resource_missing")
    return obj


def _all(kind: str, cls: type) -> list[Any]:
    prefix = f"{kind}:"
    return [v for k, v in ls.store.items() if k.startswith(prefix) and isinstance(v, cls)]


class _Resource:
    """Base for the resources this module owns; stored in localstripe's store so its
    generic retrieve routes and ``Customer.subscriptions`` see them."""

    object = ""
    _prefix = ""

    def __init__(self, *, persist: bool = True) -> None:
        self.id: str | None = _rid(self._prefix) if persist else None
        self.created = _now()
        self.livemode = False
        if persist:
            ls.store[f"{self.object}:{self.id}"] = self

    def _export(self, expand: list[str] | None = None) -> JSON:
        raise NotImplementedError


class Price(_Resource):
    object = "price"
    _prefix = "price_"

    def __init__(
        self,
        *,
        product: str,
        currency: str,
        unit_amount: int,
        recurring: JSON | None,
        lookup_key: str | None,
        metadata: dict[str, str],
        nickname: str | None,
        active: bool,
        tax_behavior: str,
    ) -> None:
        super().__init__()
        self.product = product
        self.currency = currency
        self.unit_amount = unit_amount
        self.recurring = recurring
        self.lookup_key = lookup_key
        self.metadata = metadata
        self.nickname = nickname
        self.active = active
        self.tax_behavior = tax_behavior

    @property
    def _interval(self) -> tuple[str, int]:
        if self.recurring is None:
            raise _bad("price", f"The price {self.id} is not recurring.")
        return str(self.recurring["interval"]), int(self.recurring["interval_count"])

    def _product_name(self) -> str:
        product = ls.store.get(f"product:{self.product}")
        return str(product.name) if product is not None else self.product

    def _export(self, expand: list[str] | None = None) -> JSON:
        return {
            "id": self.id,
            "object": "price",
            "active": self.active,
            "billing_scheme": "per_unit",
            "created": self.created,
            "currency": self.currency,
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": self.lookup_key,
            "metadata": dict(self.metadata),
            "nickname": self.nickname,
            "product": self.product,
            "recurring": dict(self.recurring) if self.recurring else None,
            "tax_behavior": self.tax_behavior,
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "recurring" if self.recurring else "one_time",
            "unit_amount": self.unit_amount,
            "unit_amount_decimal": str(self.unit_amount),
        }


class SubscriptionItem(_Resource):
    object = "subscription_item"
    _prefix = "si_"

    def __init__(
        self, subscription: Subscription, price: Price, quantity: int, metadata: dict[str, str]
    ) -> None:
        super().__init__()
        self._subscription = subscription
        self.price = price
        self.quantity = quantity
        self.metadata = metadata

    @property
    def _amount(self) -> int:
        return self.price.unit_amount * self.quantity

    def _export(self, expand: list[str] | None = None) -> JSON:
        start, end = self._subscription._period
        interval, count = self.price._interval
        return {
            "id": self.id,
            "object": "subscription_item",
            "billing_thresholds": None,
            "created": self.created,
            "current_period_end": end,
            "current_period_start": start,
            "discounts": [],
            "metadata": dict(self.metadata),
            # Stripe still renders the legacy plan view of the price on items.
            "plan": {
                "id": self.price.id,
                "object": "plan",
                "active": self.price.active,
                "amount": self.price.unit_amount,
                "amount_decimal": str(self.price.unit_amount),
                "billing_scheme": "per_unit",
                "created": self.price.created,
                "currency": self.price.currency,
                "interval": interval,
                "interval_count": count,
                "livemode": False,
                "metadata": dict(self.price.metadata),
                "nickname": self.price.nickname,
                "product": self.price.product,
                "usage_type": "licensed",
            },
            "price": self.price._export(),
            "quantity": self.quantity,
            "subscription": self._subscription.id,
            "tax_rates": [],
        }


class Subscription(_Resource):
    object = "subscription"
    _prefix = "sub_"

    def __init__(self, customer: str, currency: str) -> None:
        super().__init__()
        self.customer = customer
        self.currency = currency
        self.status = "incomplete"
        self.metadata: dict[str, str] = {}
        self.description: str | None = None
        self.default_payment_method: str | None = None
        self.cancel_at_period_end = False
        self.cancel_at: int | None = None
        self.canceled_at: int | None = None
        self.ended_at: int | None = None
        self.cancellation_details: JSON = {"comment": None, "feedback": None, "reason": None}
        self.trial_start: int | None = None
        self.trial_end: int | None = None
        self.start_date = self.created
        self.billing_cycle_anchor = self.created
        self.latest_invoice: str | None = None
        self._items: list[SubscriptionItem] = []
        self._period: tuple[int, int] = (self.created, self.created)
        self._pending_lines: list[JSON] = []
        self._trial_will_end_sent = False

    @property
    def _interval(self) -> tuple[str, int]:
        return self._items[0].price._interval

    def _next_period(self, start: int) -> tuple[int, int]:
        interval, count = self._interval
        return start, add_interval(start, interval, count)

    def _export(self, expand: list[str] | None = None) -> JSON:
        items = [item._export() for item in self._items]
        obj: JSON = {
            "id": self.id,
            "object": "subscription",
            "application": None,
            "application_fee_percent": None,
            "automatic_tax": {"enabled": False, "liability": None, "disabled_reason": None},
            "billing_cycle_anchor": self.billing_cycle_anchor,
            "billing_cycle_anchor_config": None,
            "cancel_at": self.cancel_at,
            "cancel_at_period_end": self.cancel_at_period_end,
            "canceled_at": self.canceled_at,
            "cancellation_details": dict(self.cancellation_details),
            "collection_method": "charge_automatically",
            "created": self.created,
            "currency": self.currency,
            "customer": self.customer,
            "days_until_due": None,
            "default_payment_method": self.default_payment_method,
            "default_source": None,
            "default_tax_rates": [],
            "description": self.description,
            "discounts": [],
            "ended_at": self.ended_at,
            "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
            "items": {
                "object": "list",
                "data": items,
                "has_more": False,
                "total_count": len(items),
                "url": f"/v1/subscription_items?subscription={self.id}",
            },
            "latest_invoice": self.latest_invoice,
            "livemode": False,
            "metadata": dict(self.metadata),
            "next_pending_invoice_item_invoice": None,
            "on_behalf_of": None,
            "pause_collection": None,
            "payment_settings": {
                "payment_method_options": None,
                "payment_method_types": None,
                "save_default_payment_method": "off",
            },
            "pending_invoice_item_interval": None,
            "pending_setup_intent": None,
            "pending_update": None,
            "schedule": None,
            "start_date": self.start_date,
            "status": self.status,
            "test_clock": None,
            "transfer_data": None,
            "trial_end": self.trial_end,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": self.trial_start,
        }
        _expand_all(obj, expand)
        return obj


class Invoice(_Resource):
    object = "invoice"
    _prefix = "in_"

    def __init__(
        self,
        *,
        customer: str,
        currency: str,
        lines: list[JSON],
        billing_reason: str,
        subscription: Subscription | None,
        period: tuple[int, int],
        persist: bool = True,
    ) -> None:
        super().__init__(persist=persist)
        cus = ls.Customer._api_retrieve(customer)
        self.customer = customer
        self.customer_email: str | None = cus.email
        self.customer_name: str | None = cus.name
        self.currency = currency
        self.billing_reason = billing_reason
        self._subscription = subscription
        self.period_start, self.period_end = period
        self.attempt_count = 0
        self.attempted = False
        self.auto_advance = True
        self.description: str | None = None
        self.metadata: dict[str, str] = {}
        self.status = "draft"
        self.number: str | None = None
        self.next_payment_attempt: int | None = None
        self.effective_at: int | None = None
        self.last_payment_error: JSON | None = None
        self.status_transitions: JSON = {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        }
        self._payments: list[JSON] = []
        self._lines = [dict(line, invoice=self.id) for line in lines]

    @property
    def _total(self) -> int:
        return sum(int(line["amount"]) for line in self._lines)

    @property
    def _amount_due(self) -> int:
        # A net credit would go to the customer balance in Stripe; nothing is due then.
        return max(0, self._total)

    def _export(self, expand: list[str] | None = None) -> JSON:
        sub = self._subscription
        amount_due = self._amount_due
        amount_paid = amount_due if self.status == "paid" else 0
        obj: JSON = {
            "id": self.id,
            "object": "invoice",
            "account_country": "US",
            "account_name": "billing-cli sandbox",
            "amount_due": amount_due,
            "amount_overpaid": 0,
            "amount_paid": amount_paid,
            "amount_remaining": amount_due - amount_paid,
            "amount_shipping": 0,
            "application": None,
            "attempt_count": self.attempt_count,
            "attempted": self.attempted,
            "auto_advance": self.auto_advance,
            "automatic_tax": {"enabled": False, "liability": None, "status": None},
            "billing_reason": self.billing_reason,
            "collection_method": "charge_automatically",
            "confirmation_secret": None,
            "created": self.created,
            "currency": self.currency,
            "customer": self.customer,
            "customer_email": self.customer_email,
            "customer_name": self.customer_name,
            "default_payment_method": None,
            "default_source": None,
            "description": self.description,
            "discounts": [],
            "due_date": None,
            "effective_at": self.effective_at,
            "ending_balance": 0 if self.status != "draft" else None,
            "hosted_invoice_url": None,
            "invoice_pdf": None,
            "last_finalization_error": None,
            "lines": {
                "object": "list",
                "data": [dict(line) for line in self._lines],
                "has_more": False,
                "total_count": len(self._lines),
                "url": f"/v1/invoices/{self.id}/lines",
            },
            "livemode": False,
            "metadata": dict(self.metadata),
            "next_payment_attempt": self.next_payment_attempt,
            "number": self.number,
            "parent": (
                {
                    "type": "subscription_details",
                    "quote_details": None,
                    "subscription_details": {
                        "metadata": dict(sub.metadata),
                        "subscription": sub.id,
                    },
                }
                if sub is not None
                else None
            ),
            "payments": {
                "object": "list",
                "data": [dict(p) for p in self._payments],
                "has_more": False,
                "url": "/v1/invoice_payments",
            },
            "period_end": self.period_end,
            "period_start": self.period_start,
            "starting_balance": 0,
            "status": self.status,
            "status_transitions": dict(self.status_transitions),
            "subtotal": self._total,
            "subtotal_excluding_tax": self._total,
            "total": self._total,
            "total_discount_amounts": [],
            "total_excluding_tax": self._total,
            "total_taxes": [],
            "webhooks_delivered_at": self.created,
        }
        _expand_all(obj, expand)
        return obj


_PREFIX_KINDS = (
    ("cus_", "customer"),
    ("in_", "invoice"),
    ("sub_", "subscription"),
    ("si_", "subscription_item"),
    ("price_", "price"),
    ("prod_", "product"),
    ("pm_", "payment_method"),
    ("pi_", "payment_intent"),
    ("ch_", "charge"),
)


def _expand_path(obj: Any, path: list[str]) -> None:
    if isinstance(obj, list):
        for entry in obj:
            _expand_path(entry, path)
        return
    if not isinstance(obj, dict) or not path:
        return
    key, rest = path[0], path[1:]
    value = obj.get(key)
    if isinstance(value, str):
        for prefix, kind in _PREFIX_KINDS:
            if value.startswith(prefix):
                found = ls.store.get(f"{kind}:{value}")
                if found is not None:
                    obj[key] = value = found._export()
                break
    _expand_path(value, rest)


def _expand_all(obj: JSON, expand: list[str] | None) -> None:
    for path in expand or []:
        _expand_path(obj, path.split("."))


# ---------------------------------------------------------------------------------------
# Events and webhook delivery
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# Payment-method test cards and declines
# ---------------------------------------------------------------------------------------

# card number -> (failure code, decline code, message), per Stripe's testing docs.
_DECLINES: dict[str, tuple[str, str | None, str]] = {
    "4000000000000002": ("card_declined", "generic_decline", "Your card was declined."),
    "4000000000000341": ("card_declined", "generic_decline", "Your card was declined."),
    "4000000000009995": (
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    "4000000000009987": ("card_declined", "lost_card", "Your card was declined."),
    "4000000000009979": ("card_declined", "stolen_card", "Your card was declined."),
    "4000000000000069": ("expired_card", "expired_card", "Your card has expired."),
    "4000000000000127": (
        "incorrect_cvc",
        "incorrect_cvc",
        "Your card's security code is incorrect.",
    ),
    "4000000000000119": (
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
    "4242424242424241": ("incorrect_number", None, "Your card number is incorrect."),
}

_CANONICAL_CARDS = {
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_visa_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_visa_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_visa_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_visa_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_visa_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_chargeDeclinedProcessingError": "4000000000000119",
    "pm_card_visa_chargeDeclinedProcessingError": "4000000000000119",
    "pm_card_mastercard": "5555555555554444",
}


def _card_number_of(payment_method_id: str | None) -> str:
    if not payment_method_id:
        return ""
    pm = ls.store.get(f"payment_method:{payment_method_id}") or ls.store.get(
        f"card:{payment_method_id}"
    )
    return str(getattr(pm, "_card_number", ""))


def _decline_for(payment_method_id: str | None) -> tuple[str, str | None, str]:
    return _DECLINES.get(
        _card_number_of(payment_method_id),
        ("card_declined", "generic_decline", "Your card was declined."),
    )


# ---------------------------------------------------------------------------------------
# Subscription billing
# ---------------------------------------------------------------------------------------


def _line(
    *,
    amount: int,
    price: Price,
    quantity: int,
    period: tuple[int, int],
    description: str,
    subscription: Subscription | None,
    item_id: str | None,
    proration: bool,
) -> JSON:
    return {
        "id": _rid("il_"),
        "object": "line_item",
        "amount": amount,
        "currency": price.currency,
        "description": description,
        "discount_amounts": [],
        "discountable": not proration,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "parent": {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": _rid("ii_") if proration else None,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": subscription.id if subscription else None,
                "subscription_item": item_id,
            },
        },
        "period": {"start": period[0], "end": period[1]},
        "pretax_credit_amounts": [],
        "pricing": {
            "type": "price_details",
            "price_details": {"price": price.id, "product": price.product},
            "unit_amount_decimal": str(price.unit_amount),
        },
        "quantity": quantity,
        "subtotal": amount,
        "taxes": [],
    }


def _period_lines(sub: Subscription, period: tuple[int, int]) -> list[JSON]:
    lines = []
    for item in sub._items:
        name = item.price._product_name()
        lines.append(
            _line(
                amount=item._amount,
                price=item.price,
                quantity=item.quantity,
                period=period,
                description=f"{item.quantity} × {name}",
                subscription=sub,
                item_id=item.id,
                proration=False,
            )
        )
    return lines


def _fraction_remaining(sub: Subscription, at: int) -> float:
    start, end = sub._period
    span = end - start
    if span <= 0:
        return 0.0
    return min(max(end - at, 0), span) / span


def _proration_lines(
    sub: Subscription,
    changes: list[tuple[SubscriptionItem | None, Price | None, int]],
    at: int,
) -> list[JSON]:
    """Credit the unused time of each replaced item and charge the remaining time of its
    replacement, pro rata of the current period (Stripe's second-level proration)."""
    fraction = _fraction_remaining(sub, at)
    end = sub._period[1]
    when = datetime.fromtimestamp(at, tz=UTC).strftime("%d %b %Y")
    lines: list[JSON] = []
    for old_item, new_price, new_quantity in changes:
        if old_item is not None:
            name = old_item.price._product_name()
            lines.append(
                _line(
                    amount=-round(old_item._amount * fraction),
                    price=old_item.price,
                    quantity=old_item.quantity,
                    period=(at, end),
                    description=f"Unused time on {old_item.quantity} × {name} after {when}",
                    subscription=sub,
                    item_id=old_item.id,
                    proration=True,
                )
            )
        if new_price is not None:
            name = new_price._product_name()
            lines.append(
                _line(
                    amount=round(new_price.unit_amount * new_quantity * fraction),
                    price=new_price,
                    quantity=new_quantity,
                    period=(at, end),
                    description=f"Remaining time on {new_quantity} × {name} after {when}",
                    subscription=sub,
                    item_id=old_item.id if old_item is not None else None,
                    proration=True,
                )
            )
    return lines


def _payment_method_for(customer_id: str, sub: Subscription | None) -> str | None:
    if sub is not None and sub.default_payment_method:
        return sub.default_payment_method
    cus = ls.Customer._api_retrieve(customer_id)
    source = cus._get_default_payment_method_or_source()
    return None if source is None else str(source.id)


def _mark_paid(invoice: Invoice) -> None:
    now = _now()
    invoice.status = "paid"
    invoice.next_payment_attempt = None
    invoice.last_payment_error = None
    invoice.status_transitions["paid_at"] = now
    for payment in invoice._payments:
        if payment["status"] == "open":
            payment["status"] = "paid"
            payment["amount_paid"] = payment["amount_requested"]
            payment["status_transitions"]["paid_at"] = now
    emit("invoice.paid", invoice)
    emit("invoice.payment_succeeded", invoice)


def _attempt_payment(invoice: Invoice) -> bool:
    """One collection attempt (Stripe's first try or a retry): bumps attempt_count."""
    invoice.attempt_count += 1
    invoice.attempted = True
    amount = invoice._amount_due
    if amount == 0:
        _mark_paid(invoice)
        return True
    pm_id = _payment_method_for(invoice.customer, invoice._subscription)
    if pm_id is None:
        invoice.last_payment_error = {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "message": "The customer has no default payment method.",
        }
    else:
        pi = ls.PaymentIntent(
            amount=amount,
            currency=invoice.currency,
            customer=invoice.customer,
            payment_method=pm_id,
        )
        pi.description = (
            "Subscription creation"
            if invoice.billing_reason == "subscription_create"
            else f"Invoice {invoice.id}"
        )
        invoice._payments.append(
            {
                "id": _rid("inpay_"),
                "object": "invoice_payment",
                "amount_paid": None,
                "amount_requested": amount,
                "created": _now(),
                "currency": invoice.currency,
                "invoice": invoice.id,
                "is_default": True,
                "livemode": False,
                "payment": {"type": "payment_intent", "payment_intent": pi.id},
                "status": "open",
                "status_transitions": {"canceled_at": None, "paid_at": None},
            }
        )
        emit("payment_intent.created", pi)
        # No on_failure callback: the failure is reported on the invoice, not raised.
        pi._confirm(on_failure_now=lambda: None)
        if pi.status == "succeeded":
            _mark_paid(invoice)
            return True
        emit("payment_intent.payment_failed", pi)
        code, decline_code, message = _decline_for(pi.payment_method or pm_id)
        invoice.last_payment_error = {
            "type": "card_error",
            "code": code,
            "decline_code": decline_code,
            "message": message,
            "payment_method": pm_id,
        }
    invoice.next_payment_attempt = _now() + RETRY_DELAY_SECONDS
    emit("invoice.payment_failed", invoice)
    return False


def _issue_invoice(
    sub: Subscription, lines: list[JSON], billing_reason: str, period: tuple[int, int]
) -> Invoice:
    invoice = Invoice(
        customer=sub.customer,
        currency=sub.currency,
        lines=lines,
        billing_reason=billing_reason,
        subscription=sub,
        period=period,
    )
    emit("invoice.created", invoice)
    now = _now()
    invoice.status = "open"
    invoice.number = f"SBX-{len(_all('invoice', Invoice)):06d}"
    invoice.effective_at = now
    invoice.status_transitions["finalized_at"] = now
    emit("invoice.finalized", invoice)
    sub.latest_invoice = invoice.id
    return invoice


def _sub_snapshot(sub: Subscription) -> JSON:
    return sub._export()


def _diff(before: JSON, after: JSON) -> JSON:
    return {k: v for k, v in before.items() if after.get(k) != v}


def _emit_sub_updated(sub: Subscription, before: JSON) -> None:
    previous = _diff(before, sub._export())
    if previous:
        emit("customer.subscription.updated", sub, previous)


def _open_invoice(sub: Subscription) -> Invoice | None:
    if sub.latest_invoice is None:
        return None
    invoice = ls.store.get(f"invoice:{sub.latest_invoice}")
    if isinstance(invoice, Invoice) and invoice.status == "open":
        return invoice
    return None


def _cancel(sub: Subscription, reason: str) -> None:
    now = _now()
    sub.status = "canceled"
    sub.canceled_at = sub.canceled_at or now
    sub.ended_at = now
    sub.cancellation_details["reason"] = reason
    emit("customer.subscription.deleted", sub)


def _start_new_period(sub: Subscription, period: tuple[int, int], reason: str) -> bool:
    """Move the subscription into ``period`` and bill it (as Stripe does at a period end,
    the period advances with the renewal invoice even if its payment then fails)."""
    sub._period = period
    lines = sub._pending_lines + _period_lines(sub, period)
    sub._pending_lines = []
    invoice = _issue_invoice(sub, lines, reason, period)
    ok = _attempt_payment(invoice)
    sub.status = "active" if ok else "past_due"
    return ok


def renew(sub: Subscription) -> JSON:
    """Bill the next period now (sandbox clock control)."""
    if sub.status in ("canceled", "incomplete_expired"):
        raise _bad("subscription", f"Subscription {sub.id} is {sub.status}.")
    before = _sub_snapshot(sub)
    if sub.status == "trialing":
        return end_trial(sub)
    if sub.cancel_at_period_end:
        _cancel(sub, "cancellation_requested")
        return sub._export()
    invoice = _open_invoice(sub)
    if invoice is not None:
        # Stripe's retry of the same open invoice.
        ok = _attempt_payment(invoice)
        if ok:
            sub.status = "active"
        elif sub.status != "incomplete":
            sub.status = "past_due"
    else:
        _start_new_period(sub, sub._next_period(sub._period[1]), "subscription_cycle")
    _emit_sub_updated(sub, before)
    return sub._export()


def end_trial(sub: Subscription) -> JSON:
    if sub.status != "trialing":
        raise _bad("subscription", f"Subscription {sub.id} is not trialing.")
    before = _sub_snapshot(sub)
    if not sub._trial_will_end_sent:
        sub._trial_will_end_sent = True
        emit("customer.subscription.trial_will_end", sub)
    now = _now()
    sub.trial_end = now
    sub.billing_cycle_anchor = now
    if sub.cancel_at_period_end:
        _cancel(sub, "cancellation_requested")
        return sub._export()
    _start_new_period(sub, sub._next_period(now), "subscription_cycle")
    _emit_sub_updated(sub, before)
    return sub._export()


def _resolve_price(value: Any, param: str) -> Price:
    price_id = _req_str(value, param)
    price = _get("price", price_id)
    if not isinstance(price, Price):
        raise _bad(param)
    if price.recurring is None:
        raise _bad(param, f"The price specified ({price_id}) is not recurring.")
    return price


def create_subscription(data: JSON) -> Subscription:
    _unknown(
        data,
        {
            "customer",
            "items",
            "default_payment_method",
            "trial_period_days",
            "trial_end",
            "trial_from_plan",
            "metadata",
            "payment_behavior",
            "proration_behavior",
            "cancel_at_period_end",
            "description",
            "collection_method",
            "off_session",
            "payment_settings",
            "automatic_tax",
            "currency",
        },
    )
    customer = _req_str(data.get("customer"), "customer")
    ls.Customer._api_retrieve(customer)
    raw_items = data.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise _error(400, "Missing required param: items.", param="items")
    items: list[tuple[Price, int, dict[str, str]]] = []
    for i, raw in enumerate(raw_items):
        if not isinstance(raw, dict):
            raise _bad(f"items[{i}]")
        _unknown(raw, {"price", "plan", "quantity", "metadata"})
        price = _resolve_price(raw.get("price") or raw.get("plan"), f"items[{i}][price]")
        quantity = _int(raw.get("quantity", 1), f"items[{i}][quantity]", minimum=1)
        items.append((price, quantity, _merge_metadata({}, raw.get("metadata"))))
    first = items[0][0]
    if any(p._interval != first._interval or p.currency != first.currency for p, _, _ in items):
        raise _bad("items", "All prices on a subscription must share currency and interval.")
    pm_id = _opt_str(data.get("default_payment_method"), "default_payment_method")
    if pm_id is not None:
        pm_id = str(ls.PaymentMethod._api_retrieve(pm_id).id)
    trial_days = _opt_int(data.get("trial_period_days"), "trial_period_days", minimum=0)
    trial_end_raw = data.get("trial_end")
    if (
        trial_days is None
        and "trial_from_plan" in data
        and _bool(data["trial_from_plan"], "trial_from_plan")
    ):
        assert first.recurring is not None
        trial_days = first.recurring.get("trial_period_days")
    behavior = data.get("payment_behavior", "allow_incomplete")
    if behavior not in (
        "allow_incomplete",
        "default_incomplete",
        "error_if_incomplete",
        "pending_if_incomplete",
    ):
        raise _bad("payment_behavior")
    if data.get("proration_behavior") not in (None, *PRORATION_BEHAVIORS):
        raise _bad("proration_behavior")

    now = _now()
    trial_end: int | None = None
    if trial_end_raw is not None and trial_end_raw != "now":
        trial_end = _int(trial_end_raw, "trial_end", minimum=now + 1)
    elif trial_days:
        trial_end = now + trial_days * 86400

    sub = Subscription(customer, first.currency)
    sub.metadata = _merge_metadata({}, data.get("metadata"))
    sub.description = _opt_str(data.get("description"), "description")
    sub.default_payment_method = pm_id
    for price, quantity, metadata in items:
        sub._items.append(SubscriptionItem(sub, price, quantity, metadata))
    if "cancel_at_period_end" in data:
        sub.cancel_at_period_end = _bool(data["cancel_at_period_end"], "cancel_at_period_end")

    if trial_end is not None:
        sub.status = "trialing"
        sub.trial_start = now
        sub.trial_end = trial_end
        sub._period = (now, trial_end)
        # Stripe issues a zero-amount invoice for the trial; it is paid straight away.
        lines = [
            dict(line, amount=0, subtotal=0, description=f"Trial period for {line['description']}")
            for line in _period_lines(sub, sub._period)
        ]
        _attempt_payment(_issue_invoice(sub, lines, "subscription_create", sub._period))
    else:
        sub._period = sub._next_period(now)
        invoice = _issue_invoice(
            sub, _period_lines(sub, sub._period), "subscription_create", sub._period
        )
        if behavior == "default_incomplete":
            sub.status = "incomplete"
        elif _attempt_payment(invoice):
            sub.status = "active"
        elif behavior == "error_if_incomplete":
            sub.status = "incomplete_expired"
            code, decline_code, message = _decline_for(_payment_method_for(customer, sub))
            raise _error(402, message, code=code, decline_code=decline_code, type_="card_error")
        else:
            sub.status = "incomplete"
    if sub.cancel_at_period_end:
        sub.cancel_at = sub._period[1]
    emit("customer.subscription.created", sub)
    if trial_end is not None and trial_end - now <= TRIAL_WILL_END_WINDOW:
        sub._trial_will_end_sent = True
        emit("customer.subscription.trial_will_end", sub)
    return sub


def update_subscription(sub: Subscription, data: JSON) -> Subscription:
    _unknown(
        data,
        {
            "items",
            "proration_behavior",
            "proration_date",
            "cancel_at_period_end",
            "cancel_at",
            "metadata",
            "default_payment_method",
            "description",
            "trial_end",
            "payment_behavior",
            "off_session",
            "billing_cycle_anchor",
            "cancellation_details",
        },
    )
    if sub.status in ("canceled", "incomplete_expired"):
        raise _bad("subscription", "A canceled subscription can only update its metadata.")
    behavior = data.get("proration_behavior", "create_prorations")
    if behavior not in PRORATION_BEHAVIORS:
        raise _bad("proration_behavior")
    now = _now()
    proration_date = _opt_int(data.get("proration_date"), "proration_date") or now
    before = _sub_snapshot(sub)
    old_interval = sub._interval

    if "metadata" in data:
        sub.metadata = _merge_metadata(sub.metadata, data["metadata"])
    if "description" in data:
        sub.description = _opt_str(data["description"], "description")
    if "default_payment_method" in data:
        pm_id = _opt_str(data["default_payment_method"], "default_payment_method")
        sub.default_payment_method = (
            None if pm_id is None else str(ls.PaymentMethod._api_retrieve(pm_id).id)
        )
    if isinstance(data.get("cancellation_details"), dict):
        for key in ("comment", "feedback"):
            if key in data["cancellation_details"]:
                sub.cancellation_details[key] = data["cancellation_details"][key] or None
    if "cancel_at_period_end" in data:
        sub.cancel_at_period_end = _bool(data["cancel_at_period_end"], "cancel_at_period_end")
        sub.cancel_at = sub._period[1] if sub.cancel_at_period_end else None
        sub.canceled_at = now if sub.cancel_at_period_end else None
    if "cancel_at" in data:
        sub.cancel_at = _opt_int(data["cancel_at"], "cancel_at")

    if "items" in data:
        changes = _apply_item_changes(sub, data["items"])
        interval_changed = sub._interval != old_interval
        if sub.status == "trialing":
            pass  # Stripe does not prorate during a trial.
        elif interval_changed:
            # A new interval resets the billing cycle: bill the new period now, crediting
            # the unused time of the old one unless prorations are off.
            credit = (
                [ln for ln in _proration_lines(sub, changes, proration_date) if ln["amount"] < 0]
                if behavior != "none"
                else []
            )
            sub.billing_cycle_anchor = now
            sub._pending_lines.extend(credit)
            ok = _start_new_period(sub, sub._next_period(now), "subscription_update")
            sub.status = "active" if ok else "past_due"
        elif behavior != "none" and changes:
            lines = _proration_lines(sub, changes, proration_date)
            if behavior == "create_prorations":
                sub._pending_lines.extend(lines)
            else:
                invoice = _issue_invoice(
                    sub, sub._pending_lines + lines, "subscription_update", sub._period
                )
                sub._pending_lines = []
                if not _attempt_payment(invoice):
                    sub.status = "past_due"

    if data.get("trial_end") == "now" and sub.status == "trialing":
        end_trial(sub)
        return sub
    if data.get("trial_end") not in (None, "now"):
        new_end = _int(data["trial_end"], "trial_end", minimum=now + 1)
        if sub.status == "trialing":
            sub.trial_end = new_end
            sub._period = (sub._period[0], new_end)
    _emit_sub_updated(sub, before)
    return sub


def _apply_item_changes(
    sub: Subscription, raw_items: Any
) -> list[tuple[SubscriptionItem | None, Price | None, int]]:
    if not isinstance(raw_items, list):
        raise _bad("items")
    changes: list[tuple[SubscriptionItem | None, Price | None, int]] = []
    for i, raw in enumerate(raw_items):
        if not isinstance(raw, dict):
            raise _bad(f"items[{i}]")
        _unknown(raw, {"id", "price", "plan", "quantity", "metadata", "deleted", "clear_usage"})
        item_id = _opt_str(raw.get("id"), f"items[{i}][id]")
        existing = next((it for it in sub._items if it.id == item_id), None)
        if item_id is not None and existing is None:
            raise _error(
                400,
                f"Subscription item {item_id} does not belong to {sub.id}.",
                param=f"items[{i}][id]",
            )
        if existing is not None and _bool(raw.get("deleted", False), f"items[{i}][deleted]"):
            sub._items.remove(existing)
            ls.store.pop(f"subscription_item:{existing.id}", None)
            changes.append((existing, None, 0))
            continue
        price_ref = raw.get("price") or raw.get("plan")
        if existing is None:
            price = _resolve_price(price_ref, f"items[{i}][price]")
            quantity = _int(raw.get("quantity", 1), f"items[{i}][quantity]", minimum=1)
            sub._items.append(
                SubscriptionItem(sub, price, quantity, _merge_metadata({}, raw.get("metadata")))
            )
            changes.append((None, price, quantity))
            continue
        price = existing.price if price_ref is None else _resolve_price(price_ref, f"items[{i}]")
        quantity = _int(raw.get("quantity", existing.quantity), f"items[{i}][quantity]", minimum=1)
        existing.metadata = _merge_metadata(existing.metadata, raw.get("metadata"))
        if price is existing.price and quantity == existing.quantity:
            continue
        # Keep a frozen copy of the old item for the credit line before mutating it.
        old = SubscriptionItem.__new__(SubscriptionItem)
        old.__dict__.update(existing.__dict__)
        existing.price, existing.quantity = price, quantity
        changes.append((old, price, quantity))
    if not sub._items:
        raise _bad("items", "A subscription needs at least one item.")
    if len({(it.price._interval, it.price.currency) for it in sub._items}) != 1:
        raise _bad("items", "All prices on a subscription must share currency and interval.")
    if sub.currency != sub._items[0].price.currency:
        raise _bad("items", "A subscription cannot change currency.")
    return changes


def preview_invoice(data: JSON) -> JSON:
    """``POST /v1/invoices/create_preview`` for a subscription, optionally with changes.

    As in Stripe: with ``always_invoice`` (or an interval change) the preview is the invoice
    the change would issue now (proration lines only, plus the new period on an interval
    change); otherwise it is the next renewal invoice, prorations included.
    """
    _unknown(data, {"customer", "subscription", "subscription_details", "automatic_tax"})
    sub_id = _req_str(data.get("subscription"), "subscription")
    sub = _get("subscription", sub_id)
    if not isinstance(sub, Subscription):
        raise _bad("subscription")
    if data.get("customer") not in (None, sub.customer):
        raise _bad("customer", "The subscription does not belong to that customer.")
    details = data.get("subscription_details") or {}
    if not isinstance(details, dict):
        raise _bad("subscription_details")
    _unknown(
        details,
        {"items", "proration_behavior", "proration_date", "cancel_at_period_end", "trial_end"},
    )
    behavior = details.get("proration_behavior", "create_prorations")
    if behavior not in PRORATION_BEHAVIORS:
        raise _bad("subscription_details[proration_behavior]")
    now = _now()
    at = _opt_int(details.get("proration_date"), "proration_date") or now

    changes: list[tuple[SubscriptionItem | None, Price | None, int]] = []
    planned: list[tuple[Price, int, str | None]] = [
        (it.price, it.quantity, it.id) for it in sub._items
    ]
    for i, raw in enumerate(_as_list(details.get("items"), "items")):
        if not isinstance(raw, dict):
            raise _bad(f"subscription_details[items][{i}]")
        item_id = raw.get("id")
        existing = next((it for it in sub._items if it.id == item_id), None)
        ref = raw.get("price") or raw.get("plan")
        if existing is not None and raw.get("deleted") in (True, "true"):
            planned = [p for p in planned if p[2] != existing.id]
            changes.append((existing, None, 0))
            continue
        price = (
            _resolve_price(ref, f"subscription_details[items][{i}][price]")
            if ref is not None
            else (existing.price if existing else None)
        )
        if price is None:
            raise _bad(f"subscription_details[items][{i}][price]")
        quantity = _int(raw.get("quantity", existing.quantity if existing else 1), "quantity")
        if existing is None:
            planned.append((price, quantity, None))
            changes.append((None, price, quantity))
        elif price is not existing.price or quantity != existing.quantity:
            planned = [p if p[2] != existing.id else (price, quantity, p[2]) for p in planned]
            changes.append((existing, price, quantity))

    trialing = sub.status == "trialing"
    new_interval = planned[0][0]._interval if planned else sub._interval
    interval_changed = new_interval != sub._interval
    prorations = (
        _proration_lines(sub, changes, at)
        if changes and behavior != "none" and not trialing
        else []
    )

    def period_lines(period: tuple[int, int]) -> list[JSON]:
        return [
            _line(
                amount=price.unit_amount * qty,
                price=price,
                quantity=qty,
                period=period,
                description=f"{qty} × {price._product_name()}",
                subscription=sub,
                item_id=item_id,
                proration=False,
            )
            for price, qty, item_id in planned
        ]

    if interval_changed and not trialing:
        period = (now, add_interval(now, *new_interval))
        lines = [ln for ln in prorations if ln["amount"] < 0] + period_lines(period)
        reason = "subscription_update"
    elif behavior == "always_invoice" and not trialing:
        period = sub._period
        lines = prorations
        reason = "subscription_update"
    else:
        next_start = sub._period[1]
        period = (next_start, add_interval(next_start, *new_interval))
        lines = sub._pending_lines + prorations + period_lines(period)
        reason = "subscription_cycle"
    invoice = Invoice(
        customer=sub.customer,
        currency=sub.currency,
        lines=lines,
        billing_reason=reason,
        subscription=sub,
        period=period,
        persist=False,
    )
    invoice.next_payment_attempt = period[0] if reason == "subscription_cycle" else now
    return invoice._export()


# ---------------------------------------------------------------------------------------
# Prices
# ---------------------------------------------------------------------------------------


def _check_lookup_key(key: str | None, transfer: bool, owner: Price | None) -> Price | None:
    if key is None:
        return None
    holder = next((p for p in _all("price", Price) if p.lookup_key == key and p is not owner), None)
    if holder is not None and not transfer:
        raise _error(
            400,
            f"A price (`{holder.id}`) already uses that lookup key.",
            param="lookup_key",
            code="lookup_key_in_use",
        )
    return holder


def _transfer_lookup_key(holder: Price | None) -> None:
    if holder is not None:
        before = holder._export()
        holder.lookup_key = None
        emit("price.updated", holder, _diff(before, holder._export()))


def create_price(data: JSON) -> Price:
    _unknown(
        data,
        {
            "product",
            "product_data",
            "currency",
            "unit_amount",
            "unit_amount_decimal",
            "recurring",
            "lookup_key",
            "transfer_lookup_key",
            "metadata",
            "nickname",
            "active",
            "tax_behavior",
            "billing_scheme",
        },
    )
    currency = _req_str(data.get("currency"), "currency").lower()
    raw_amount = data.get("unit_amount", data.get("unit_amount_decimal"))
    if raw_amount is None:
        raise _error(400, "Missing required param: unit_amount.", param="unit_amount")
    unit_amount = _int(raw_amount, "unit_amount", minimum=0)
    if data.get("billing_scheme", "per_unit") != "per_unit":
        raise _bad("billing_scheme", "The sandbox only supports per_unit prices.")
    recurring: JSON | None = None
    raw_recurring = data.get("recurring")
    if raw_recurring is not None:
        if not isinstance(raw_recurring, dict):
            raise _bad("recurring")
        _unknown(raw_recurring, {"interval", "interval_count", "usage_type", "trial_period_days"})
        interval = raw_recurring.get("interval")
        if interval not in ("day", "week", "month", "year"):
            raise _bad("recurring[interval]")
        if raw_recurring.get("usage_type", "licensed") != "licensed":
            raise _bad("recurring[usage_type]", "The sandbox only supports licensed prices.")
        recurring = {
            "interval": interval,
            "interval_count": _int(
                raw_recurring.get("interval_count", 1), "recurring[interval_count]", minimum=1
            ),
            "meter": None,
            "trial_period_days": _opt_int(
                raw_recurring.get("trial_period_days"), "recurring[trial_period_days]"
            ),
            "usage_type": "licensed",
        }
    if "product" in data:
        product_id = _req_str(data["product"], "product")
        ls.Product._api_retrieve(product_id)
    elif isinstance(data.get("product_data"), dict):
        product_data = dict(data["product_data"])
        product_id = str(ls.Product(**product_data).id)
    else:
        raise _error(400, "Missing required param: product.", param="product")
    lookup_key = _opt_str(data.get("lookup_key"), "lookup_key")
    transfer = _bool(data.get("transfer_lookup_key", False), "transfer_lookup_key")
    holder = _check_lookup_key(lookup_key, transfer, None)
    tax_behavior = data.get("tax_behavior", "unspecified")
    if tax_behavior not in ("unspecified", "inclusive", "exclusive"):
        raise _bad("tax_behavior")
    _transfer_lookup_key(holder)
    price = Price(
        product=product_id,
        currency=currency,
        unit_amount=unit_amount,
        recurring=recurring,
        lookup_key=lookup_key,
        metadata=_merge_metadata({}, data.get("metadata")),
        nickname=_opt_str(data.get("nickname"), "nickname"),
        active=_bool(data.get("active", True), "active"),
        tax_behavior=str(tax_behavior),
    )
    emit("price.created", price)
    return price


def update_price(price: Price, data: JSON) -> Price:
    # Amount, currency, recurring and product are immutable: a new Price is the way.
    _unknown(
        data,
        {"active", "metadata", "lookup_key", "transfer_lookup_key", "nickname", "tax_behavior"},
    )
    before = price._export()
    if "lookup_key" in data:
        key = _opt_str(data["lookup_key"], "lookup_key")
        transfer = _bool(data.get("transfer_lookup_key", False), "transfer_lookup_key")
        _transfer_lookup_key(_check_lookup_key(key, transfer, price))
        price.lookup_key = key
    if "active" in data:
        price.active = _bool(data["active"], "active")
    if "metadata" in data:
        price.metadata = _merge_metadata(price.metadata, data["metadata"])
    if "nickname" in data:
        price.nickname = _opt_str(data["nickname"], "nickname")
    if "tax_behavior" in data:
        if data["tax_behavior"] not in ("unspecified", "inclusive", "exclusive"):
            raise _bad("tax_behavior")
        price.tax_behavior = str(data["tax_behavior"])
    previous = _diff(before, price._export())
    if previous:
        emit("price.updated", price, previous)
    return price


# ---------------------------------------------------------------------------------------
# HTTP handlers
# ---------------------------------------------------------------------------------------


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def _respond(obj: JSON, status: int = 200) -> web.Response:
    return web.json_response(obj, status=status, dumps=_dumps)


async def _params(request: web.Request) -> JSON:
    query: JSON = ls_server.unflatten_data(request.query) if request.query else {}
    if request.method in ("GET", "DELETE"):
        return query
    body = await ls_server.get_post_data(request)
    data: JSON = dict(body) if body else {}
    data.update(query)
    return data


def _pop_expand(data: JSON) -> list[str]:
    return [str(e) for e in _as_list(data.pop("expand", None), "expand")]


def _paginate(url: str, objects: list[Any], data: JSON) -> JSON:
    """Stripe list envelope over ``objects`` (already in Stripe's order, newest first)."""
    limit = _int(data.pop("limit", 10), "limit", minimum=1)
    limit = min(limit, 100)
    starting_after = _opt_str(data.pop("starting_after", None), "starting_after")
    ending_before = _opt_str(data.pop("ending_before", None), "ending_before")
    ids = [o.id for o in objects]
    if starting_after is not None:
        if starting_after not in ids:
            raise _bad("starting_after", f"No such object: '{starting_after}'")
        window = objects[ids.index(starting_after) + 1 :]
        page, has_more = window[:limit], len(window) > limit
    elif ending_before is not None:
        if ending_before not in ids:
            raise _bad("ending_before", f"No such object: '{ending_before}'")
        window = objects[: ids.index(ending_before)]
        page, has_more = window[-limit:], len(window) > limit
    else:
        page, has_more = objects[:limit], len(objects) > limit
    return {"object": "list", "data": page, "has_more": has_more, "url": url}


def _list_response(url: str, objects: list[Any], data: JSON, expand: list[str]) -> web.Response:
    envelope = _paginate(url, objects, data)
    data_expand = [e[len("data.") :] for e in expand if e.startswith("data.")]
    envelope["data"] = [o._export(expand=data_expand) for o in envelope["data"]]
    return _respond(envelope)


def _newest_first(objects: list[Any]) -> list[Any]:
    # The store keeps insertion order, which is creation order.
    return list(reversed(objects))


async def _create_price(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    price = create_price(data)
    return _respond(_with_expand(price, expand))


def _with_expand(obj: Any, expand: list[str]) -> JSON:
    exported: JSON = obj._export()
    _expand_all(exported, expand)
    return exported


async def _retrieve_price(request: web.Request) -> web.Response:
    data = await _params(request)
    price = _get("price", request.match_info["id"])
    return _respond(_with_expand(price, _pop_expand(data)))


async def _update_price(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    price = _get("price", request.match_info["id"])
    return _respond(_with_expand(update_price(price, data), expand))


async def _list_prices(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    prices: list[Price] = _newest_first(_all("price", Price))
    if "active" in data:
        active = _bool(data.pop("active"), "active")
        prices = [p for p in prices if p.active == active]
    if "product" in data:
        product = data.pop("product")
        prices = [p for p in prices if p.product == product]
    if "currency" in data:
        currency = str(data.pop("currency")).lower()
        prices = [p for p in prices if p.currency == currency]
    if "type" in data:
        kind = data.pop("type")
        prices = [p for p in prices if (p.recurring is not None) == (kind == "recurring")]
    if "lookup_keys" in data:
        keys = set(_as_list(data.pop("lookup_keys"), "lookup_keys"))
        prices = [p for p in prices if p.lookup_key in keys]
    if "recurring" in data:
        recurring = data.pop("recurring")
        if isinstance(recurring, dict) and "interval" in recurring:
            prices = [
                p
                for p in prices
                if p.recurring is not None and p.recurring["interval"] == recurring["interval"]
            ]
    _unknown(data, {"limit", "starting_after", "ending_before"})
    return _list_response("/v1/prices", prices, data, expand)


async def _update_product(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    product = ls.Product._api_retrieve(request.match_info["id"])
    before = product._export()
    for flag in ("active", "shippable"):
        if flag in data:
            data[flag] = _bool(data[flag], flag)
    if "metadata" in data:
        product.metadata = _merge_metadata(dict(product.metadata or {}), data.pop("metadata"))
    if data:
        product._update(**data)
    after = product._export(expand=expand)
    previous = _diff(before, after)
    if previous:
        emit("product.updated", product, previous)
    return _respond(after)


async def _create_payment_intent(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    confirm = _bool(data.pop("confirm", False), "confirm")
    off_session = data.pop("off_session", None)
    if off_session is not None:
        _bool(off_session, "off_session")
    description = _opt_str(data.pop("description", None), "description")
    for ignored in (
        "statement_descriptor",
        "statement_descriptor_suffix",
        "receipt_email",
        "setup_future_usage",
        "automatic_payment_methods",
        "return_url",
        "error_on_requires_action",
        "confirmation_method",
    ):
        data.pop(ignored, None)
    pi = ls.PaymentIntent(**data)
    pi.description = description
    emit("payment_intent.created", pi)
    if confirm:
        pi._confirm(on_failure_now=pi._report_failure)
    return _respond(pi._export(expand=expand))


def _subscription(sub_id: str) -> Subscription:
    sub = _get("subscription", sub_id)
    if not isinstance(sub, Subscription):
        raise _bad("subscription", f"{sub_id} predates the sandbox extensions.")
    return sub


async def _create_subscription(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    return _respond(create_subscription(data)._export(expand=expand))


async def _retrieve_subscription(request: web.Request) -> web.Response:
    data = await _params(request)
    sub = _subscription(request.match_info["id"])
    return _respond(sub._export(expand=_pop_expand(data)))


async def _update_subscription(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    sub = _subscription(request.match_info["id"])
    return _respond(update_subscription(sub, data)._export(expand=expand))


async def _cancel_subscription(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    _unknown(data, {"invoice_now", "prorate", "cancellation_details"})
    sub = _subscription(request.match_info["id"])
    if sub.status == "canceled":
        raise _bad("subscription", f"Subscription {sub.id} is already canceled.")
    details = data.get("cancellation_details")
    if isinstance(details, dict):
        sub.cancellation_details["comment"] = details.get("comment") or None
        sub.cancellation_details["feedback"] = details.get("feedback") or None
    _cancel(sub, "cancellation_requested")
    return _respond(sub._export(expand=expand))


async def _list_subscriptions(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    subs: list[Subscription] = _newest_first(_all("subscription", Subscription))
    status = data.pop("status", None)
    if status is None:
        subs = [s for s in subs if s.status not in ("canceled", "incomplete_expired")]
    elif status == "ended":
        subs = [s for s in subs if s.status in ("canceled", "incomplete_expired")]
    elif status != "all":
        subs = [s for s in subs if s.status == status]
    if "customer" in data:
        customer = data.pop("customer")
        subs = [s for s in subs if s.customer == customer]
    if "price" in data:
        price_id = data.pop("price")
        subs = [s for s in subs if any(it.price.id == price_id for it in s._items)]
    _unknown(data, {"limit", "starting_after", "ending_before"})
    return _list_response("/v1/subscriptions", subs, data, expand)


async def _list_payment_intents(request: web.Request) -> web.Response:
    """``GET /v1/payment_intents`` (localstripe has no list): newest first, by customer."""
    data = await _params(request)
    expand = _pop_expand(data)
    intents: list[Any] = _newest_first(_all("payment_intent", ls.PaymentIntent))
    if "customer" in data:
        customer = data.pop("customer")
        intents = [pi for pi in intents if pi.customer == customer]
    _unknown(data, {"limit", "starting_after", "ending_before"})
    return _list_response("/v1/payment_intents", intents, data, expand)


async def _list_subscription_items(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    sub = _subscription(_req_str(data.pop("subscription", None), "subscription"))
    _unknown(data, {"limit", "starting_after", "ending_before"})
    url = f"/v1/subscription_items?subscription={sub.id}"
    return _list_response(url, list(sub._items), data, expand)


def _invoice(invoice_id: str) -> Invoice:
    invoice = _get("invoice", invoice_id)
    if not isinstance(invoice, Invoice):
        raise _bad("invoice", f"{invoice_id} is not a subscription invoice of the sandbox.")
    return invoice


async def _retrieve_invoice(request: web.Request) -> web.Response:
    data = await _params(request)
    return _respond(_invoice(request.match_info["id"])._export(expand=_pop_expand(data)))


async def _update_invoice(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    _unknown(data, {"metadata", "description", "auto_advance"})
    invoice = _invoice(request.match_info["id"])
    before = invoice._export()
    if "metadata" in data:
        invoice.metadata = _merge_metadata(invoice.metadata, data["metadata"])
    if "description" in data:
        invoice.description = _opt_str(data["description"], "description")
    if "auto_advance" in data:
        invoice.auto_advance = _bool(data["auto_advance"], "auto_advance")
    previous = _diff(before, invoice._export())
    if previous:
        emit("invoice.updated", invoice, previous)
    return _respond(invoice._export(expand=expand))


async def _list_invoices(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    invoices: list[Invoice] = _newest_first(_all("invoice", Invoice))
    if "customer" in data:
        customer = data.pop("customer")
        invoices = [i for i in invoices if i.customer == customer]
    if "subscription" in data:
        sub_id = data.pop("subscription")
        invoices = [i for i in invoices if i._subscription and i._subscription.id == sub_id]
    if "status" in data:
        status = data.pop("status")
        invoices = [i for i in invoices if i.status == status]
    _unknown(data, {"limit", "starting_after", "ending_before"})
    return _list_response("/v1/invoices", invoices, data, expand)


async def _invoice_lines(request: web.Request) -> web.Response:
    data = await _params(request)
    invoice = _invoice(request.match_info["id"])
    lines = [_Line(line) for line in invoice._lines]
    return _list_response(f"/v1/invoices/{invoice.id}/lines", lines, data, [])


class _Line:
    """Adapter so invoice line dicts can go through ``_paginate``."""

    def __init__(self, line: JSON) -> None:
        self.id = str(line["id"])
        self._line = line

    def _export(self, expand: list[str] | None = None) -> JSON:
        return dict(self._line)


async def _pay_invoice(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    invoice = _invoice(request.match_info["id"])
    if invoice.status != "open":
        raise _bad("invoice", f"Invoice is {invoice.status}; only open invoices can be paid.")
    sub = invoice._subscription
    before = sub._export() if sub else None
    ok = _attempt_payment(invoice)
    if sub is not None and before is not None:
        if ok and sub.latest_invoice == invoice.id:
            sub.status = "active"
        _emit_sub_updated(sub, before)
    if not ok:
        code, decline_code, message = _decline_for(
            _payment_method_for(invoice.customer, invoice._subscription)
        )
        raise _error(402, message, code=code, decline_code=decline_code, type_="card_error")
    return _respond(invoice._export(expand=expand))


async def _void_invoice(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    invoice = _invoice(request.match_info["id"])
    if invoice.status not in ("draft", "open"):
        raise _bad("invoice", f"Invoice is {invoice.status}; it cannot be voided.")
    invoice.status = "void"
    invoice.next_payment_attempt = None
    invoice.status_transitions["voided_at"] = _now()
    emit("invoice.voided", invoice)
    return _respond(invoice._export(expand=expand))


async def _create_preview(request: web.Request) -> web.Response:
    data = await _params(request)
    expand = _pop_expand(data)
    preview = preview_invoice(data)
    _expand_all(preview, expand)
    return _respond(preview)


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
    created = data.pop("created", None)
    if isinstance(created, dict):
        bounds = {op: _int(v, f"created[{op}]") for op, v in created.items()}
        checks: dict[str, Callable[[int, int], bool]] = {
            "gt": lambda a, b: a > b,
            "gte": lambda a, b: a >= b,
            "lt": lambda a, b: a < b,
            "lte": lambda a, b: a <= b,
        }
        for op, bound in bounds.items():
            if op not in checks:
                raise _bad(f"created[{op}]")
            events = [e for e in events if checks[op](e.created, bound)]
    elif created is not None:
        exact = _int(created, "created")
        events = [e for e in events if e.created == exact]
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


# ---------------------------------------------------------------------------------------
# Idempotency keys (localstripe ignores the header)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Remembered:
    fingerprint: str
    status: int
    body: bytes


_IDEMPOTENT_RESPONSES: dict[tuple[str, str], _Remembered] = {}


@web.middleware
async def idempotency_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Honour ``Idempotency-Key`` on API POSTs as Stripe does.

    The first answer to a key (errors included, 5xx excepted) is replayed for every later
    request with that key and the same method, path and body; a different request under the
    same key is refused with ``idempotency_error``. Keys are scoped to the API key.
    """
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key or not request.path.startswith("/v1/"):
        return await handler(request)
    scope = (request.headers.get("Authorization", ""), key)
    body = await request.read()
    fingerprint = hashlib.sha256(
        f"{request.method} {request.path}?{request.query_string}\n".encode() + body
    ).hexdigest()
    remembered = _IDEMPOTENT_RESPONSES.get(scope)
    if remembered is not None:
        if remembered.fingerprint != fingerprint:
            return web.json_response(
                {
                    "error": {
                        "type": "idempotency_error",
                        "message": "Keys for idempotent requests can only be used with the "
                        "same parameters they were first used with.",
                    }
                },
                status=400,
            )
        return web.Response(
            body=remembered.body,
            status=remembered.status,
            content_type="application/json",
            headers={"Idempotent-Replayed": "true", "Idempotency-Key": key},
        )
    try:
        response = await handler(request)
    except UserError as error:  # card declines etc.: Stripe replays errors too
        response = error.to_response()
    except web.HTTPException as error:
        response = error
    if isinstance(response, web.Response) and response.status < 500 and response.body is not None:
        raw = response.body if isinstance(response.body, bytes) else (response.text or "").encode()
        _IDEMPOTENT_RESPONSES[scope] = _Remembered(fingerprint, response.status, raw)
    if isinstance(response, web.HTTPException):
        raise response
    return response


async def _sandbox_renew(request: web.Request) -> web.Response:
    return _respond(renew(_subscription(request.match_info["id"])))


async def _sandbox_end_trial(request: web.Request) -> web.Response:
    return _respond(end_trial(_subscription(request.match_info["id"])))


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


# ---------------------------------------------------------------------------------------
# Patches on localstripe's classes
# ---------------------------------------------------------------------------------------

_installed = False


def install() -> None:
    """Apply the class-level patches listed in the module docstring (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True

    ls.Store.try_load_from_disk = lambda self: None
    ls.Store.dump_to_disk = lambda self: None
    ls.schedule_webhook = DELIVERER.schedule

    original_event_init = ls.Event.__init__

    def event_init(self: Any, type: str, data: Any) -> None:
        original_event_init(self, type, data)
        self.api_version = API_VERSION
        self.pending_webhooks = 0
        self.request = {"id": None, "idempotency_key": None}
        self._failed_webhooks = 0

    ls.Event.__init__ = event_init

    original_canonical = ls.PaymentMethod._try_get_canonical_test_article.__func__

    def canonical(cls: Any, pm_id: str) -> Any:
        number = _CANONICAL_CARDS.get(pm_id)
        if number is None:
            return original_canonical(cls, pm_id)
        card = {"number": number, "exp_month": "12", "exp_year": "2034", "cvc": "123"}
        pm = ls.PaymentMethod(type="card", card=card)
        if number.startswith("5"):
            pm.card["brand"] = "mastercard"
        return pm

    ls.PaymentMethod._try_get_canonical_test_article = classmethod(canonical)

    original_declined = ls.PaymentMethod._charging_is_declined

    def charging_is_declined(self: Any) -> bool:
        if getattr(self, "type", None) == "card" and self._card_number in _DECLINES:
            return True
        return bool(original_declined(self))

    ls.PaymentMethod._charging_is_declined = charging_is_declined

    def set_auth_failure(self: Any) -> None:
        code, decline_code, message = _decline_for(self.payment_method)
        self.status = "failed"
        self.failure_code = code
        self.failure_message = message
        self._decline_code = decline_code
        self.outcome = {
            "network_status": "declined_by_network",
            "reason": decline_code,
            "risk_level": "normal",
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined",
        }

    ls.Charge._set_auth_failure = set_auth_failure

    def raise_failure(self: Any) -> None:
        pi = ls.store.get(f"payment_intent:{self.payment_intent}") if self.payment_intent else None
        raise _error(
            402,
            self.failure_message,
            code=self.failure_code,
            type_="card_error",
            decline_code=getattr(self, "_decline_code", None),
            charge=self.id,
            payment_intent=pi._export() if pi is not None else None,
            payment_method={"id": self.payment_method, "object": "payment_method"},
        )

    ls.Charge._raise_failure = raise_failure

    original_last_error = ls.PaymentIntent.last_payment_error.fget

    def last_payment_error(self: Any) -> Any:
        error = original_last_error(self)
        charge = self.latest_charge
        if error is not None and charge is not None and "charge" in error:
            error["type"] = "card_error"
            error["decline_code"] = getattr(charge, "_decline_code", None)
            error["payment_method"] = {"id": charge.payment_method, "object": "payment_method"}
        return error

    ls.PaymentIntent.last_payment_error = property(last_payment_error)

    # Stripe keeps answering GET /v1/customers/{id} after a delete, with a deleted stub.
    original_customer_delete = ls.Customer._api_delete.__func__
    original_customer_retrieve = ls.Customer._api_retrieve.__func__

    def customer_delete(cls: Any, id: str) -> Any:
        deleted = original_customer_delete(cls, id)
        ls.store[f"_deleted_customer:{id}"] = deleted
        return deleted

    def customer_retrieve(cls: Any, id: str) -> Any:
        tombstone = ls.store.get(f"_deleted_customer:{id}")
        return tombstone if tombstone is not None else original_customer_retrieve(cls, id)

    ls.Customer._api_delete = classmethod(customer_delete)
    ls.Customer._api_retrieve = classmethod(customer_retrieve)
