"""The webhook half of ``billing demo``: the real endpoint, fed by the sandbox's signed events.

The endpoint (:mod:`billing_cli.web` under uvicorn) runs in a thread of the demo process on
127.0.0.1, registered with the sandbox by ``billing webhooks setup`` as it would be with Stripe;
the sandbox posts every event to it as it happens, signed with that endpoint's secret. Steps that
stand for the passing of time (a trial ending, Stripe retrying an invoice) are sandbox controls;
after each one the demo waits until every event it caused is in the ledger before going on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from billing_cli.gateway import Gateway
    from billing_cli.repository import Database
    from stripe_sandbox import Sandbox

DELIVERY_TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class SandboxAction:
    """A step done by the sandbox's clock instead of an operator."""

    note: str
    run: Callable[[], object]


@contextmanager
def endpoint_in_thread(db: Database, *, secret_for: Callable[[str], str]) -> Iterator[str]:
    """Serve the webhook endpoint on a free loopback port; yields its URL.

    ``secret_for(url)`` is called once the port is known: it registers the URL with Stripe
    (``billing webhooks setup``) and returns the signing secret the endpoint then verifies.
    """
    import uvicorn

    from billing_cli.cli.serving import listening_socket
    from billing_cli.services.webhooks import WebhookEngine
    from billing_cli.services.webhooks.engine import lazy_fetch
    from billing_cli.web.app import DEFAULT_PATH, create_app

    sock = listening_socket("127.0.0.1", 0, backlog=2048)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}{DEFAULT_PATH}"
    try:
        # as `webhooks serve` does with a key: a same-second tie is settled by reading Stripe
        engine = WebhookEngine(
            db, live_mode=False, max_failed_attempts=3, fetch=lazy_fetch(_reading_gateway)
        )
        app = create_app(engine=engine, webhook_secret=secret_for(url))
    except BaseException:
        sock.close()
        raise
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _reading_gateway() -> Gateway:
    """The sandbox's gateway from the demo's environment, able to read and never to write."""
    from billing_cli.config import load_settings
    from billing_cli.gateway import DryRunGateway, make_gateway

    return DryRunGateway(make_gateway(load_settings()))


def ledger_ids(db: Database) -> set[str]:
    from billing_cli.services.webhooks.ledger import list_events

    return {row["id"] for row in list_events(db, limit=100_000)}


def wait_for_delivery(db: Database, sandbox: Sandbox, *, since: int, known: set[str]) -> int:
    """Block until every sandbox event since ``since`` is in the ledger; returns how many were
    new (not in ``known``, the ledger before the step)."""
    from billing_cli.config import Settings
    from billing_cli.gateway import make_gateway
    from billing_cli.services.webhooks.setup import default_event_types

    gateway = make_gateway(
        Settings(stripe_secret_key=sandbox.secret_key, stripe_api_base=sandbox.api_base)
    )
    # Only the types the endpoint subscribes to (``webhooks setup``'s default) are delivered.
    subscribed = default_event_types()
    wanted = {e["id"] for e in gateway.list_events(created_gte=since, types=subscribed)} - known
    deadline = time.monotonic() + DELIVERY_TIMEOUT_SECONDS
    seen: set[str] = set()
    while time.monotonic() < deadline:
        seen = ledger_ids(db)
        if wanted <= seen:
            return len(wanted)
        time.sleep(0.1)
    missing = ", ".join(sorted(wanted - seen))
    raise TimeoutError(f"webhooks not delivered within {DELIVERY_TIMEOUT_SECONDS:.0f}s: {missing}")


def subscription_id(db: Database, tenant: str) -> str:
    from billing_cli.services.subscriptions.lifecycle import list_subscriptions

    for row in list_subscriptions(db):
        if row["tenant"] == tenant and row["stripe_subscription_id"]:
            return str(row["stripe_subscription_id"])
    raise LookupError(f"{tenant} has no subscription")
