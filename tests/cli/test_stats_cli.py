"""``billing stats`` and ``billing check`` as an operator runs them: output and exit codes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from billing_cli.models import utcnow
from billing_cli.repository import Database
from billing_cli.services.observe import counters as observe
from tests.cli.conftest import Billing
from tests.services.test_stats import ledger_row


def test_stats_prints_a_table_and_chart_per_metric_and_json_gives_the_series(
    billing: Billing, db_env: Database
) -> None:
    now = utcnow()
    for n in range(1, 21):
        ledger_row(db_env, now - timedelta(days=1), ms=float(n))
    ledger_row(db_env, now, ms=5.0, type="invoice.payment_failed")

    data = billing.json("stats", "--since", "3d")
    processing = data["metrics"]["webhook_processing"]
    assert processing["total"]["events"] == 21
    assert [row["events"] for row in processing["series"]] == [0, 0, 20, 1]
    assert data["metrics"]["payments"]["total"]["invoices_failed"] == 1
    assert set(data["metrics"]) == {
        "subscription_creation",
        "payments",
        "webhook_processing",
        "failed_payments",
        "suspensions",
        "rejected_deliveries",
        "stripe_errors",
    }

    human = billing("stats", "--since", "3d")
    assert human.exit_code == 0, human.stderr
    for title in ("subscription creation", "payments", "webhook processing", "suspensions"):
        assert title in human.stdout
    assert "█" in human.stdout  # the bars of the p95 chart
    weekly = billing.json("stats", "--since", "30d", "--by", "week")
    assert all(row["period"] for row in weekly["metrics"]["payments"]["series"])


def test_check_exits_0_when_clear_and_3_with_one_line_per_firing_rule(
    billing: Billing, db_env: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear = billing("check")
    assert (clear.exit_code, clear.stdout) == (0, "all clear: 6 rules checked\n")

    for _ in range(3):
        observe.record_stripe_error(db_env, operation="payment.create", error_class="RateLimited")
    ledger_row(db_env, utcnow(), status="failed")
    monkeypatch.setenv("BILLING_ALERT_STRIPE_ERRORS", "2")
    firing = billing("check")
    assert firing.exit_code == 3
    assert firing.stdout.splitlines() == [
        "FIRING stripe_errors: 3 Stripe API errors in the last hour (threshold 2)",
        "FIRING failed_events: 1 webhook event left failed in the ledger (threshold 0; "
        "`billing webhooks retry-failed`)",
    ]
    data = billing("check", "--json")
    assert data.exit_code == 3
    import json

    rules = {r["rule"]: r for r in json.loads(data.stdout)["rules"]}
    assert (rules["stripe_errors"]["figure"], rules["stripe_errors"]["threshold"]) == (3, 2)
    assert not rules["dead_endpoint"]["fired"]


def test_check_says_so_when_a_threshold_setting_is_wrong(
    billing: Billing, db_env: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BILLING_ALERT_PAYMENT_FAILURE_RATE", "20%")
    result = billing("check")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: BILLING_ALERT_PAYMENT_FAILURE_RATE must be a number")
