"""``billing webhooks setup`` and ``endpoints``: the Stripe webhook endpoint, made by the tool.

What the operator would otherwise do in the dashboard (add the URL, tick each event type, copy
the signing secret) done through the gateway, safe to repeat:

- The endpoint is found by its exact URL. None: one is created, pinned to the API version the
  tool reads (:meth:`Gateway.pinned_api_version`), and Stripe's answer carries the signing
  secret, the only time Stripe shows it. Found: its event list is replaced and it is enabled
  again if it was disabled; a second endpoint is never created for the same URL.
- The default events are every type the webhook handlers know (``handlers.HANDLERS``, which
  covers the ten the design lists and ``invoice.paid``), so a new handler is subscribed by
  the next ``setup`` without anyone editing a list.
- Idempotency keys are per run: a re-run after a lost answer lists the endpoints first and
  finds the one created, and an update sets the event list absolutely, so a key only has to
  cover stripe-python's retries within the run. A key reused across runs would be wrong here:
  Stripe would replay an old answer (a deleted endpoint, an update since undone) unapplied.
- Plan, call, apply: nothing is read from the database first; the Stripe write is made with
  no transaction open; the audit entry (endpoint before and after, never the secret) is
  written afterwards in one short transaction. A dry run reads the real endpoints, records
  the write in the ``DryRunGateway`` and rolls the audit back: it shows the event-type diff.

The secret is returned to the caller (the CLI writes it to an env file or prints it once) and
goes nowhere else: not into :class:`~billing_cli.models.Change`, the audit trail or a log.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from billing_cli.errors import UsageError
from billing_cli.gateway import Gateway, WebhookEndpointInfo, idempotency_key
from billing_cli.models import Change, Invocation
from billing_cli.repository import Database
from billing_cli.services import audit
from billing_cli.services.stripe_ops import planned_writes
from billing_cli.services.webhooks.handlers import HANDLERS

ALL_EVENTS = "*"
_EVENT_TYPE = re.compile(r"^[a-z_]+(\.[a-z_]+)+$")
_CREATED_BY = {"created_by": "billing webhooks setup"}


def default_event_types() -> tuple[str, ...]:
    """Every type the handlers process, plus ``invoice.paid`` (sorted, for stable keys)."""
    return tuple(sorted({*HANDLERS, "invoice.paid"}))


def resolve_event_types(choices: Sequence[str]) -> tuple[str, ...]:
    """``default`` (also when nothing is given), ``all`` (Stripe's ``*``), or exact types;
    ``default`` may be combined with extra types."""
    chosen = list(choices) or ["default"]
    if "all" in chosen:
        if len(chosen) > 1:
            raise UsageError("--events all stands alone (it already means every event type)")
        return (ALL_EVENTS,)
    types: set[str] = set()
    for choice in chosen:
        if choice == "default":
            types.update(default_event_types())
        elif _EVENT_TYPE.match(choice):
            types.add(choice)
        else:
            raise UsageError(
                f"--events takes default, all or event types such as invoice.paid, not {choice!r}"
            )
    return tuple(sorted(types))


def check_url(url: str, *, live_mode: bool) -> str:
    """An absolute http(s) URL; Stripe takes only https in live mode."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"the endpoint URL must be an absolute http(s) URL, not {url!r}")
    if live_mode and parts.scheme != "https":
        raise UsageError("in live mode Stripe delivers only to https URLs")
    return url


def endpoint_view(endpoint: WebhookEndpointInfo) -> dict[str, Any]:
    """An endpoint as the CLI, the audit trail and ``--json`` show it (no secret, ever)."""
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "status": endpoint.status,
        "api_version": endpoint.api_version,
        "enabled_events": list(endpoint.enabled_events),
    }


@dataclass(frozen=True)
class SetupResult:
    """What ``webhooks setup`` did or would do; ``secret`` only on a real creation."""

    change: Change
    endpoint: WebhookEndpointInfo
    added: tuple[str, ...]
    removed: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    secret: str | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON without the secret (the CLI adds it only when it deliberately prints it)."""
        return {
            **self.change.to_dict(),
            "endpoint": endpoint_view(self.endpoint),
            "events_added": list(self.added),
            "events_removed": list(self.removed),
            "warnings": list(self.warnings),
        }


def _run_id() -> str:
    return uuid.uuid4().hex


def find_endpoint(
    endpoints: Sequence[WebhookEndpointInfo], url: str
) -> tuple[WebhookEndpointInfo | None, list[WebhookEndpointInfo]]:
    """The endpoint for ``url`` (an enabled one first) and any others for the same URL."""
    same = sorted((e for e in endpoints if e.url == url), key=lambda e: not e.enabled)
    return (same[0] if same else None), same[1:]


def setup_endpoint(
    db: Database,
    gateway: Gateway,
    *,
    invocation: Invocation,
    url: str,
    event_types: Sequence[str],
    live_mode: bool = False,
) -> SetupResult:
    """Create the endpoint for ``url``, or bring the existing one to ``event_types``, enabled."""
    check_url(url, live_mode=live_mode)
    wanted = tuple(sorted(set(event_types)))
    pinned = gateway.pinned_api_version()
    current, others = find_endpoint(gateway.list_webhook_endpoints(), url)
    warnings: list[str] = []
    if others:
        warnings.append(
            f"{len(others)} more endpoint(s) for this URL ({', '.join(e.id for e in others)}): "
            "Stripe delivers each event to every one of them"
        )
    if current is None:
        endpoint = gateway.create_webhook_endpoint(
            url=url,
            enabled_events=wanted,
            api_version=pinned,
            metadata=_CREATED_BY,
            # Not derived from the URL: a re-run finds a created endpoint by listing, and a key
            # replayed after the endpoint was deleted would answer with the deleted one.
            idempotency_key=idempotency_key("webhook_endpoints.create", url, _run_id()),
        )
        before = None
        added, removed = wanted, tuple[str, ...]()
        message = f"created webhook endpoint {endpoint.id} for {url}"
        action = "create"
    else:
        before = endpoint_view(current)
        added = tuple(sorted(set(wanted) - set(current.enabled_events)))
        removed = tuple(sorted(set(current.enabled_events) - set(wanted)))
        if current.api_version != pinned:
            warnings.append(
                f"endpoint {current.id} is pinned to API version {current.api_version}, the "
                f"tool reads {pinned}; Stripe cannot change it: delete the endpoint and run "
                "setup again (the new one gets a new signing secret)"
            )
        if not added and not removed and current.enabled:
            change = Change(
                target=f"webhook_endpoint:{current.id}",
                action="none",
                before=before,
                after=before,
                dry_run=invocation.dry_run,
                changed=False,
                message=f"webhook endpoint {current.id} for {url} is already set up",
            )
            return SetupResult(change, current, (), (), tuple(warnings))
        endpoint = gateway.update_webhook_endpoint(
            current.id,
            enabled_events=wanted,
            disabled=False,
            # An absolute setting, safe to send twice; a key replayed from an earlier run
            # (the endpoint edited back since) would answer without applying anything.
            idempotency_key=idempotency_key("webhook_endpoints.update", current.id, _run_id()),
        )
        enabled_again = "" if current.enabled else "; enabled it again"
        message = (
            f"updated webhook endpoint {current.id} for {url}: "
            f"+{len(added)} -{len(removed)} event types{enabled_again}"
        )
        action = "update"
    after = endpoint_view(endpoint)
    with db.transaction(dry_run=invocation.dry_run) as session:
        audit.record(
            session,
            invocation=invocation,
            target=f"webhook_endpoint:{endpoint.id}",
            outcome=message,
            before=before,
            after=after,
        )
    change = Change(
        target=f"webhook_endpoint:{endpoint.id}",
        action=action,
        before=before,
        after=after,
        dry_run=invocation.dry_run,
        message=message,
        stripe_writes=planned_writes(gateway),
    )
    secret = None if invocation.dry_run else endpoint.secret
    return SetupResult(change, endpoint, added, removed, tuple(warnings), secret)


def list_endpoints(gateway: Gateway) -> list[dict[str, Any]]:
    """The account's endpoints, with what each misses of the default event types."""
    pinned = gateway.pinned_api_version()
    defaults = set(default_event_types())
    listed = []
    for endpoint in gateway.list_webhook_endpoints():
        events = set(endpoint.enabled_events)
        missing = [] if ALL_EVENTS in events else sorted(defaults - events)
        listed.append(
            {
                **endpoint_view(endpoint),
                "missing_handled_events": missing,
                "api_version_matches": endpoint.api_version == pinned,
            }
        )
    return listed
