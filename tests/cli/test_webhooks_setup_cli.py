"""``billing webhooks setup`` and ``endpoints`` through the real CLI, against the sandbox."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from billing_cli.gateway import Gateway
from billing_cli.repository import Database
from billing_cli.services.webhooks.setup import default_event_types
from tests.cli.conftest import Billing
from tests.conftest import StripeRequests
from tests.factories import table_snapshot

pytestmark = pytest.mark.sandbox

URL = "http://127.0.0.1:9/webhooks/stripe/"  # nothing listens: deliveries fail, harmlessly
_SECRET = re.compile(r"whsec_[0-9a-f]{48}")


@pytest.fixture
def ready(db_env: Database, sandbox: object) -> Database:
    return db_env


def _endpoints(billing: Billing) -> list[dict[str, object]]:
    return list(billing.json("webhooks", "endpoints"))


def _audit_targets(billing: Billing) -> list[str]:
    return [entry["target"] for entry in billing.json("audit", "list")]


def test_setup_creates_the_endpoint_then_updates_it_without_a_second_one(
    billing: Billing, ready: Database, gateway: Gateway
) -> None:
    created = billing.json("webhooks", "setup", URL)
    assert created["action"] == "create"
    assert created["endpoint"]["enabled_events"] == list(default_event_types())
    assert {"invoice.paid", "customer.subscription.deleted"} <= set(created["events_added"])
    assert created["endpoint"]["api_version"] == gateway.pinned_api_version()
    endpoint_id = created["endpoint"]["id"]

    updated = billing.json(
        "webhooks", "setup", URL, "--events", "default", "--events", "product.updated"
    )
    assert updated["action"] == "update"
    assert updated["events_added"] == ["product.updated"] and updated["events_removed"] == []
    assert "secret" not in updated

    listed = _endpoints(billing)
    assert [e["id"] for e in listed] == [endpoint_id]
    assert "product.updated" in listed[0]["enabled_events"]
    assert _audit_targets(billing) == [f"webhook_endpoint:{endpoint_id}"] * 2


def test_a_rerun_with_nothing_to_change_sends_no_write_and_audits_nothing(
    billing: Billing, ready: Database, stripe_requests: StripeRequests
) -> None:
    billing.json("webhooks", "setup", URL)
    stripe_requests.sent.clear()
    again = billing.json("webhooks", "setup", URL)
    assert again["action"] == "none" and again["changed"] is False
    assert stripe_requests.writes == []
    assert len(_audit_targets(billing)) == 1


def test_a_disabled_endpoint_is_enabled_again(
    billing: Billing, ready: Database, gateway: Gateway
) -> None:
    endpoint_id = billing.json("webhooks", "setup", URL)["endpoint"]["id"]
    gateway.update_webhook_endpoint(
        endpoint_id, enabled_events=default_event_types(), disabled=True, idempotency_key="t1"
    )
    again = billing.json("webhooks", "setup", URL)
    assert again["action"] == "update" and again["endpoint"]["status"] == "enabled"
    assert "enabled it again" in again["message"]


def test_dry_run_shows_the_event_type_diff_and_writes_nothing(
    billing: Billing, ready: Database, stripe_requests: StripeRequests
) -> None:
    billing.json(
        "webhooks",
        "setup",
        URL,
        "--events",
        "customer.created",
        "--events",
        "invoice.paid",
        "--yes",
    )
    before = table_snapshot(ready)
    endpoints_before = _endpoints(billing)
    stripe_requests.sent.clear()

    result = billing("webhooks", "setup", URL, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "[dry run] updated webhook endpoint" in result.stdout
    assert "would send Stripe update_webhook_endpoint" in result.stdout
    for missing in set(default_event_types()) - {"customer.created", "invoice.paid"}:
        assert re.search(rf"\+\s+│\s+{re.escape(missing)}", result.stdout), missing
    assert stripe_requests.writes == []
    assert table_snapshot(ready) == before
    assert _endpoints(billing) == endpoints_before


def test_dry_run_of_a_creation_creates_nothing_and_shows_no_secret(
    billing: Billing, ready: Database, stripe_requests: StripeRequests, tmp_path: Path
) -> None:
    env = tmp_path / "dry.env"
    result = billing.json("webhooks", "setup", URL, "--dry-run", "--write-env", str(env))
    assert result["dry_run"] is True and result["action"] == "create"
    assert [w["operation"] for w in result["stripe_writes"]] == ["create_webhook_endpoint"]
    assert "secret" not in result and not env.exists()
    assert stripe_requests.writes == []
    assert _endpoints(billing) == [] and _audit_targets(billing) == []


def _everything_but_stdout(result_stderr: str, log: Path, db: Database) -> str:
    return result_stderr + log.read_text() + repr(table_snapshot(db))


def test_the_secret_is_printed_once_on_stdout_and_nowhere_else(
    billing: Billing, ready: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "billing.log"
    monkeypatch.setenv("BILLING_LOG_FILE", str(log))
    result = billing("--verbose", "webhooks", "setup", URL)
    assert result.exit_code == 0, result.stderr
    printed = _SECRET.findall(result.stdout)
    assert len(printed) == 1
    assert "only once" in result.stderr and "STRIPE_WEBHOOK_SECRET" in result.stderr
    assert "webhook_endpoints.create" in log.read_text()  # the call is logged, not its answer
    assert printed[0] not in _everything_but_stdout(result.stderr, log, ready)
    assert printed[0] not in billing("webhooks", "endpoints").stdout


def test_write_env_puts_the_secret_in_the_file_and_nowhere_else(
    billing: Billing, ready: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "billing.log"
    monkeypatch.setenv("BILLING_LOG_FILE", str(log))
    env = tmp_path / "new.env"
    result = billing("--verbose", "webhooks", "setup", URL, "--write-env", str(env), "--json")
    assert result.exit_code == 0, result.stderr
    values = dict(line.split("=", 1) for line in env.read_text().splitlines())
    secret = values["STRIPE_WEBHOOK_SECRET"]
    assert _SECRET.fullmatch(secret) and values["BILLING_WEBHOOK_URL"] == URL
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert json.loads(result.stdout)["env_file"] == str(env)
    assert secret not in result.stdout
    assert secret not in _everything_but_stdout(result.stderr, log, ready)


def test_write_env_replaces_old_values_and_keeps_the_rest(
    billing: Billing, ready: Database, tmp_path: Path
) -> None:
    env = tmp_path / "existing.env"
    env.write_text("# mine\nSTRIPE_WEBHOOK_SECRET=whsec_old\nexport OTHER=1\n")
    result = billing("webhooks", "setup", URL, "--write-env", str(env))
    assert result.exit_code == 0, result.stderr
    lines = env.read_text().splitlines()
    assert lines[0] == "# mine" and lines[2] == "export OTHER=1"
    assert _SECRET.fullmatch(lines[1].removeprefix("STRIPE_WEBHOOK_SECRET="))
    assert lines[3] == f"BILLING_WEBHOOK_URL={URL}"


@pytest.mark.parametrize(
    "events", [("all", "default"), ("not-a-type",)], ids=["all-with-more", "bad-type"]
)
def test_bad_event_choices_are_usage_errors(
    billing: Billing, ready: Database, events: tuple[str, ...]
) -> None:
    args = [arg for event in events for arg in ("--events", event)]
    result = billing("webhooks", "setup", URL, *args)
    assert result.exit_code == 2 and result.stderr.startswith("Error: --events")
    assert _endpoints(billing) == []


def test_endpoints_lists_missing_handled_types(billing: Billing, ready: Database) -> None:
    billing.json("webhooks", "setup", URL, "--events", "customer.created", "--yes")
    (listed,) = _endpoints(billing)
    assert "invoice.paid" in listed["missing_handled_events"]
    assert listed["api_version_matches"] is True


def test_a_change_made_again_after_it_was_undone_is_applied_again(
    billing: Billing, ready: Database
) -> None:
    fewer = ("--events", "customer.created", "--yes")
    billing.json("webhooks", "setup", URL)
    for _ in range(2):  # the same transition twice: Stripe must not answer from a stale key
        assert billing.json("webhooks", "setup", URL, *fewer)["action"] == "update"
        assert _endpoints(billing)[0]["enabled_events"] == ["customer.created"]
        assert billing.json("webhooks", "setup", URL)["action"] == "update"
        assert _endpoints(billing)[0]["enabled_events"] == list(default_event_types())
