"""Webhook endpoints over stripe-python: the mixin ``StripeGateway`` takes its endpoint calls from.

``billing webhooks setup`` creates or updates the endpoint Stripe posts events to, and
``billing doctor`` reads it back. Endpoints are pinned to :data:`stripe.api_version`, the version
stripe-python sends and the one every payload this tool reads was written for (see
:meth:`WebhookEndpointCalls.pinned_api_version`). Stripe answers the endpoint's signing secret
only on creation; it goes into :class:`~billing_cli.gateway.types.WebhookEndpointInfo` (which
never shows it in ``repr``) and is never logged: :func:`.calls.stripe_call` only logs the
operation and the endpoint id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import stripe

from billing_cli.gateway.calls import stripe_call
from billing_cli.gateway.converters import as_dict
from billing_cli.gateway.types import AccountMode, WebhookEndpointInfo

if TYPE_CHECKING:
    from stripe._v1_services import V1Services
    from stripe.params import WebhookEndpointCreateParams, WebhookEndpointUpdateParams

PAGE_SIZE = 100


def webhook_event_types() -> frozenset[str]:
    """The event types an endpoint may subscribe to, as stripe-python's own parameter types list
    them for the API version it pins (``*`` left out): so ``--events invoice.payed`` is refused
    here instead of making an endpoint for a type Stripe never sends."""
    from typing import get_args

    from stripe.params import WebhookEndpointCreateParams

    (literal,) = get_args(WebhookEndpointCreateParams.__annotations__["enabled_events"])
    return frozenset(str(name) for name in get_args(literal)) - {"*"}


def endpoint_info(endpoint: Any) -> WebhookEndpointInfo:
    """The project's own type for a Stripe WebhookEndpoint (the secret only when Stripe sent it)."""
    data = as_dict(endpoint)
    return WebhookEndpointInfo(
        id=str(data["id"]),
        url=str(data["url"]),
        enabled_events=tuple(str(e) for e in (data.get("enabled_events") or ())),
        status=str(data.get("status") or "enabled"),
        api_version=data.get("api_version"),
        description=data.get("description"),
        metadata={str(k): str(v) for k, v in dict(data.get("metadata") or {}).items()},
        secret=data.get("secret"),
    )


class WebhookEndpointCalls:
    """Mixed into ``StripeGateway``; uses its ``StripeClient``'s ``v1`` services."""

    _v1: V1Services

    def pinned_api_version(self) -> str:
        """The API version stripe-python sends, which the tool's payload readers expect."""
        return str(stripe.api_version)

    def account_mode(self) -> AccountMode:
        """GET /v1/balance: the cheapest read-only call that proves the key and tells its mode."""
        with stripe_call("balance.retrieve"):
            balance = self._v1.balance.retrieve()
        return AccountMode(livemode=bool(balance["livemode"]))

    def list_webhook_endpoints(self) -> list[WebhookEndpointInfo]:
        """Every endpoint of the account (auto-paged, 100 a page)."""
        with stripe_call("webhook_endpoints.list"):
            page = self._v1.webhook_endpoints.list({"limit": PAGE_SIZE})
            return [endpoint_info(e) for e in page.auto_paging_iter()]

    def create_webhook_endpoint(
        self,
        *,
        url: str,
        enabled_events: Sequence[str],
        api_version: str,
        metadata: Mapping[str, str],
        idempotency_key: str,
    ) -> WebhookEndpointInfo:
        """Create an endpoint pinned to ``api_version``; the answer carries its secret, once."""
        params = cast(
            "WebhookEndpointCreateParams",
            {
                "url": url,
                "enabled_events": list(enabled_events),
                "api_version": api_version,
                "metadata": dict(metadata),
            },
        )
        with stripe_call("webhook_endpoints.create"):
            endpoint = self._v1.webhook_endpoints.create(
                params, {"idempotency_key": idempotency_key}
            )
        return endpoint_info(endpoint)

    def update_webhook_endpoint(
        self,
        endpoint_id: str,
        *,
        enabled_events: Sequence[str],
        disabled: bool,
        idempotency_key: str,
    ) -> WebhookEndpointInfo:
        """Replace the endpoint's event list and enable (or disable) it."""
        params = cast(
            "WebhookEndpointUpdateParams",
            {"enabled_events": list(enabled_events), "disabled": disabled},
        )
        with stripe_call("webhook_endpoints.update", webhook_endpoint=endpoint_id):
            endpoint = self._v1.webhook_endpoints.update(
                endpoint_id, params, {"idempotency_key": idempotency_key}
            )
        return endpoint_info(endpoint)

    def set_webhook_endpoint_disabled(
        self, endpoint_id: str, *, disabled: bool, idempotency_key: str
    ) -> WebhookEndpointInfo:
        """``disabled`` alone: the event list another operator may be editing is not sent."""
        params = cast("WebhookEndpointUpdateParams", {"disabled": disabled})
        with stripe_call("webhook_endpoints.update", webhook_endpoint=endpoint_id):
            endpoint = self._v1.webhook_endpoints.update(
                endpoint_id, params, {"idempotency_key": idempotency_key}
            )
        return endpoint_info(endpoint)

    def delete_webhook_endpoint(self, endpoint_id: str) -> None:
        """DELETE /v1/webhook_endpoints/ID; Stripe stops delivering to it at once."""
        with stripe_call("webhook_endpoints.delete", webhook_endpoint=endpoint_id):
            self._v1.webhook_endpoints.delete(endpoint_id)
