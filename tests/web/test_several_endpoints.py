"""Several ``webhooks serve`` processes behind one load balancer, on one database
(docs/architecture.md, The webhook engine): three real processes, realistic lifecycles of
several tenants delivered out of order, each event more than once, the copies of one event
racing on different processes, and same-second ties (some settled by
``data.previous_attributes``, some only by reading Stripe). What must hold is what one process
gives: the final rows equal those of one engine applying the events in order, every event is in
the ledger once, and of all the answers to one event's copies exactly one applied it (the others
say ``skipped``). A copy answered 500 is delivered again, as Stripe retries. Stripe's side of a
tie is a small HTTP server answering ``GET /v1/subscriptions/ID`` with the subscription as of
its last event (what Stripe would say now), reached by each process through its gateway
(``STRIPE_API_BASE``), as in production.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from billing_cli.repository import Database, migrations
from billing_cli.services.webhooks import WebhookEngine
from tests.factories import add_tenant
from tests.services.webhooks.conftest import PRICE_BASIC, PRICE_PRO, add_plans, state
from tests.services.webhooks.lifecycles import Plan, lifecycle, random_plan, stripe_now
from tests.web import SECRET, ServeProcess, deliver, reply, wait_until

TENANTS = 6
PROCESSES = 3


class _StripeNow(ThreadingHTTPServer):
    """``GET /v1/subscriptions/ID``: the subscription as of its last event, as JSON."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.latest = {
            e["data"]["object"]["id"]: e["data"]["object"]
            for e in events
            if e["type"].startswith("customer.subscription.")
        }
        self.reads = 0
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _StripeNow

    def do_GET(self) -> None:
        found = self.server.latest.get(self.path.split("?")[0].rsplit("/", 1)[-1])
        self.server.reads += 1
        body = json.dumps(found or {"error": {"type": "invalid_request_error"}}).encode()
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def stripe_now_server(request: pytest.FixtureRequest) -> Iterator[_StripeNow]:
    server = _StripeNow(request.node.events)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _lifecycles(rng: random.Random) -> list[dict[str, Any]]:
    """Six tenants' lifecycles: the first three fixed (a trial that fails and recovers, one
    suspended after three failures and deleted, a plan change then cancellation), the rest
    drawn; most steps 0 s, so one second holds several events of one subscription."""
    fixed = [
        Plan(trial=True, failures=2, recover=True, upcoming=True, email_change=True),
        Plan(failures=3, deleted=True, customer_deleted=True),
        Plan(plan_change=True, cancel_at_period_end=True, trial=True),
    ]
    plans = fixed + [random_plan(rng) for _ in range(TENANTS - len(fixed))]
    events: list[dict[str, Any]] = []
    for n, plan in enumerate(plans):
        events += lifecycle(
            plan,
            slug=f"t{n}",
            customer_id=f"cus_t{n}",
            subscription_id=f"sub_t{n}",
            prices=(PRICE_BASIC, PRICE_PRO),
            start=1_767_225_600 + n,
            steps=[0, 0, 86_400, 0, 3_600],
            shapes=["current", "legacy", "current"],
            id_prefix=f"t{n}_",
            proofs=[True, False],  # some ties proven by previous_attributes, some by Stripe
        )
    return events


def _deliveries(rng: random.Random, events: list[dict[str, Any]]) -> list[tuple[int, Any]]:
    """(process, event) pairs: every event once, about half of them again (some three times),
    shuffled; each copy of an event goes to another process than the copy before it."""
    copies = [e for e in events for _ in range(rng.choice((1, 1, 2, 3)))]
    rng.shuffle(copies)
    last: dict[str, int] = {}
    out = []
    for event in copies:
        choice = rng.choice([p for p in range(PROCESSES) if p != last.get(event["id"])])
        last[event["id"]] = choice
        out.append((choice, event))
    return out


def _one_process_state(events: list[dict[str, Any]], tmp_path: Path) -> dict[str, Any]:
    """What one engine gives, applying the events in order on a database of its own."""
    db = Database(f"sqlite:///{tmp_path / 'one-process.db'}")
    migrations.upgrade(db)
    _seed(db)
    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3, fetch=stripe_now(events))
    for event in events:
        assert engine.process(event, source="endpoint").status != "failed"
    found = _state(db)
    db.dispose()
    return found


def _seed(db: Database) -> None:
    add_plans(db)
    for n in range(TENANTS):
        add_tenant(db, f"t{n}")


def _state(db: Database) -> dict[str, Any]:
    found = {}
    for n in range(TENANTS):
        one = state(db, f"t{n}")
        tenant = one["tenant"]
        found[f"t{n}"] = {
            "tenant": {k: tenant[k] for k in ("status", "suspended_by", "name", "email")},
            "subscription": one["subscription"],
        }
    return found


def _ledger(db: Database) -> list[tuple[str, str]]:
    import sqlalchemy as sa

    with db.connect() as connection:
        rows = connection.execute(sa.text("SELECT stripe_event_id, status FROM webhook_event"))
        return [(str(i), str(s)) for i, s in rows]


def _send_until_2xx(url: str, event: dict[str, Any]) -> list[tuple[int, str]]:
    """Deliver as Stripe does: again after a 5xx (at most five times)."""
    answers = []
    for _ in range(5):
        response = deliver(url, event)
        answers.append((response.status_code, reply(response).get("status", "")))
        if response.status_code < 500:
            break
    return answers


@pytest.mark.parametrize("seed", [7, 21])
def test_three_processes_on_one_database_end_as_one_process_would(
    request: pytest.FixtureRequest, db: Database, tmp_path: Path, seed: int
) -> None:
    if db.dialect == "sqlite":
        pytest.skip("several endpoint processes share one PostgreSQL, not a SQLite file")
    rng = random.Random(seed)
    events = _lifecycles(rng)
    request.node.events = events
    stripe = request.getfixturevalue("stripe_now_server")
    expected = _one_process_state(events, tmp_path)
    _seed(db)
    env = {
        "BILLING_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "STRIPE_SECRET_KEY": "sk_test_several_endpoints_0123456789",
        "STRIPE_API_BASE": f"http://127.0.0.1:{stripe.server_address[1]}",
        "STRIPE_MAX_NETWORK_RETRIES": "0",
    }
    servers = [ServeProcess(env) for _ in range(PROCESSES)]
    try:
        for server in servers:
            server.start()
        for server in servers:
            wait_until(
                lambda s=server: requests.get(s.url + "/healthz", timeout=5).ok,
                timeout=30,
                what="the endpoint to answer",
            )
        plan = _deliveries(rng, events)
        with ThreadPoolExecutor(max_workers=3 * PROCESSES) as pool:
            answers = list(
                pool.map(
                    lambda pair: (pair[1]["id"], _send_until_2xx(servers[pair[0]].url, pair[1])),
                    plan,
                )
            )
        for server in servers:
            assert server.terminate(timeout=20) == 0, server.stderr()
    finally:
        for server in servers:
            server.stop()

    final = Counter()
    applied = Counter()
    for event_id, tries in answers:
        code, status = tries[-1]
        assert code == 200, (event_id, tries)
        final[status] += 1
        applied[event_id] += status != "skipped"
    assert set(applied) == {e["id"] for e in events}
    assert set(applied.values()) == {1}, "an event applied twice or never"
    assert final["skipped"] == len(plan) - len(events) > 0
    ledger = _ledger(db)
    assert sorted(i for i, _ in ledger) == sorted(e["id"] for e in events)  # once each
    assert {s for _, s in ledger} <= {"processed", "ignored"}
    assert _state(db) == expected
    assert stripe.reads > 0  # some ties were settled by reading Stripe
