"""``billing webhooks``: exit codes, JSON purity, and file replay without Stripe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from billing_cli.repository import Database
from billing_cli.services.webhooks import WebhookEngine
from tests import events as ev
from tests.cli.conftest import Billing
from tests.factories import add_tenant, table_snapshot
from tests.services.webhooks.conftest import PRICE_BASIC, add_plans, link_customer

T0 = 1_767_225_600
COMMON = {"subscription_id": "sub_acme", "customer_id": "cus_acme"}


@pytest.fixture
def acme(db_env: Database) -> Database:
    add_plans(db_env)
    add_tenant(db_env, "acme")
    link_customer(db_env, "acme", "cus_acme", "sub_acme")
    return db_env


def _events() -> list[dict[str, Any]]:
    return [
        ev.subscription_event(
            "customer.subscription.created",
            created=T0,
            status="active",
            price_id=PRICE_BASIC,
            **COMMON,
        ),
        *(
            ev.invoice_event(
                "invoice.payment_failed", created=T0 + n, attempt_count=n, paid=False, **COMMON
            )
            for n in (1, 2, 3)
        ),
        ev.event("price.created", {"id": "price_x", "object": "price"}, created=T0 + 5),
    ]


def _file(tmp_path: Path, events: list[dict[str, Any]]) -> str:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return str(path)


def test_replay_from_a_file_needs_no_stripe_and_prints_a_summary(
    billing: Billing, acme: Database, tmp_path: Path
) -> None:
    path = _file(tmp_path, _events())
    result = billing("webhooks", "replay", "--from-file", path)
    assert result.exit_code == 0, result.stderr
    assert "processed" in result.stdout and "ignored" in result.stdout
    tenant = billing.json("tenants", "show", "acme")["tenant"]
    assert (tenant["status"], tenant["suspended_by"]) == ("suspended", "billing")
    again = billing.json("webhooks", "replay", "--from-file", path)
    assert again["counts"] == {
        "processed": 0,
        "skipped": 5,
        "ignored": 0,
        "deferred": 0,
        "failed": 0,
    }


def test_replay_json_is_pure_and_dry_run_writes_nothing(
    billing: Billing, acme: Database, tmp_path: Path
) -> None:
    before = table_snapshot(acme)
    result = billing(
        "webhooks", "replay", "--from-file", _file(tmp_path, _events()), "--dry-run", "--json"
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["dry_run"] is True and data["counts"]["processed"] == 4
    suspend = data["events"][3]["changes"][-1]
    assert (suspend["action"], suspend["after"]["status"]) == ("suspend", "suspended")
    assert table_snapshot(acme) == before


def test_dry_run_prints_before_and_after(billing: Billing, acme: Database, tmp_path: Path) -> None:
    result = billing("webhooks", "replay", "--from-file", _file(tmp_path, _events()), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "invoice.payment_failed: would be processed" in result.stdout
    assert "tenant:acme" in result.stdout and "suspended" in result.stdout
    assert "Replay (dry run)" in result.stdout


def test_a_failed_event_exits_1_and_retry_failed_lists_it(
    billing: Billing, acme: Database, tmp_path: Path
) -> None:
    broken = _events()[0]
    broken["data"]["object"]["status"] = None
    result = billing("webhooks", "replay", "--from-file", _file(tmp_path, [broken]))
    assert result.exit_code == 1
    assert "ValueError: subscription has no status" in result.stderr
    listed = billing.json("webhooks", "list", "--status", "failed")
    assert [e["id"] for e in listed] == [broken["id"]]
    retried = billing("webhooks", "retry-failed", "--json")
    assert retried.exit_code == 1
    assert json.loads(retried.stdout)["counts"]["failed"] == 1


@pytest.mark.parametrize("size", ["0", "-3", "many"])
def test_a_bad_batch_size_is_refused_and_changes_nothing(
    billing: Billing, acme: Database, tmp_path: Path, size: str
) -> None:
    before = table_snapshot(acme)
    result = billing(
        "webhooks", "replay", "--from-file", _file(tmp_path, _events()), "--batch-size", size
    )
    assert result.exit_code == 2
    assert "--batch-size" in result.stderr and result.stderr.count("\n") == 1
    assert table_snapshot(acme) == before


def test_batch_sizes_replay_a_file_alike_and_report_the_rate(
    billing: Billing, acme: Database, tmp_path: Path
) -> None:
    events = _events()
    path = _file(tmp_path, events + events[:2])  # with two duplicates
    batched = billing.json("webhooks", "replay", "--from-file", path, "--batch-size", "3")
    assert batched["counts"]["skipped"] == 2 and batched["applied_per_s"] > 0
    tenant = billing.json("tenants", "show", "acme")["tenant"]
    assert (tenant["status"], tenant["suspended_by"]) == ("suspended", "billing")
    forced = billing.json("webhooks", "replay", "--from-file", path, "--batch-size", "1", "--force")
    assert [(e["id"], e["status"]) for e in forced["events"]][:5] == [
        (e["id"], "processed") for e in batched["events"][:5]
    ]


def test_a_bad_file_is_a_usage_error(billing: Billing, acme: Database, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{nope")
    result = billing("webhooks", "replay", "--from-file", str(path))
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_a_window_past_30_days_is_refused_without_a_key(billing: Billing, acme: Database) -> None:
    result = billing("webhooks", "replay", "--since", "45d")
    assert result.exit_code == 2
    assert "keeps events for 30 days only" in result.stderr


def test_replay_from_stripe_needs_a_key(billing: Billing, acme: Database) -> None:
    result = billing("webhooks", "replay", "--since", "2d")
    assert result.exit_code == 1
    assert "STRIPE_SECRET_KEY is not set" in result.stderr


@pytest.mark.sandbox
def test_replay_from_the_sandbox(billing: Billing, acme: Database, sandbox: object) -> None:
    result = billing("webhooks", "replay", "--since", "1h", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["counts"]["failed"] == 0


def test_list_and_show(billing: Billing, acme: Database) -> None:
    engine = WebhookEngine(acme, live_mode=False, max_failed_attempts=3)
    events = _events()
    for event in events:
        engine.process(event, source="endpoint")
    listed = billing.json("webhooks", "list")
    assert [e["id"] for e in listed] == [e["id"] for e in reversed(events)]
    only = billing.json("webhooks", "list", "--type", "price.created", "--status", "ignored")
    assert [e["id"] for e in only] == [events[-1]["id"]]
    assert billing.json("webhooks", "list", "--limit", "2", "--since", "2026-01-01")[0]["id"]
    shown = billing.json("webhooks", "show", events[0]["id"])
    assert shown["status"] == "processed" and shown["payload"]["id"] == events[0]["id"]
    human = billing("webhooks", "show", events[0]["id"])
    assert human.exit_code == 0 and "customer.subscription.created" in human.stdout
    table = billing("webhooks", "list")
    assert events[0]["id"] in table.stdout


def test_show_an_unknown_event(billing: Billing, acme: Database) -> None:
    result = billing("webhooks", "show", "evt_nope")
    assert result.exit_code == 1
    assert (
        result.stderr
        == "Error: no event 'evt_nope' in the ledger; `billing webhooks list` shows them\n"
    )


def test_deferred_events_and_ignore_reasons_are_listed_and_shown(
    billing: Billing, acme: Database, tmp_path: Path
) -> None:
    stranger = ev.invoice_event(
        "invoice.paid",
        created=T0,
        subscription_id="sub_unknown",
        customer_id="cus_unknown",
        attempt_count=1,
        paid=True,
    )
    unhandled = ev.event("price.created", {"id": "price_x", "object": "price"}, created=T0 + 1)
    result = billing("webhooks", "replay", "--from-file", _file(tmp_path, [stranger, unhandled]))
    assert result.exit_code == 0, result.stderr
    assert "1 event deferred" in result.stderr
    parked = billing.json("webhooks", "list", "--status", "deferred")
    assert [e["id"] for e in parked] == [stranger["id"]]
    assert "parked until a tenant is linked to customer cus_unknown" in parked[0]["error"]
    table = billing("webhooks", "list", "--status", "ignored")
    assert unhandled["id"] in table.stdout and "unhandled event type price.created" in table.stdout
    shown = billing("webhooks", "show", unhandled["id"])
    assert "unhandled event type price.created" in shown.stdout
