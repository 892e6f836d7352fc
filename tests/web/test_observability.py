"""What the endpoint shows an operator: /metrics (parsed with prometheus_client's own parser),
/healthz against the database, refusals counted in the database, the delivery log, and the
webhook path served without its trailing slash."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from billing_cli.repository import Database
from billing_cli.services.webhooks import WebhookEngine
from billing_cli.web import create_app
from billing_cli.web.delivery_log import install
from tests import events
from tests.factories import add_tenant
from tests.signing import sign, signed_delivery
from tests.web import SECRET, ServerThread, deliver, post, wait_until
from tests.web.test_endpoint import PRICE_ID, add_plan, created_event


@pytest.fixture
def url(db: Database) -> Iterator[str]:
    add_tenant(db, "acme")
    add_plan(db, "basic", PRICE_ID)
    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
    app = create_app(engine=engine, webhook_secret=SECRET, rejection_flush_seconds=0.05)
    with ServerThread(app) as server:
        yield server.url


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = requests.get(url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def rejected_rows(db: Database) -> dict[str, int]:
    with db.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT reason, SUM(count) FROM rejected_delivery GROUP BY reason")
        ).all()
    return {str(reason): int(n) for reason, n in rows}


def test_metrics_count_deliveries_refusals_and_time(url: str, db: Database) -> None:
    assert deliver(url, created_event(event_id="evt_m1")).status_code == 200
    assert deliver(url, created_event(event_id="evt_m1")).status_code == 200  # duplicate
    assert deliver(url, events.event("charge.refunded", {"id": "ch_1"})).status_code == 200
    body, headers = signed_delivery(created_event(), "whsec_wrong_0123456789abcdef")
    assert post(url, body, headers).status_code == 400
    assert post(url, b"{}", {}).status_code == 400

    found = samples(url)
    created = "customer.subscription.created"
    deliveries = "billing_webhook_deliveries_total"
    assert found[(deliveries, (("outcome", "processed"), ("type", created)))] == 1
    assert found[(deliveries, (("outcome", "skipped"), ("type", created)))] == 1
    assert found[(deliveries, (("outcome", "ignored"), ("type", "charge.refunded")))] == 1
    rejections = "billing_webhook_rejections_total"
    assert found[(rejections, (("reason", "bad_signature"),))] == 1
    assert found[(rejections, (("reason", "missing_signature"),))] == 1
    assert found[(rejections, (("reason", "body_too_large"),))] == 0
    assert found[("billing_webhook_processing_seconds_count", ())] == 3
    assert found[("billing_webhook_processing_seconds_bucket", (("le", "+Inf"),))] == 3
    assert found[("billing_webhook_in_flight", ())] == 0
    wait_until(lambda: rejected_rows(db), timeout=10, what="the refusals to be written")
    assert rejected_rows(db) == {"bad_signature": 1, "missing_signature": 1}


def test_refusals_are_counted_in_the_database_by_reason(url: str, db: Database) -> None:
    old = created_event(event_id="evt_old")
    old_body, old_headers = signed_delivery(old, SECRET, timestamp=1_000_000_000)
    assert post(url, old_body, old_headers).status_code == 400
    live = events.event("charge.refunded", {"id": "ch_live"}, livemode=True)
    assert deliver(url, live).status_code == 400
    body = b"x" * (300 * 1024)
    assert post(url, body, {"Stripe-Signature": "t=1,v1=00"}).status_code == 413
    not_json = b"not json"
    assert post(url, not_json, {"Stripe-Signature": sign(not_json, SECRET)}).status_code == 400
    expected = {
        "stale_timestamp": 1,
        "livemode_mismatch": 1,
        "body_too_large": 1,
        "malformed_body": 1,
    }
    wait_until(lambda: rejected_rows(db) == expected, timeout=10, what="the refusal counts")


def test_a_flood_of_forgeries_stays_a_few_counter_rows(url: str, db: Database) -> None:
    with requests.Session() as session:
        for _ in range(300):
            post(url, b"{}", {"Stripe-Signature": "t=1,v1=00"}, session=session)
    wait_until(
        lambda: sum(rejected_rows(db).values()) == 300,
        timeout=15,
        what=f"300 refusals counted, not {rejected_rows(db)}",
    )
    with db.connect() as connection:
        rows = connection.execute(sa.text("SELECT count(*) FROM rejected_delivery")).scalar_one()
    assert rows <= 2  # one per minute and reason (the flood may straddle a minute)


def test_the_path_without_its_trailing_slash_is_served(url: str) -> None:
    body, headers = signed_delivery(events.event("charge.refunded", {"id": "ch_2"}), SECRET)
    response = requests.post(url + "/webhooks/stripe", data=body, headers=headers, timeout=10)
    assert (response.status_code, response.json()["status"]) == (200, "ignored")


def test_healthz_is_503_when_the_database_does_not_answer(db: Database) -> None:
    engine = WebhookEngine(
        Database("postgresql+psycopg://nobody@127.0.0.1:1/none"),
        live_mode=False,
        max_failed_attempts=3,
    )
    with ServerThread(create_app(engine=engine, webhook_secret=SECRET)) as server:
        response = requests.get(server.url + "/healthz", timeout=10)
    assert (response.status_code, response.json()) == (
        503,
        {"status": "unavailable", "database": "error"},
    )


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_delivery_log_has_one_line_per_request(url: str, log_format: str) -> None:
    stream = io.StringIO()
    install(log_format, stream=stream)
    try:
        deliver(url, created_event(event_id="evt_logline"))
        post(url, b"{}", {})
    finally:
        logger = logging.getLogger("billing.deliveries")
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    if log_format == "json":
        first, second = (json.loads(line) for line in lines)
        assert set(first) == {"time", "status", "event", "type", "outcome", "ms"}
        assert (first["status"], first["event"], first["type"], first["outcome"]) == (
            200,
            "evt_logline",
            "customer.subscription.created",
            "processed",
        )
        assert first["time"].endswith("Z") and isinstance(first["ms"], float)
        assert (second["status"], second["outcome"], second["reason"]) == (
            400,
            "rejected",
            "missing_signature",
        )
    else:
        parts: list[Any] = lines[0].split(" ")
        assert parts[1:5] == ["200", "evt_logline", "customer.subscription.created", "processed"]
        assert parts[6] == "ms"
        assert lines[1].split(" ", 1)[1].startswith("400 - - rejected ")
        assert lines[1].endswith(" ms missing_signature")


def test_serve_writes_the_json_delivery_log_and_flushes_refusals_on_stop(db: Database) -> None:
    from tests.web import ServeProcess

    env = {
        "BILLING_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "STRIPE_WEBHOOK_SECRET": SECRET,
    }
    with ServeProcess(env, "--log-format", "json") as server:
        ok = deliver(server.url, events.event("charge.refunded", {"id": "ch_s"}))
        assert ok.status_code == 200
        assert post(server.url, b"{}", {}).status_code == 400
        assert server.terminate() == 0
        lines = [ln for ln in server.stderr().splitlines() if ln.startswith("{")]
    logged = [json.loads(line) for line in lines]
    assert [(e["status"], e["type"], e["outcome"]) for e in logged] == [
        (200, "charge.refunded", "ignored"),
        (400, "-", "rejected"),
    ]
    # the lifespan's shutdown wrote the refusal counted less than a second before the stop
    assert rejected_rows(db) == {"missing_signature": 1}
