"""The webhook half of ``billing demo``: the real endpoint, fed by the sandbox's signed events.

The endpoint (:mod:`billing_cli.web` under uvicorn) runs in a thread of the demo process on
127.0.0.1; the sandbox posts every event to it as it happens, exactly as Stripe would. Steps that
stand for the passing of time (a trial ending, Stripe retrying an invoice) are sandbox controls;
after each one the demo waits until every event it caused is in the ledger before going on.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from billing_cli.repository import Database
    from billing_cli.sandbox import Sandbox

DELIVERY_TIMEOUT_SECONDS = 20.0


@dataclass(frozen=True)
class SandboxAction:
    """A step done by the sandbox's clock instead of an operator."""

    note: str
    run: Callable[[], object]


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


@contextmanager
def endpoint_in_thread(db: Database, *, secret: str) -> Iterator[str]:
    """Serve the webhook endpoint on a free loopback port; yields its URL."""
    import uvicorn

    from billing_cli.cli.serving import listening_socket
    from billing_cli.services.webhooks import WebhookEngine
    from billing_cli.web.app import DEFAULT_PATH, create_app

    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
    app = create_app(engine=engine, webhook_secret=secret)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    sock = listening_socket("127.0.0.1", 0, backlog=config.backlog)
    port = sock.getsockname()[1]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}{DEFAULT_PATH}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def ledger_ids(db: Database) -> set[str]:
    from billing_cli.services.webhooks.ledger import list_events

    return {row["id"] for row in list_events(db, limit=100_000)}


def wait_for_delivery(db: Database, sandbox: Sandbox, *, since: int, known: set[str]) -> int:
    """Block until every sandbox event since ``since`` is in the ledger; returns how many were
    new (not in ``known``, the ledger before the step)."""
    from billing_cli.config import Settings
    from billing_cli.gateway import make_gateway

    gateway = make_gateway(
        Settings(stripe_secret_key=sandbox.secret_key, stripe_api_base=sandbox.api_base)
    )
    wanted = {event["id"] for event in gateway.list_events(created_gte=since)} - known
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
    from billing_cli.services.subscriptions import list_subscriptions

    for row in list_subscriptions(db):
        if row["tenant"] == tenant and row["stripe_subscription_id"]:
            return str(row["stripe_subscription_id"])
    raise LookupError(f"{tenant} has no subscription")
