"""Replay: from the sandbox's real Events API, from files, and the ledger's failed rows."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from billing_cli.errors import UsageError
from billing_cli.gateway import Gateway
from billing_cli.models import utcnow
from billing_cli.repository import Database
from billing_cli.services.webhooks import WebhookEngine
from billing_cli.services.webhooks.replay import (
    StripeSelection,
    check_window,
    load_events_file,
    replay_feed,
    retry_failed,
    run_replay,
)
from billing_cli.services.webhooks.stripe_feed import SlicedFeed
from stripe_sandbox import Sandbox
from tests import events as ev
from tests.conftest import StripeRequests
from tests.factories import add_synced_plan, add_tenant, table_snapshot
from tests.services.webhooks.conftest import Acme, state

T0 = 1_767_225_600


def _subscribe_in_sandbox(db: Database, gateway: Gateway) -> str:
    """What ``subs`` does, straight through the gateway: a tagged customer and subscription."""
    price = add_synced_plan(db, gateway, "starter", amount=1200)
    add_tenant(db, "acme")
    customer = gateway.create_customer(
        email="billing@acme.test",
        name="Acme",
        metadata={"tenant": "acme"},
        idempotency_key="test:customer:acme",
    )
    visa = gateway.attach_payment_method(
        "pm_card_visa", customer_id=customer.id, idempotency_key="test:pm:visa"
    )
    gateway.set_default_payment_method(customer.id, visa.id, idempotency_key="test:default:1")
    sub = gateway.create_subscription(
        customer_id=customer.id,
        price_id=price,
        trial_days=None,
        default_payment_method=None,
        metadata={"tenant": "acme"},
        idempotency_key="test:sub:acme",
    )
    failing = gateway.attach_payment_method(
        "pm_card_chargeCustomerFail", customer_id=customer.id, idempotency_key="test:pm:fail"
    )
    gateway.set_default_payment_method(customer.id, failing.id, idempotency_key="test:default:2")
    return sub.id


def _recent(**kwargs: Any) -> StripeSelection:
    return StripeSelection(since=utcnow() - timedelta(hours=1), **kwargs)


@pytest.mark.sandbox
def test_replay_from_the_sandbox_suspends_then_reactivates(
    db: Database, gateway: Gateway, sandbox: Sandbox
) -> None:
    sub_id = _subscribe_in_sandbox(db, gateway)
    time.sleep(1.05)  # the sandbox runs in real time: keep the phases in distinct seconds
    for _ in range(3):
        sandbox.renew(sub_id)
    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)

    dry = run_replay(
        engine, from_file=None, selection=_recent(), gateway=lambda: gateway, dry_run=True
    )
    assert dry.failed == 0 and dry.counts["processed"] > 0
    assert state(db)["subscription"] is None  # the dry run wrote nothing

    summary = run_replay(engine, from_file=None, selection=_recent(), gateway=lambda: gateway)
    assert summary.failed == 0
    assert summary.counts["processed"] >= 6
    found = state(db)
    assert found["subscription"]["stripe_subscription_id"] == sub_id
    assert found["subscription"]["plan"] == "starter"
    assert found["subscription"]["status"] == "past_due"
    assert found["subscription"]["failed_payment_attempts"] == 3
    assert (found["tenant"]["status"], found["tenant"]["suspended_by"]) == ("suspended", "billing")

    again = run_replay(engine, from_file=None, selection=_recent(), gateway=lambda: gateway)
    assert again.counts == {
        "processed": 0,
        "skipped": len(summary.outcomes),
        "ignored": 0,
        "deferred": 0,
        "failed": 0,
    }

    visa = gateway.attach_payment_method(
        "pm_card_visa",
        customer_id=found["subscription"]["stripe_customer_id"],
        idempotency_key="test:pm:visa2",
    )
    gateway.set_default_payment_method(
        found["subscription"]["stripe_customer_id"], visa.id, idempotency_key="test:default:3"
    )
    time.sleep(1.05)
    sandbox.renew(sub_id)
    paid = run_replay(
        engine, from_file=None, selection=_recent(types=("invoice.*",)), gateway=lambda: gateway
    )
    assert {o.type for o in paid.outcomes if o.status == "processed"} >= {"invoice.paid"}
    found = state(db)
    assert found["tenant"]["status"] == "active"
    assert found["subscription"]["failed_payment_attempts"] == 0


@pytest.mark.sandbox
def test_a_window_replays_slice_by_slice_with_the_next_slice_fetched_meanwhile(
    db: Database, gateway: Gateway, sandbox: Sandbox
) -> None:
    sub_id = _subscribe_in_sandbox(db, gateway)
    for _ in range(2):
        time.sleep(1.05)  # events in distinct seconds, so one-second slices split them
        sandbox.renew(sub_id)
    whole = gateway.list_events(created_gte=int(time.time()) - 3600)
    threads: list[str] = []

    class Watched:
        """The real gateway, noting which thread lists events."""

        def list_events(self, **query: Any) -> list[dict[str, Any]]:
            threads.append(threading.current_thread().name)
            return gateway.list_events(**query)

    now = int(time.time())
    feed = SlicedFeed(lambda: Watched(), start=now - 3600, end=now + 1, first_width=1)  # type: ignore[arg-type, return-value]
    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
    summary = replay_feed(engine.for_replay(fetch=gateway.retrieve_subscription), feed)

    assert feed.stats.slices > 3 and feed.stats.fetched == len(whole)
    assert threads and all(name.startswith("events-feed") for name in threads)
    applied = [o.event_id for o in summary.outcomes]
    assert applied == [e["id"] for e in whole]  # oldest first across the slices, each once
    assert summary.failed == 0 and summary.rates().keys() == {"fetched_per_s", "applied_per_s"}
    found = state(db)
    assert found["subscription"]["failed_payment_attempts"] == 2


@pytest.mark.sandbox
def test_replay_of_chosen_event_ids(db: Database, gateway: Gateway, sandbox: Sandbox) -> None:
    _subscribe_in_sandbox(db, gateway)
    created = gateway.list_events(types=("customer.subscription.created",))
    selection = StripeSelection(event_ids=(created[0]["id"],))
    summary = run_replay(
        WebhookEngine(db, live_mode=False, max_failed_attempts=3),
        from_file=None,
        selection=selection,
        gateway=lambda: gateway,
    )
    assert [(o.type, o.status) for o in summary.outcomes] == [
        ("customer.subscription.created", "processed")
    ]


def test_a_window_past_30_days_is_refused_before_any_call(
    db: Database, stripe_requests: StripeRequests
) -> None:
    def no_gateway() -> Gateway:
        raise AssertionError("the gateway must not be built")

    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
    old = StripeSelection(since=utcnow() - timedelta(days=31))
    with pytest.raises(UsageError, match=r"30 days only.*--from-file"):
        run_replay(engine, from_file=None, selection=old, gateway=no_gateway)
    assert stripe_requests.sent == []
    with pytest.raises(UsageError, match="is not after --since"):
        check_window(
            StripeSelection(since=utcnow() - timedelta(days=1), until=utcnow() - timedelta(days=2))
        )


def _lifecycle_events() -> list[dict[str, Any]]:
    common = {"subscription_id": "sub_acme", "customer_id": "cus_acme"}
    return [
        ev.invoice_event(
            "invoice.payment_failed", created=T0 + 30, attempt_count=3, paid=False, **common
        ),
        ev.subscription_event(
            "customer.subscription.created",
            created=T0,
            status="active",
            price_id="price_basic_monthly",
            shape="legacy",
            **common,
        ),
        ev.invoice_event(
            "invoice.payment_failed",
            created=T0 + 10,
            attempt_count=1,
            paid=False,
            shape="legacy",
            **common,
        ),
    ]


@pytest.mark.parametrize("layout", ["array", "lines", "single"])
def test_replay_from_a_file(db: Database, acme: Acme, tmp_path: Path, layout: str) -> None:
    events = _lifecycle_events()
    path = tmp_path / "events.json"
    if layout == "array":
        path.write_text(json.dumps(events))
    elif layout == "lines":
        path.write_text("\n".join(json.dumps(e) for e in events) + "\n\n")
    else:
        events = events[1:2]
        path.write_text(json.dumps(events[0], indent=2))
    loaded = load_events_file(path)
    assert [e["created"] for e in loaded] == sorted(e["created"] for e in events)
    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
    summary = run_replay(
        engine,
        from_file=path,
        selection=StripeSelection(),
        gateway=lambda: pytest.fail("no Stripe"),
    )
    assert summary.counts["processed"] == len(events) and summary.source == "file"
    if layout != "single":
        assert state(db)["tenant"]["status"] == "suspended"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "line 1 is not JSON"),
        ('{"id": "evt_1"}\n[1]\nnope', "line 3 is not JSON"),
        ("[1, 2]", "item 1 is not an event object"),
        ("[]", "holds no events"),
        (
            '[{"id": "evt_1", "type": "x", "created": 1, "livemode": false}]',
            "event 1 of 2: .*no data.object",
        ),
        (
            json.dumps([ev.customer_event("customer.created", customer_id="c", livemode=True)]),
            "live-mode",
        ),
    ],
)
def test_a_bad_file_is_refused_whole(
    db: Database, acme: Acme, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    good = json.dumps(_lifecycle_events()[1])
    if content.startswith("[{"):
        path.write_text(content[:-1] + ", " + good + "]")
    before = table_snapshot(db)
    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
    with pytest.raises(UsageError, match=message) as caught:
        run_replay(
            engine, from_file=path, selection=StripeSelection(), gateway=lambda: pytest.fail("no")
        )
    assert "\n" not in str(caught.value)
    assert table_snapshot(db) == before


def test_a_missing_file_is_a_usage_error(db: Database, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        load_events_file(tmp_path / "absent.json")


def test_file_and_stripe_filters_do_not_mix(db: Database, tmp_path: Path) -> None:
    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
    with pytest.raises(UsageError, match="cannot be combined"):
        run_replay(
            engine,
            from_file=tmp_path / "x.json",
            selection=StripeSelection(types=("invoice.*",)),
            gateway=lambda: pytest.fail("no"),
        )


def test_retry_failed_reprocesses_the_failed_rows(db: Database, acme: Acme) -> None:
    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
    created = _lifecycle_events()[1]
    broken = {**created, "data": {"object": {**created["data"]["object"], "status": None}}}
    assert engine.process(broken, source="endpoint").status == "failed"
    # The stored payload is the broken one: a retry fails again (and says so)...
    summary = retry_failed(engine, db)
    assert [o.status for o in summary.outcomes] == ["failed"]
    # ...until the fixed event arrives (Stripe's own retry), after which nothing is left to retry.
    assert engine.process(created, source="endpoint").status == "processed"
    dry = retry_failed(engine, db, dry_run=True)
    assert dry.outcomes == ()


def test_a_file_with_an_event_created_beyond_year_9999_is_refused_before_any_is_applied(
    db: Database, acme: Acme, tmp_path: Path
) -> None:
    lifecycle = _lifecycle_events()
    hostile = {**lifecycle[-1], "id": "evt_far_future", "created": 10**20}
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in [*lifecycle, hostile]))
    before = table_snapshot(db)
    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
    with pytest.raises(UsageError, match=f"event {len(lifecycle) + 1} of .*out of range"):
        run_replay(
            engine, from_file=path, selection=StripeSelection(), gateway=lambda: pytest.fail("no")
        )
    assert table_snapshot(db) == before  # the earlier events were not applied either


@pytest.mark.parametrize("layout", ["array", "lines"])
def test_json_nested_too_deep_is_a_usage_error(tmp_path: Path, layout: str) -> None:
    nested = "[" * 200_000 + "]" * 200_000
    path = tmp_path / "deep.json"
    path.write_text(nested if layout == "array" else f'{{"id": "evt_1"}}\n{nested}\n')
    with pytest.raises(UsageError, match="nested too deep"):
        load_events_file(path)


def test_reading_dev_zero_stops_at_once(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="line 1 is not JSON"):
        load_events_file(Path("/dev/zero"))


def test_reading_a_file_stops_at_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "blank.json"
    path.write_text(" " * (3 * 2**20))  # whitespace reads on: only the cap stops it
    with pytest.raises(UsageError, match="larger than 1 MiB"):
        load_events_file(path, max_bytes=2**20)


def test_one_event_larger_than_the_cap_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    event = _lifecycle_events()[0]
    path.write_text(json.dumps({**event, "padding": "x" * (3 * 2**20)}) + "\n")
    with pytest.raises(UsageError, match="an event larger than 1 MiB"):
        load_events_file(path, max_event_bytes=2**20)
    assert [e["id"] for e in load_events_file(path)] == [event["id"]]  # under the default cap


@pytest.mark.parametrize("layout", ["array", "lines"])
def test_events_spanning_read_chunks_are_read_whole(tmp_path: Path, layout: str) -> None:
    events = [
        {**event, "id": f"{event['id']}_{n}", "note": "é" * 70_000}
        for n in range(12)
        for event in _lifecycle_events()[:2]
    ]
    path = tmp_path / "events.json"
    if layout == "array":
        path.write_text(json.dumps(events, indent=1))
    else:
        events.reverse()
        path.write_text("".join(json.dumps(e) + "\n" for e in events))
    expected = sorted(events, key=lambda e: e["created"])  # stable: file order within a second
    loaded = load_events_file(path)
    assert [e["id"] for e in loaded] == [e["id"] for e in expected]
    assert loaded == expected


def test_a_stripe_replay_needs_a_selection(db: Database) -> None:
    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
    for selection in (StripeSelection(), StripeSelection(types=("invoice.*",))):
        with pytest.raises(UsageError, match="say which events to replay: --since"):
            run_replay(
                engine, from_file=None, selection=selection, gateway=lambda: pytest.fail("no")
            )


def test_since_30d_is_the_whole_window_not_past_it() -> None:
    from billing_cli.timeparse import parse_when

    check_window(StripeSelection(since=parse_when("30d")))


@pytest.mark.sandbox
@pytest.mark.parametrize("order", ["as listed", "reversed"])
def test_ending_a_trial_in_the_sandbox_converges_on_stripes_answer(
    db: Database, gateway: Gateway, sandbox: Sandbox, order: str
) -> None:
    """Issue 8's sandbox reproduction: ending a trial emits several updates of the subscription
    in one second; whatever their order, the row ends as Stripe says (it was left trialing)."""
    from billing_cli.services.webhooks.replay import fetch_from_stripe, replay

    price = add_synced_plan(db, gateway, "starter", amount=1200)
    add_tenant(db, "acme")
    customer = gateway.create_customer(
        email="billing@acme.test",
        name="Acme",
        metadata={"tenant": "acme"},
        idempotency_key="test:customer:trial",
    )
    visa = gateway.attach_payment_method(
        "pm_card_visa", customer_id=customer.id, idempotency_key="test:pm:trial"
    )
    gateway.set_default_payment_method(customer.id, visa.id, idempotency_key="test:default:trial")
    sub = gateway.create_subscription(
        customer_id=customer.id,
        price_id=price,
        trial_days=14,
        default_payment_method=None,
        metadata={"tenant": "acme"},
        idempotency_key="test:sub:trial",
    )
    time.sleep(1.05)
    sandbox.end_trial(sub.id)
    events = fetch_from_stripe(gateway, _recent())
    if order == "reversed":
        events = list(reversed(events))
    engine = WebhookEngine(
        db, live_mode=False, max_failed_attempts=3, fetch=gateway.retrieve_subscription
    )
    summary = replay(engine, events, source="replay")
    assert summary.failed == 0 and not summary.needs_refresh
    live = gateway.retrieve_subscription(sub.id)
    found = state(db)["subscription"]
    assert live.status == "active"
    assert found["status"] == live.status
    assert found["current_period_end"] == live.current_period_end.isoformat().replace("+00:00", "Z")
