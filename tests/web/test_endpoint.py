"""The webhook endpoint over real HTTP: uvicorn on loopback, the real engine, a migrated database.

Every delivery is signed as Stripe signs it (``tests.signing``); every refusal is checked to leave
every table but the counter of refusals exactly as it was (``business_tables``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from billing_cli.models import SubscriptionPlan, utcnow
from billing_cli.repository import Database
from billing_cli.repository import plans as plans_repo
from billing_cli.services.tenants import rules as tenants
from billing_cli.services.webhooks import WebhookEngine
from billing_cli.web import create_app
from tests import events
from tests.factories import add_tenant, table_snapshot
from tests.signing import sign, signed_delivery
from tests.web import SECRET, WEBHOOK_PATH, ServerThread, deliver, post, reply

PRICE_ID = "price_web_basic"


@pytest.fixture
def url(db: Database) -> Iterator[str]:
    """The base URL of uvicorn serving the endpoint on a migrated database, with tenant acme
    and the plan ``basic`` (price ``price_web_basic``) in it."""
    add_tenant(db, "acme")
    add_plan(db, "basic", PRICE_ID)
    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
    with ServerThread(create_app(engine=engine, webhook_secret=SECRET)) as server:
        yield server.url


def add_plan(db: Database, slug: str, price_id: str) -> None:
    with db.transaction() as session:
        plans_repo.add(
            session=session,
            plan=SubscriptionPlan(
                slug=slug,
                name=slug.title(),
                amount=2000,
                currency="usd",
                interval="month",
                stripe_product_id=f"prod_{slug}",
                stripe_price_id=price_id,
                created_at=utcnow(),
                updated_at=utcnow(),
            ),
        )


def ledger(db: Database) -> list[dict[str, Any]]:
    with db.connect() as connection:
        rows = connection.execute(sa.text("SELECT * FROM webhook_event ORDER BY id")).mappings()
        return [dict(row) for row in rows]


def subscription(db: Database, slug: str = "acme") -> dict[str, Any] | None:
    return tenants.show_tenant(db, slug=slug).subscription


def created_event(*, event_id: str | None = None, status: str = "active") -> dict[str, Any]:
    return events.subscription_event(
        "customer.subscription.created",
        event_id=event_id,
        subscription_id="sub_acme",
        customer_id="cus_acme",
        status=status,
        price_id=PRICE_ID,
        tenant="acme",
    )


# -- accepted deliveries ---------------------------------------------------------------------


def test_a_valid_delivery_is_processed_recorded_and_applied(url: str, db: Database) -> None:
    response = deliver(url, created_event(event_id="evt_valid"))

    assert response.status_code == 200
    assert reply(response) == {"status": "processed", "event": "evt_valid"}
    [row] = ledger(db)
    assert (row["stripe_event_id"], row["status"], row["source"]) == (
        "evt_valid",
        "processed",
        "endpoint",
    )
    row_now = subscription(db)
    assert row_now is not None
    assert row_now["status"] == "active"


@pytest.mark.parametrize("shape", ["current", "legacy"])
def test_both_payload_shapes_are_accepted(url: str, db: Database, shape: events.Shape) -> None:
    event = events.invoice_event(
        "invoice.payment_failed",
        created=events.DEFAULT_CREATED + 60,
        subscription_id="sub_acme",
        customer_id="cus_acme",
        attempt_count=1,
        paid=False,
        shape=shape,
    )
    assert deliver(url, created_event()).status_code == 200

    response = deliver(url, event)

    assert (response.status_code, reply(response)["status"]) == (200, "processed")
    row_now = subscription(db)
    assert row_now is not None
    assert row_now["status"] == "past_due"


def test_an_unknown_event_type_is_answered_200_and_recorded_as_ignored(
    url: str, db: Database
) -> None:
    event = events.event("charge.refunded", events.fixture("charge"), event_id="evt_unknown")

    response = deliver(url, event)

    assert response.status_code == 200
    assert reply(response) == {"status": "ignored", "event": "evt_unknown"}
    assert [(r["stripe_event_id"], r["status"]) for r in ledger(db)] == [("evt_unknown", "ignored")]


def test_an_event_for_an_unlinked_customer_is_answered_200_and_parked(
    url: str, db: Database
) -> None:
    """Parked is durable: Stripe must not retry it (a 500 would make it retry for days)."""
    event = events.invoice_event(
        "invoice.paid",
        event_id="evt_parked",
        subscription_id="sub_nobody",
        customer_id="cus_nobody",
        attempt_count=1,
        paid=True,
    )

    response = deliver(url, event)

    assert (response.status_code, reply(response)) == (
        200,
        {"status": "deferred", "event": "evt_parked"},
    )
    assert [(r["stripe_event_id"], r["status"]) for r in ledger(db)] == [("evt_parked", "deferred")]


def test_a_duplicate_is_answered_200_skipped_and_recorded_once(url: str, db: Database) -> None:
    event = created_event(event_id="evt_twice")
    first = deliver(url, event)
    state_after_first = table_snapshot(db)

    second = deliver(url, event)

    assert (first.status_code, reply(first)["status"]) == (200, "processed")
    assert (second.status_code, reply(second)["status"]) == (200, "skipped")
    assert [r["stripe_event_id"] for r in ledger(db)] == ["evt_twice"]
    snapshot = table_snapshot(db)
    snapshot.pop("webhook_event")  # its row may count the attempt; nothing else may move
    state_after_first.pop("webhook_event")
    assert snapshot == state_after_first


def test_a_processing_error_answers_500_so_stripe_retries_and_records_a_failed_row(
    url: str, db: Database
) -> None:
    # A well-formed envelope whose invoice cannot be read: the handler raises.
    event = events.invoice_event(
        "invoice.payment_failed",
        event_id="evt_breaks",
        subscription_id="sub_acme",
        customer_id="cus_acme",
        attempt_count=1,
        paid=False,
    )
    event["data"]["object"]["attempt_count"] = "three"
    assert deliver(url, created_event()).status_code == 200
    before = subscription(db)

    response = deliver(url, event)

    assert response.status_code == 500
    assert reply(response) == {"status": "failed", "event": "evt_breaks"}
    failed = [r for r in ledger(db) if r["stripe_event_id"] == "evt_breaks"]
    assert [r["status"] for r in failed] == ["failed"]
    assert failed[0]["error"]
    assert subscription(db) == before


def test_a_delivery_answered_500_is_processed_when_stripe_retries_it(
    url: str, db: Database
) -> None:
    event = created_event(event_id="evt_retried")
    event["data"]["object"]["items"]["data"][0]["current_period_end"] = "soon"
    assert deliver(url, event).status_code == 500

    event["data"]["object"]["items"]["data"][0]["current_period_end"] = 1_800_000_000
    response = deliver(url, event)

    assert (response.status_code, reply(response)["status"]) == (200, "processed")
    assert [(r["stripe_event_id"], r["status"]) for r in ledger(db)] == [
        ("evt_retried", "processed")
    ]


# -- refused deliveries: 400/413, nothing stored but a counter ----------------------------


def business_tables(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every table but the counter of refused deliveries (tests/web/test_observability.py)."""
    snapshot = table_snapshot(db)
    snapshot.pop("rejected_delivery")
    return snapshot


def _refused(url: str, db: Database, body: Any, headers: dict[str, str]) -> requests.Response:
    before = business_tables(db)
    response = post(url, body, headers)
    assert business_tables(db) == before
    return response


def test_a_bad_signature_is_refused_and_nothing_is_stored(url: str, db: Database) -> None:
    body, headers = signed_delivery(created_event(), "whsec_not_the_endpoint_secret_0123")
    response = _refused(url, db, body, headers)
    assert response.status_code == 400
    assert reply(response) == {"error": "signature does not match the payload"}


def test_a_tampered_body_is_refused(url: str, db: Database) -> None:
    body, headers = signed_delivery(created_event(), SECRET)
    response = _refused(url, db, body.replace(b'"active"', b'"canceled"'), headers)
    assert response.status_code == 400


def test_a_missing_signature_header_is_refused(url: str, db: Database) -> None:
    body, headers = signed_delivery(created_event(), SECRET)
    del headers["Stripe-Signature"]
    response = _refused(url, db, body, headers)
    assert (response.status_code, reply(response)) == (
        400,
        {"error": "missing Stripe-Signature header"},
    )


def test_a_stale_timestamp_is_refused(url: str, db: Database) -> None:
    body, headers = signed_delivery(created_event(), SECRET, timestamp=int(time.time()) - 301)
    response = _refused(url, db, body, headers)
    assert response.status_code == 400
    assert "timestamp outside the tolerance" in reply(response)["error"]


def test_a_timestamp_more_than_the_tolerance_in_the_future_is_refused(
    url: str, db: Database
) -> None:
    body, headers = signed_delivery(created_event(), SECRET, timestamp=int(time.time()) + 360)
    response = _refused(url, db, body, headers)
    assert response.status_code == 400
    assert reply(response)["error"] == "timestamp outside the tolerance (300 s): in the future"


def test_timestamps_within_the_tolerance_either_way_are_applied(url: str, db: Database) -> None:
    for n, offset in enumerate((-240, 240)):
        event = events.event("charge.refunded", {"id": f"ch_{n}"})
        response = deliver(url, event, timestamp=int(time.time()) + offset)
        assert (response.status_code, reply(response)["status"]) == (200, "ignored")
    assert len(ledger(db)) == 2


@pytest.mark.parametrize("body", [b'{"id": "evt_1", "type":', b"[]", b"null", b""])
def test_a_signed_body_that_is_not_a_json_object_is_refused(
    url: str, db: Database, body: bytes
) -> None:
    response = _refused(url, db, body, {"Stripe-Signature": sign(body, SECRET)})
    assert response.status_code == 400


def test_a_signed_event_without_its_envelope_fields_is_refused(url: str, db: Database) -> None:
    body = json.dumps({"id": "evt_bare", "type": "invoice.paid"}).encode()
    response = _refused(url, db, body, {"Stripe-Signature": sign(body, SECRET)})
    assert response.status_code == 400
    assert "malformed event" in reply(response)["error"]


def test_a_livemode_event_is_refused_by_a_test_mode_endpoint(url: str, db: Database) -> None:
    event = events.subscription_event(
        "customer.subscription.created",
        subscription_id="sub_live",
        customer_id="cus_live",
        status="active",
        price_id=PRICE_ID,
        tenant="acme",
        livemode=True,
    )
    body, headers = signed_delivery(event, SECRET)
    response = _refused(url, db, body, headers)
    assert response.status_code == 400
    assert "live-mode event but this tool runs in test mode" in reply(response)["error"]


def test_a_body_over_the_cap_is_refused_with_413(url: str, db: Database) -> None:
    event = created_event()
    event["padding"] = "x" * (300 * 1024)
    body, headers = signed_delivery(event, SECRET)
    response = _refused(url, db, body, headers)
    assert response.status_code == 413


def test_a_chunked_body_over_the_cap_is_refused_without_a_content_length(
    url: str, db: Database
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"padding": "'
        for _ in range(100):
            yield b"x" * 4096
        yield b'"}'

    response = _refused(url, db, chunks(), {"Stripe-Signature": "t=1,v1=00"})
    assert response.status_code == 413


def test_the_body_cap_is_configurable(db: Database) -> None:
    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
    app = create_app(engine=engine, webhook_secret=SECRET, max_body_bytes=1024)
    with ServerThread(app) as server:
        small = events.event("charge.refunded", {"id": "ch_1", "object": "charge"})
        big = dict(small, padding="x" * 2048)
        assert deliver(server.url, small).status_code == 200
        assert deliver(server.url, big).status_code == 413


# -- routes ----------------------------------------------------------------------------------


def test_healthz_answers_200_when_the_database_answers(url: str) -> None:
    response = requests.get(url + "/healthz", timeout=10)
    assert (response.status_code, response.json()) == (200, {"status": "ok", "database": "ok"})


def test_other_methods_and_paths_are_405_and_404(url: str, db: Database) -> None:
    before = business_tables(db)
    assert requests.get(url + WEBHOOK_PATH, timeout=10).status_code == 405
    assert requests.put(url + WEBHOOK_PATH, data=b"{}", timeout=10).status_code == 405
    assert requests.post(url + "/webhooks/stripes", data=b"{}", timeout=10).status_code == 404
    assert requests.post(url + "/healthz", data=b"{}", timeout=10).status_code == 405
    assert requests.get(url + "/", timeout=10).status_code == 404
    assert business_tables(db) == before


def test_a_custom_path_is_served_and_the_default_is_not(db: Database) -> None:
    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
    app = create_app(engine=engine, webhook_secret=SECRET, path="/hooks/billing")
    with ServerThread(app) as server:
        body, headers = signed_delivery(events.event("charge.refunded", {"id": "ch_1"}), SECRET)
        ok = requests.post(server.url + "/hooks/billing", data=body, headers=headers, timeout=10)
        assert ok.status_code == 200
        assert post(server.url, body, headers).status_code == 404


def test_every_delivery_is_logged_on_billing_deliveries_without_the_secret(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from billing_cli.web.delivery_log import TextFormatter

    caplog.set_level("INFO", logger="billing.deliveries")
    deliver(url, created_event(event_id="evt_logged"))
    deliver(url, created_event(), secret="whsec_wrong_0123456789abcdef")

    records = [r for r in caplog.records if r.name == "billing.deliveries"]
    lines = [TextFormatter().format(r).split(" ", 1)[1] for r in records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("200 evt_logged customer.subscription.created processed ")
    assert lines[0].endswith(" ms")
    assert lines[1].startswith("400 - - rejected ")
    assert lines[1].endswith(" ms bad_signature")
    assert not any(SECRET in line for line in lines)


# -- concurrency -----------------------------------------------------------------------------


def test_the_same_event_delivered_at_the_same_moment_is_processed_once(
    url: str, db: Database
) -> None:
    assert deliver(url, created_event()).status_code == 200
    deleted = events.subscription_event(
        "customer.subscription.deleted",
        event_id="evt_deleted_racing",
        created=events.DEFAULT_CREATED + 60,
        subscription_id="sub_acme",
        customer_id="cus_acme",
        status="canceled",
        price_id=PRICE_ID,
        canceled_at=events.DEFAULT_CREATED + 60,
        tenant="acme",
    )
    body, headers = signed_delivery(deleted, SECRET)
    senders = 8
    barrier = threading.Barrier(senders)
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()

    def send() -> None:
        with requests.Session() as session:
            session.get(url + "/healthz", timeout=10)  # connect first, so the POSTs race
            barrier.wait(timeout=10)
            response = post(url, body, headers, session=session)
        with lock:
            answers.append((response.status_code, reply(response)["status"]))

    threads = [threading.Thread(target=send) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(answers) == [(200, "processed")] + [(200, "skipped")] * (senders - 1)
    assert [r["stripe_event_id"] for r in ledger(db)].count("evt_deleted_racing") == 1
    detail = tenants.show_tenant(db, slug="acme", audit_limit=100)
    assert detail.tenant["status"] == "suspended"
    suspensions = [a for a in detail.audit if a["operator"] == "webhook:evt_deleted_racing"]
    assert len(suspensions) == 1
    with db.connect() as connection:
        kinds = connection.execute(sa.text("SELECT kind FROM notification")).scalars().all()
    assert kinds.count("suspended") == 1


def test_many_distinct_deliveries_at_once_are_all_recorded(url: str, db: Database) -> None:
    count = 40
    bodies = [
        signed_delivery(events.event("charge.refunded", {"id": f"ch_{n}"}), SECRET)
        for n in range(count)
    ]
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(lambda bh: post(url, *bh).status_code, bodies))
    assert statuses == [200] * count
    assert len(ledger(db)) == count


def test_create_app_refuses_an_empty_secret_and_bad_settings(db: Database) -> None:
    from billing_cli.errors import ConfigError, UsageError

    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
    with pytest.raises(ConfigError, match="STRIPE_WEBHOOK_SECRET is not set"):
        create_app(engine=engine, webhook_secret=" ")
    with pytest.raises(UsageError):
        create_app(engine=engine, webhook_secret=SECRET, path="webhooks")
    with pytest.raises(UsageError):
        create_app(engine=engine, webhook_secret=SECRET, max_body_bytes=0)
    with pytest.raises(UsageError):
        create_app(engine=engine, webhook_secret=SECRET, concurrency=0)


def test_the_app_mounts_under_a_prefix_in_another_asgi_app(db: Database) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
    host = Starlette(
        routes=[Mount("/billing", app=create_app(engine=engine, webhook_secret=SECRET))]
    )
    with ServerThread(host) as server:
        response = deliver(server.url + "/billing", events.event("charge.refunded", {"id": "ch"}))
        assert (response.status_code, reply(response)["status"]) == (200, "ignored")
        assert requests.get(server.url + "/billing/healthz", timeout=10).status_code == 200


@pytest.mark.parametrize(
    "event_id",
    ["evt_with\x00nul", "evt_" + "x" * 5000, "evt with space", "evt_\x1b[31mred"],
    ids=["nul", "5000-chars", "space", "escape"],
)
def test_a_signed_event_with_a_hostile_id_is_400_and_nothing_is_stored(
    url: str, db: Database, event_id: str
) -> None:
    body, headers = signed_delivery({**created_event(), "id": event_id}, SECRET)
    response = _refused(url, db, body, headers)
    assert response.status_code == 400  # not 500: Stripe must not redeliver it forever
    assert "is not a Stripe id" in reply(response)["error"]


def test_a_signed_event_created_beyond_year_9999_is_400(url: str, db: Database) -> None:
    body, headers = signed_delivery({**created_event(), "created": 10**20}, SECRET)
    response = _refused(url, db, body, headers)
    assert response.status_code == 400
    assert "out of range" in reply(response)["error"]


def test_a_500_says_why_in_the_delivery_log_without_verbose(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 18, point 10: the delivery log (on without -v) gives the reason of a 500."""
    from billing_cli.web.delivery_log import TextFormatter

    caplog.set_level("INFO", logger="billing.deliveries")
    event = events.invoice_event(
        "invoice.payment_failed",
        event_id="evt_why",
        subscription_id="sub_acme",
        customer_id="cus_acme",
        attempt_count=1,
        paid=False,
    )
    event["data"]["object"]["attempt_count"] = "three\nforged line"
    assert deliver(url, event).status_code == 500

    records = [r for r in caplog.records if r.name == "billing.deliveries"]
    line = TextFormatter().format(records[-1]).split(" ", 1)[1]
    assert line.startswith("500 evt_why invoice.payment_failed failed ")
    assert "attempt_count" in line.split(" ms ", 1)[1], line
    assert "\n" not in line
