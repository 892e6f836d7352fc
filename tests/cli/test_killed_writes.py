"""A ``billing`` process killed with SIGKILL at each recovery point, then the command re-run.

The process runs for real (``python -m billing_cli``) behind the fault-injecting proxy, which
holds one request open either before forwarding it (Stripe has not acted) or after (Stripe
acted, the answer is lost). The test kills the process right there, commits an unrelated change
for the tenant, and re-runs the same command: exactly one Stripe object, the right local state,
one audit entry. A process hanging on Stripe must not hold anything a webhook delivery for the
same tenant needs. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import stripe

from billing_cli.repository import Database
from billing_cli.services.webhooks import WebhookEngine
from stripe_sandbox import Sandbox
from tests.events import invoice_event
from tests.faults import Fault, FaultProxy, fault_proxy

from .conftest import Billing
from .test_interrupted_writes import (
    SUBSCRIBE,
    _row,
    customer_of,
    intents,
    outcomes,
    ready,  # noqa: F401  (fixture)
    stripe_client,  # noqa: F401  (fixture)
    tenant_subscriptions,
    unrelated_change,
)

pytestmark = pytest.mark.sandbox


@pytest.fixture
def proxy(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    with fault_proxy(sandbox.api_base) as running:
        monkeypatch.setenv("STRIPE_API_BASE", running.url)
        yield running


def start(*args: str) -> subprocess.Popen[bytes]:
    """The real CLI in its own process; STRIPE_TIMEOUT is long so only the kill ends it."""
    env = {**os.environ, "STRIPE_TIMEOUT": "60", "STRIPE_TIME_BUDGET": "120"}
    return subprocess.Popen(
        [sys.executable, "-m", "billing_cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def kill_when_blocked(process: subprocess.Popen[bytes], proxy: FaultProxy) -> None:
    """SIGKILL the process once the proxy holds its request, then let the proxy go."""
    deadline = time.monotonic() + 60
    while not proxy.reached.is_set():
        if process.poll() is not None:
            raise AssertionError(f"exited early: {process.stderr.read() if process.stderr else ''}")
        assert time.monotonic() < deadline, "the request never reached the proxy"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    proxy.clear()
    proxy.reached.clear()


KILL_POINTS = [
    pytest.param(path, when, id=f"{name}-{when}")
    for name, path in (
        ("customer", "/v1/customers$"),
        ("attach", "/v1/payment_methods/"),
        ("default", "/v1/customers/"),
        ("subscription", "/v1/subscriptions$"),
    )
    for when in ("before", "after")
]


@pytest.mark.parametrize(("path", "when"), KILL_POINTS)
def test_subscribe_killed_at_each_step_converges_on_one_subscription(
    billing: Billing,
    ready: Database,  # noqa: F811
    proxy: FaultProxy,
    stripe_client: stripe.StripeClient,  # noqa: F811
    path: str,
    when: str,
) -> None:
    proxy.arm(Fault("hang", when, "POST", path, hang_seconds=60))  # type: ignore[arg-type]
    kill_when_blocked(start(*SUBSCRIBE), proxy)
    unrelated_change(billing)

    result = billing(*SUBSCRIBE)
    assert result.exit_code == 0, result.stderr

    customers = stripe_client.v1.customers.list({"limit": 100}).data
    assert len([c for c in customers if c.metadata.to_dict().get("tenant") == "acme"]) == 1
    (live,) = tenant_subscriptions(stripe_client)
    row = _row(ready)
    assert (row["stripe_subscription_id"], row["status"]) == (live.id, live.status)
    assert len(outcomes(ready, "subscribed to starter")) == 1
    assert [i.status for i in intents(ready)] == ["succeeded"]


@pytest.mark.parametrize("when", ["before", "after"])
def test_upgrade_killed_mid_call_is_finished_and_audited_by_the_rerun(
    billing: Billing,
    ready: Database,  # noqa: F811
    proxy: FaultProxy,
    stripe_client: stripe.StripeClient,  # noqa: F811
    when: str,
) -> None:
    assert billing(*SUBSCRIBE).exit_code == 0
    upgrade = ("subs", "upgrade", "acme", "--plan", "pro")
    proxy.arm(Fault("hang", when, "POST", "/v1/subscriptions/", hang_seconds=60))  # type: ignore[arg-type]
    kill_when_blocked(start(*upgrade), proxy)
    unrelated_change(billing)

    result = billing(*upgrade)
    assert result.exit_code == 0, result.stderr
    assert len(outcomes(ready, "plan starter -> pro")) == 1
    (live,) = tenant_subscriptions(stripe_client)
    assert live["items"]["data"][0]["price"]["id"] == _row(ready)["stripe_price_id"]


def test_a_hung_stripe_call_does_not_delay_a_webhook_for_the_same_tenant(
    billing: Billing,
    ready: Database,  # noqa: F811
    proxy: FaultProxy,
) -> None:
    assert billing(*SUBSCRIBE).exit_code == 0
    customer = customer_of(ready)
    proxy.arm(Fault("hang", "before", "POST", "/v1/payment_intents", hang_seconds=60))
    charge = start(
        "payments", "charge", "acme", "--amount", "5", "--currency", "usd", "--description", "x"
    )
    try:
        deadline = time.monotonic() + 60
        while not proxy.reached.is_set():
            assert charge.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        engine = WebhookEngine(ready, live_mode=False, max_failed_attempts=3)
        event = invoice_event(
            "invoice.payment_failed",
            subscription_id=str(_row(ready)["stripe_subscription_id"]),
            customer_id=customer,
            attempt_count=1,
            paid=False,
        )
        started = time.perf_counter()
        outcome = engine.process(event, source="endpoint")
        elapsed = time.perf_counter() - started
    finally:
        charge.send_signal(signal.SIGKILL)
        charge.wait(timeout=30)
        proxy.clear()
    assert outcome.status == "processed", outcome
    assert elapsed < 1.0, f"the delivery waited {elapsed:.2f}s behind the hung command"
