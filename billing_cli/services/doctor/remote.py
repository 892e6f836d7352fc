"""Checks that read Stripe (read-only calls only) and the ledger: the account, the webhook
endpoint, the deliveries, and the plan catalogue; and, given ``--url``, the endpoint's own
``/healthz``, because a ledger that once received an event says nothing about ``serve`` now."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

from billing_cli.config import Settings
from billing_cli.errors import BillingError, GatewayError
from billing_cli.gateway import Gateway
from billing_cli.repository import Database
from billing_cli.repository import events as events_repo
from billing_cli.services.catalog.plans import list_plans
from billing_cli.services.doctor.checklist import DoctorReport, Status
from billing_cli.services.webhooks.setup import ALL_EVENTS, default_event_types, find_endpoint
from billing_cli.text import plural
from billing_cli.timeparse import iso

UNDELIVERED_WINDOW = timedelta(hours=72)  # Stripe's live-mode retry window
HEALTH_TIMEOUT_SECONDS = 3.0
_SETTLED_PLAN_STATES = ("in sync", "archived", "inactive")


def check_stripe(report: DoctorReport, gateway: Gateway, settings: Settings) -> bool:
    """A read-only call proves Stripe is reachable and the key valid, and says live or test."""
    try:
        mode = gateway.account_mode()
    except GatewayError as error:
        report.add(
            "stripe",
            "fail",
            str(error),
            "check STRIPE_SECRET_KEY (`billing config`) and the network (STRIPE_API_BASE)",
        )
        return False
    said = "live" if mode.livemode else "test"
    if mode.livemode != settings.stripe_live_mode:
        report.add(
            "stripe",
            "fail",
            f"Stripe answers in {said} mode, but STRIPE_LIVE_MODE says otherwise",
            "make STRIPE_LIVE_MODE match the key's mode",
        )
        return False
    report.add("stripe", "ok", f"reachable; the key is accepted ({said} mode)")
    return True


def check_endpoint(report: DoctorReport, gateway: Gateway, url: str | None) -> None:
    """An endpoint for the URL: enabled, subscribed to every handled type, same API version."""
    endpoints = gateway.list_webhook_endpoints()
    if url is None:
        report.add(
            "webhook endpoint",
            "warn",
            f"no URL to check ({plural(len(endpoints), 'endpoint')} in the account)",
            "pass --url URL or set BILLING_WEBHOOK_URL",
        )
        return
    endpoint, others = find_endpoint(endpoints, url)
    if endpoint is None:
        report.add(
            "webhook endpoint",
            "fail",
            f"no endpoint is registered for {url}",
            f"billing webhooks setup {url} --write-env .env",
        )
        return
    if not endpoint.enabled:
        report.add(
            "webhook endpoint",
            "fail",
            f"endpoint {endpoint.id} for {url} is disabled: Stripe sends it nothing",
            f"billing webhooks setup {url}  (enables it again)",
        )
    else:
        extra = f"; {len(others)} more for the same URL" if others else ""
        report.add("webhook endpoint", "warn" if others else "ok", f"{endpoint.id} enabled{extra}")
    events = set(endpoint.enabled_events)
    missing = [] if ALL_EVENTS in events else sorted(set(default_event_types()) - events)
    if missing:
        report.add(
            "webhook events",
            "fail",
            f"{plural(len(missing), 'handled type')} not subscribed: {', '.join(missing)}",
            f"billing webhooks setup {url}",
        )
    else:
        report.add("webhook events", "ok", "subscribed to every handled event type")
    pinned = gateway.pinned_api_version()
    if endpoint.api_version != pinned:
        report.add(
            "webhook api version",
            "fail",
            f"endpoint sends API version {endpoint.api_version}; the tool reads {pinned}",
            f"delete endpoint {endpoint.id}, then `billing webhooks setup {url} --write-env .env`",
        )
    else:
        report.add("webhook api version", "ok", pinned)


def health_url(url: str) -> str:
    """``https://host/hooks/billing`` -> ``https://host/healthz`` (``webhooks serve`` answers
    both on one host and port)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/healthz", "", ""))


def check_endpoint_health(report: DoctorReport, url: str) -> bool:
    """GET the endpoint's ``/healthz``: True when it answers 200 (serve up, its database too)."""
    probe = health_url(url)
    try:
        with urllib.request.urlopen(probe, timeout=HEALTH_TIMEOUT_SECONDS) as response:
            status = int(response.status)
    except urllib.error.HTTPError as error:
        status = error.code
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        report.add(
            "endpoint health",
            "fail",
            f"{probe} does not answer ({reason})",
            "start `billing webhooks serve` (or check the proxy in front of it)",
        )
        return False
    if status != 200:
        report.add(
            "endpoint health",
            "fail",
            f"{probe} answered HTTP {status}",
            "`billing webhooks serve` is up but unhealthy: check its database and its log",
        )
        return False
    report.add("endpoint health", "ok", f"{probe} answered 200")
    return True


def check_deliveries(
    report: DoctorReport, db: Database, gateway: Gateway | None, *, endpoint_up: bool = True
) -> None:
    """The last delivery the endpoint received, failed ledger rows, and (with Stripe) events
    Stripe could not deliver in its retry window that are not in the ledger either (a replay
    that already applied them leaves nothing to do). ``endpoint_up`` False (the ``/healthz``
    probe failed) keeps an old delivery from reading as ok."""
    with db.read() as session:
        last = events_repo.latest_received(session=session, source="endpoint")
        counts = events_repo.count_by_status(session=session)
        last_text = (
            None
            if last is None
            else f"{last.stripe_event_id} ({last.type}) at {iso(last.received_at)}"
        )
    if last_text is None:
        report.add(
            "last delivery",
            "warn",
            "the endpoint has received no event yet",
            "check that `billing webhooks serve` is reachable at the endpoint URL",
        )
    elif not endpoint_up:
        report.add(
            "last delivery",
            "warn",
            f"last received {last_text}, but the endpoint does not answer now",
            "start `billing webhooks serve`; then `billing webhooks replay --since 72h`",
        )
    else:
        report.add("last delivery", "ok", f"last received {last_text}")
    failed = counts.get("failed", 0)
    if failed:
        report.add(
            "ledger",
            "fail",
            f"{plural(failed, 'event')} left failed",
            "`billing webhooks list --status failed` shows why; `billing webhooks retry-failed`",
        )
    else:
        total = sum(counts.values())
        report.add("ledger", "ok", f"{plural(total, 'event')}, none failed")
    if gateway is None:
        return
    since = datetime.now(UTC) - UNDELIVERED_WINDOW
    try:
        undelivered = gateway.list_events(undelivered=True, created_gte=int(since.timestamp()))
    except BillingError as error:
        report.add("undelivered events", "warn", f"could not list them: {error}")
        return
    ids = [str(event.get("id")) for event in undelivered]
    with db.read() as session:
        applied = events_repo.known_ids(session=session, event_ids=ids)
    undelivered = [event for event in undelivered if str(event.get("id")) not in applied]
    if undelivered:
        report.add(
            "undelivered events",
            "warn",
            f"Stripe could not deliver {plural(len(undelivered), 'event')} in the last 72 hours",
            "check the endpoint is reachable and STRIPE_WEBHOOK_SECRET is its secret; then "
            "`billing webhooks replay --undelivered --since 72h`",
        )
    else:
        replayed = f" ({len(applied)} replayed into the ledger)" if applied else ""
        report.add(
            "undelivered events",
            "ok",
            f"no event of the last 72 hours is missing from the ledger{replayed}",
        )


def check_plans(report: DoctorReport, db: Database, gateway: Gateway) -> None:
    """The plan catalogue against Stripe, by the same rules as ``plans list``."""
    plans = list_plans(db, gateway)
    unsettled = [p for p in plans if p["state"] not in _SETTLED_PLAN_STATES]
    if unsettled:
        listed = ", ".join(f"{p['slug']} ({p['state']})" for p in unsettled)
        # A stale plan only still sells in Stripe; a missing or drifted one breaks `subs create`.
        status: Status = "warn" if all(p["state"] == "stale" for p in unsettled) else "fail"
        report.add("plans", status, f"not in sync with Stripe: {listed}", "billing plans sync")
    else:
        report.add("plans", "ok", f"{plural(len(plans), 'plan')}, in sync with Stripe")
