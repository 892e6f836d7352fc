"""A signed delivery holding NaN or Infinity (issue 20.5): Python's json reads them, JSON has
none. The endpoint answers 400 and counts a refusal (never 500, which Stripe would redeliver for
days), and nothing reaches the ledger, on both databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from billing_cli.repository import Database
from billing_cli.services.webhooks import WebhookEngine
from billing_cli.web import create_app
from tests.signing import sign
from tests.web import SECRET, ServerThread, post, reply, wait_until
from tests.web.test_endpoint import PRICE_ID, add_plan, business_tables, created_event
from tests.web.test_observability import rejected_rows


@pytest.fixture
def url(db: Database) -> Iterator[str]:
    add_plan(db, "basic", PRICE_ID)
    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
    app = create_app(engine=engine, webhook_secret=SECRET, rejection_flush_seconds=0.05)
    with ServerThread(app) as server:
        yield server.url


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_number_is_answered_400_and_counted(
    url: str, db: Database, constant: str
) -> None:
    import json

    text = json.dumps(created_event(event_id="evt_nan"))
    body = text.replace('"quantity": 1', f'"quantity": {constant}', 1).encode()
    assert constant.encode() in body
    before = business_tables(db)
    response = post(url, body, {"Stripe-Signature": sign(body, SECRET)})
    assert response.status_code == 400
    assert reply(response) == {"error": f"body is not valid JSON: {constant} is not a JSON number"}
    assert business_tables(db) == before
    wait_until(
        lambda: rejected_rows(db) == {"malformed_body": 1}, timeout=10, what="the refusal count"
    )
