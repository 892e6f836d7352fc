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
- A creation goes through the write journal (:mod:`.journal`, operation
  ``webhook_endpoint.create``): the intent is recorded before the call, the endpoint carries
  ``metadata.billing_intent``, and the call uses the intent's key. After an ambiguous failure
  (the answer lost) the endpoint may exist while its secret, shown only in that answer, was
  never seen: the re-run finds the endpoint made under its open intent and sends the creation
  again with the same key, and Stripe replays its first answer, secret included (within the
  key window; past it the endpoint is adopted and the secret cannot be recovered). An open
  intent whose endpoint is not there (the call never reached Stripe, or the endpoint was
  deleted since) is closed and a new one starts, so a stale replay is never trusted.
- Updates set the event list absolutely, so their keys are per run: they only have to cover
  stripe-python's retries. A key reused across runs would be wrong there: Stripe would replay
  an answer to an update since undone, unapplied.
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
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from billing_cli.errors import UsageError
from billing_cli.gateway import Gateway, WebhookEndpointInfo, idempotency_key
from billing_cli.models import Change, Invocation
from billing_cli.repository import Database
from billing_cli.services import audit, journal
from billing_cli.services.journal import INTENT_METADATA_KEY
from billing_cli.services.stripe_ops import planned_writes
from billing_cli.services.webhooks.handlers import HANDLERS
from billing_cli.text import plural, shown

ALL_EVENTS = "*"
CREATE = "webhook_endpoint.create"
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
            types.add(_known_event_type(choice))
        else:
            raise UsageError(
                f"--events takes default, all or event types such as invoice.paid, not {choice!r}"
            )
    return tuple(sorted(types))


def _known_event_type(choice: str) -> str:
    """A type Stripe sends: an endpoint subscribed to ``invoice.payed`` would wait forever."""
    import difflib

    from billing_cli.gateway.stripe_webhook_endpoints import webhook_event_types

    known = webhook_event_types()
    if choice in known:
        return choice
    near = difflib.get_close_matches(choice, sorted(known), n=3, cutoff=0.8)
    hint = f"did you mean {' or '.join(near)}? " if near else ""
    raise UsageError(
        f"--events: Stripe has no event type {shown(choice)}; {hint}valid are default, all, "
        f"the handled types ({', '.join(default_event_types())}) or another of Stripe's "
        f"{len(known)} types"
    )


def dropped_handled_types(event_types: Sequence[str]) -> tuple[str, ...]:
    """The handled types an endpoint subscribed to ``event_types`` would not be sent."""
    if ALL_EVENTS in event_types:
        return ()
    return tuple(sorted(set(default_event_types()) - set(event_types)))


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
            f"{plural(len(others), 'more endpoint')} for this URL "
            f"({', '.join(e.id for e in others)}): "
            "Stripe delivers each event to every one of them"
        )
    target = f"webhook_endpoint:{url}"
    if current is None or journal.has_open(db, operation=CREATE, target=target):
        created = _create(
            db, gateway, invocation, url=url, wanted=wanted, pinned=pinned, current=current
        )
        if created is not None:
            return _with_warnings(created, warnings)
    assert current is not None
    return _update(
        db,
        gateway,
        invocation,
        url=url,
        wanted=wanted,
        pinned=pinned,
        current=current,
        warnings=warnings,
    )


def _create(
    db: Database,
    gateway: Gateway,
    invocation: Invocation,
    *,
    url: str,
    wanted: tuple[str, ...],
    pinned: str,
    current: WebhookEndpointInfo | None,
) -> SetupResult | None:
    """Create the endpoint through the journal, or finish an interrupted creation; None when
    the endpoint for ``url`` is not this intent's (the caller updates that one instead)."""
    target = f"webhook_endpoint:{url}"
    params = {"url": url, "events": list(wanted), "api_version": pinned}
    intent = journal.begin(
        db,
        operation=CREATE,
        target=target,
        tenant_slug=None,
        params=params,
        invocation=invocation,
        supersede=True,  # other events than the interrupted run's: that intent is over
    )
    ours = current is not None and current.metadata.get(INTENT_METADATA_KEY) == intent.id
    if current is not None and not ours:
        # the URL's endpoint is another run's (or the dashboard's): never make a second one
        _close(db, intent, invocation, error="the URL has an endpoint this intent did not make")
        return None
    if intent.resumed and current is None:
        # Nothing of the interrupted call is in Stripe (or it was deleted since): start over
        # under a new key rather than trust a replay of an answer about a missing endpoint.
        _close(db, intent, invocation, error="no endpoint of this intent found for the URL")
        return _create(db, gateway, invocation, url=url, wanted=wanted, pinned=pinned, current=None)
    what = f"creating the webhook endpoint for {url}"
    if ours and intent.key_may_have_expired():
        assert current is not None
        endpoint = current  # past Stripe's key window: adopt it; its secret cannot come back
    else:
        with journal.failure_closes(db, intent, invocation=invocation, what=what):
            endpoint = journal.call(
                db,
                intent,
                "endpoint",
                lambda key: gateway.create_webhook_endpoint(
                    url=url,
                    enabled_events=wanted,
                    api_version=pinned,
                    metadata={**_CREATED_BY, **intent.metadata()},
                    idempotency_key=key,
                ),
                what=what,
            )
    recovered = " (finished an interrupted creation)" if intent.resumed else ""
    message = f"created webhook endpoint {endpoint.id} for {url}{recovered}"
    change = _recorded(
        db,
        gateway,
        invocation,
        endpoint,
        action="create",
        before=None,
        message=message,
        intent=intent,
    )
    secret = None if invocation.dry_run else endpoint.secret
    return SetupResult(change, endpoint, wanted, (), (), secret)


def _close(db: Database, intent: journal.Intent, invocation: Invocation, *, error: str) -> None:
    with db.transaction(dry_run=invocation.dry_run) as session:
        journal.close(session, intent, succeeded=False, error=error)


def _with_warnings(result: SetupResult, warnings: list[str]) -> SetupResult:
    return replace(result, warnings=(*result.warnings, *warnings))


def _update(
    db: Database,
    gateway: Gateway,
    invocation: Invocation,
    *,
    url: str,
    wanted: tuple[str, ...],
    pinned: str,
    current: WebhookEndpointInfo,
    warnings: list[str],
) -> SetupResult:
    """Bring an existing endpoint to ``wanted``, enabled (an absolute setting)."""
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
        change = Change.unchanged(
            f"webhook_endpoint:{current.id}",
            before,
            dry_run=invocation.dry_run,
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
    change = _recorded(
        db, gateway, invocation, endpoint, action="update", before=before, message=message
    )
    return SetupResult(change, endpoint, added, removed, tuple(warnings))


def _recorded(
    db: Database,
    gateway: Gateway,
    invocation: Invocation,
    endpoint: WebhookEndpointInfo,
    *,
    action: str,
    before: dict[str, Any] | None,
    message: str,
    intent: journal.Intent | None = None,
) -> Change:
    """Audit what Stripe answered (and close the creation's intent) in one transaction; the
    change to report. The secret is in neither: :func:`endpoint_view` leaves it out."""
    after = endpoint_view(endpoint)
    target = f"webhook_endpoint:{endpoint.id}"
    with db.transaction(dry_run=invocation.dry_run) as session:
        audit.record(
            session,
            invocation=invocation,
            target=target,
            outcome=message,
            before=before,
            after=after,
        )
        if intent is not None:
            journal.close(session, intent, succeeded=True, object_id=endpoint.id)
    return Change(
        target=target,
        action=action,
        before=before,
        after=after,
        dry_run=invocation.dry_run,
        message=message,
        stripe_writes=planned_writes(gateway),
    )


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
