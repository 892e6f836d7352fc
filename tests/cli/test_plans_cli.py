"""``billing plans`` as an operator uses it, against the sandbox: exit codes, one-line errors,
``--json`` purity, dry runs that send and save nothing."""

from __future__ import annotations

import json
import socket

import pytest

from billing_cli.repository import Database
from stripe_sandbox import Sandbox
from tests.cli.conftest import Billing
from tests.conftest import StripeRequests
from tests.factories import row_counts, table_snapshot

ADD_PRO = ("plans", "add", "pro", "--name", "Pro", "--amount", "29.00", "--currency", "usd")


def add(billing: Billing, slug: str = "pro", amount: str = "29.00") -> None:
    result = billing(
        "plans", "add", slug, "--name", slug.title(), "--amount", amount, "--currency", "usd",
        "--interval", "month",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr


def test_add_prints_what_it_did(billing: Billing, db_env: Database) -> None:
    result = billing(*ADD_PRO, "--interval", "month", "--trial-days", "14")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("added plan pro (29.00 USD per month)")
    [row] = billing.json("plans", "list", "--local")
    assert (row["amount"], row["trial_days"], row["state"]) == (2900, 14, "not checked")


def test_add_json_is_only_json(billing: Billing, db_env: Database) -> None:
    result = billing(*ADD_PRO, "--interval", "year", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["after"]["interval"] == "year"


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("abc", "Error: amount must be a plain decimal number like 29.00, not 'abc'\n"),
        ("0", "Error: amount must be greater than zero, not '0'\n"),
        ("1.234", "Error: USD takes at most 2 decimals; got '1.234'\n"),
    ],
)
def test_bad_amount_exits_2_with_one_line_and_writes_nothing(
    billing: Billing, db_env: Database, amount: str, message: str
) -> None:
    args = ("plans", "add", "pro", "--name", "Pro", "--amount", amount, "--currency", "usd")
    result = billing(*args, "--interval", "month")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == message
    assert row_counts(db_env)["subscription_plan"] == 0


def test_bad_interval_is_a_usage_error(billing: Billing, db_env: Database) -> None:
    result = billing(*ADD_PRO, "--interval", "fortnight")
    assert result.exit_code == 2
    assert row_counts(db_env)["subscription_plan"] == 0


def test_update_unknown_plan_exits_1_with_one_line(billing: Billing, db_env: Database) -> None:
    result = billing("plans", "update", "ghost", "--name", "Ghost")
    assert result.exit_code == 1
    assert result.stderr == "Error: no plan 'ghost'; `billing plans list` shows the plans\n"


def test_duplicate_plan_exits_1(billing: Billing, db_env: Database) -> None:
    add(billing)
    result = billing(*ADD_PRO, "--interval", "month")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: plan 'pro' already exists")


def test_update_and_deactivate_dry_runs_write_nothing(billing: Billing, db_env: Database) -> None:
    add(billing)
    snapshot = table_snapshot(db_env)
    for args in (("update", "pro", "--amount", "39"), ("deactivate", "pro")):
        result = billing("plans", *args, "--dry-run")
        assert result.exit_code == 0, result.stderr
        assert result.stdout.startswith("[dry run] would ")
    assert table_snapshot(db_env) == snapshot


def test_sync_then_list_then_second_sync_writes_nothing(
    billing: Billing, db_env: Database, sandbox: Sandbox, stripe_requests: StripeRequests
) -> None:
    add(billing, "basic", "9.00")
    add(billing, "pro")
    assert {r["state"] for r in billing.json("plans", "list")} == {"missing"}
    first = billing("--operator", "alice", "plans", "sync")
    assert first.exit_code == 0, first.stderr
    assert "made 4 Stripe writes; 2 created" in first.stdout
    assert first.stderr == ""  # no progress bar when stderr is not a terminal
    listed = billing.json("plans", "list")
    assert [(r["slug"], r["state"]) for r in listed] == [("basic", "in sync"), ("pro", "in sync")]
    assert listed[1]["stripe"]["lookup_key"] == "billing_plan:pro"
    stripe_requests.sent.clear()
    second = billing("plans", "sync", "--json")
    assert second.exit_code == 0
    report = json.loads(second.stdout)
    assert report["stripe_writes"] == 0
    assert report["summary"]["unchanged"] == 2
    assert stripe_requests.writes == []
    entries = [e for e in billing.json("audit", "list") if e["command"] == "plans sync"]
    assert {(e["target"], e["operator"]) for e in entries} == {
        ("plan:basic", "alice"),
        ("plan:pro", "alice"),
    }


def test_sync_dry_run_sends_nothing_saves_nothing_and_shows_everything(
    billing: Billing, db_env: Database, sandbox: Sandbox, stripe_requests: StripeRequests
) -> None:
    add(billing)
    snapshot = table_snapshot(db_env)
    result = billing("plans", "sync", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert stripe_requests.posts == []
    assert table_snapshot(db_env) == snapshot
    assert "dry run: nothing was sent or saved" in result.stdout
    assert "[dry run] would make 2 Stripe writes; 1 created" in result.stdout
    assert "would send Stripe create_product (new product): name='Pro'" in result.stdout
    assert "would send Stripe create_price (new price): product_id='(new product)'" in result.stdout
    assert "would set plan pro stripe_price_id: None -> (new price)" in result.stdout
    assert "would record an audit entry for plan:pro" in result.stdout


def test_sync_dry_run_json_is_only_json(
    billing: Billing, db_env: Database, sandbox: Sandbox, stripe_requests: StripeRequests
) -> None:
    add(billing)
    result = billing("plans", "sync", "--dry-run", "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["dry_run"] is True
    assert [w["operation"] for w in report["plans"][0]["stripe_writes"]] == [
        "create_product",
        "create_price",
    ]
    assert stripe_requests.posts == []


def test_price_change_and_archive_stale_through_the_cli(
    billing: Billing, db_env: Database, sandbox: Sandbox
) -> None:
    add(billing, "old")
    add(billing, "pro")
    billing("plans", "sync")
    assert billing("plans", "update", "pro", "--amount", "39.00").exit_code == 0
    assert billing("plans", "deactivate", "old").exit_code == 0
    states = {r["slug"]: r["state"] for r in billing.json("plans", "list")}
    assert states == {"old": "stale", "pro": "drifted"}
    report = billing.json("plans", "sync", "--archive-stale")
    assert {p["slug"]: p["action"] for p in report["plans"]} == {
        "old": "archived",
        "pro": "updated",
    }
    states = {r["slug"]: r["state"] for r in billing.json("plans", "list")}
    assert states == {"old": "archived", "pro": "in sync"}


def test_plans_list_table(billing: Billing, db_env: Database, sandbox: Sandbox) -> None:
    add(billing)
    result = billing("plans", "list")
    assert result.exit_code == 0, result.stderr
    assert "missing: no Product or Price" in result.stdout


def test_sync_without_stripe_key_is_one_line_exit_1(billing: Billing, db_env: Database) -> None:
    add(billing)
    result = billing("plans", "sync")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: STRIPE_SECRET_KEY is not set")
    assert len(result.stderr.splitlines()) == 1


def test_stripe_unreachable_is_one_line_exit_1(
    billing: Billing, db_env: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a loopback port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_unreachable")
    monkeypatch.setenv("STRIPE_API_BASE", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("STRIPE_MAX_NETWORK_RETRIES", "0")
    add(billing)
    snapshot = table_snapshot(db_env)
    result = billing("plans", "sync")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert len(result.stderr.splitlines()) == 1
    after = table_snapshot(db_env)
    # the outage is counted for `billing check` (its read failed); nothing else was written
    counted = after.pop("stripe_api_error")
    assert [(row[2], row[3]) for row in counted] == [("'products.list'", "'StripeUnreachable'")]
    snapshot.pop("stripe_api_error")
    assert after == snapshot


def test_progress_bar_goes_to_a_terminal_stderr_never_stdout(
    billing: Billing, db_env: Database, sandbox: Sandbox
) -> None:
    import io

    from rich.console import Console

    from billing_cli.cli import render

    add(billing)
    terminal = io.StringIO()
    render._stderr = Console(file=terminal, force_terminal=True, width=100)
    result = billing("plans", "sync", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["summary"]["created"] == 1  # stdout is only the JSON
    assert "synced pro" in terminal.getvalue()
