"""``billing doctor`` against planted faults: each is reported as a failure with its fix, and
the check passes once the fix is applied (the sandbox as Stripe, SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from billing_cli.gateway import Gateway
from billing_cli.repository import Database
from billing_cli.services.webhooks.setup import default_event_types
from tests.cli.conftest import Billing

pytestmark = pytest.mark.sandbox

URL = "http://127.0.0.1:9/webhooks/stripe/"


def doctor(billing: Billing, *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    """The exit code and each check by name."""
    import json

    result = billing("doctor", "--json", *args)
    assert result.stderr == "", result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is (result.exit_code == 0)
    return result.exit_code, {check["check"]: check for check in report["checks"]}


def run(billing: Billing, *args: str) -> None:
    result = billing(*args)
    assert result.exit_code == 0, result.stderr


@pytest.fixture
def healthy(db_env: Database, sandbox: object, billing: Billing) -> Database:
    """Migrated, and the endpoint set up with its secret and URL in ./.env (two commands)."""
    run(billing, "webhooks", "setup", URL, "--write-env", ".env")
    code, checks = doctor(billing)
    assert code == 0, checks
    return db_env


def test_a_healthy_setup_passes_and_prints_one_line_per_check(
    billing: Billing, healthy: Database
) -> None:
    result = billing("doctor")
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(doctor(billing)[1])
    assert all(line.split()[0] in ("ok", "WARN") for line in lines)
    assert any(line.startswith("ok   webhook events: subscribed to every") for line in lines)


def test_wrong_key(
    billing: Billing, healthy: Database, monkeypatch: pytest.MonkeyPatch, sandbox: Any
) -> None:
    monkeypatch.setenv("STRIPE_SECRET_KEY", "rk_test_" + "0" * 24)  # not the account's key
    code, checks = doctor(billing)
    assert code == 1
    assert checks["stripe"]["status"] == "fail"
    assert "did not accept the API key" in checks["stripe"]["detail"]
    assert "STRIPE_SECRET_KEY" in checks["stripe"]["fix"]
    result = billing("doctor")
    assert "FAIL stripe: Stripe did not accept the API key" in result.stdout
    assert "-> fix: check STRIPE_SECRET_KEY" in result.stdout

    monkeypatch.setenv("STRIPE_SECRET_KEY", sandbox.secret_key)
    code, checks = doctor(billing)
    assert code == 0 and checks["stripe"]["status"] == "ok"


def test_unmigrated_database(
    billing: Billing, database_url: str, sandbox: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BILLING_DATABASE_URL", database_url)
    code, checks = doctor(billing)
    assert code == 1
    failed = [c for c in checks.values() if c["status"] == "fail"]
    assert [c["check"] for c in failed] in (["database"], ["database schema"])
    assert failed[0]["fix"] == "run `billing db upgrade`"
    assert "ledger" not in checks  # the data checks wait for the schema

    run(billing, "db", "upgrade")
    code, checks = doctor(billing)
    assert code == 0
    assert checks["database"]["status"] == checks["database schema"]["status"] == "ok"


def test_missing_event_type_on_the_endpoint(billing: Billing, healthy: Database) -> None:
    fewer = [t for t in default_event_types() if t != "invoice.payment_failed"]
    run(billing, "webhooks", "setup", URL, "--yes", *[a for t in fewer for a in ("--events", t)])
    code, checks = doctor(billing)
    assert code == 1
    events = checks["webhook events"]
    assert events["status"] == "fail"
    assert events["detail"] == "1 handled type not subscribed: invoice.payment_failed"
    assert events["fix"] == f"billing webhooks setup {URL}"

    run(billing, *events["fix"].split()[1:])
    code, checks = doctor(billing)
    assert code == 0 and checks["webhook events"]["status"] == "ok"


def test_disabled_endpoint(billing: Billing, healthy: Database, gateway: Gateway) -> None:
    (endpoint,) = gateway.list_webhook_endpoints()
    gateway.update_webhook_endpoint(
        endpoint.id, enabled_events=endpoint.enabled_events, disabled=True, idempotency_key="t"
    )
    code, checks = doctor(billing, "--url", URL)
    assert code == 1
    assert checks["webhook endpoint"]["status"] == "fail"
    assert "is disabled" in checks["webhook endpoint"]["detail"]

    run(billing, "webhooks", "setup", URL)
    code, checks = doctor(billing, "--url", URL)
    assert checks["webhook endpoint"]["status"] == "ok"
    # nothing listens at URL: its /healthz probe fails (issue 18, point 5)
    assert code == 1 and checks["endpoint health"]["status"] == "fail"


def test_no_endpoint_for_the_url(billing: Billing, healthy: Database) -> None:
    other = "http://127.0.0.1:9/elsewhere/"
    code, checks = doctor(billing, "--url", other)
    assert code == 1
    assert checks["webhook endpoint"]["fix"] == f"billing webhooks setup {other} --write-env .env"


def _subscribed_tenant(billing: Billing) -> str:
    run(billing, "plans", "add", "pro", "--name", "Pro", "--amount", "10", "--currency", "usd",
        "--interval", "month")  # fmt: skip
    run(billing, "plans", "sync")
    run(billing, "tenants", "add", "acme", "--name", "Acme", "--email", "a@acme.test")
    run(billing, "subs", "create", "acme", "--plan", "pro", "--payment-method", "pm_card_visa")
    (row,) = billing.json("subs", "list")
    return str(row["stripe_subscription_id"])


def test_tenant_whose_subscription_drifted(
    billing: Billing, healthy: Database, gateway: Gateway
) -> None:
    subscription_id = _subscribed_tenant(billing)
    code, checks = doctor(billing, "--tenant", "acme")
    assert code == 0, checks
    assert checks["tenant subscription"]["status"] == "ok"
    assert checks["tenant suspension"]["detail"].startswith("active: the policy does not")

    # Stripe cancels it; the webhook never reaches this database (nothing listens at URL).
    gateway.cancel_subscription_now(subscription_id, idempotency_key="drift")
    code, checks = doctor(billing, "--tenant", "acme")
    assert code == 1
    drift = checks["tenant subscription"]
    assert drift["status"] == "fail"
    assert "status here 'active', Stripe 'canceled'" in drift["detail"]
    assert drift["fix"].startswith("`billing webhooks replay --since 72h`")

    run(billing, "webhooks", "replay", "--since", "72h")
    code, checks = doctor(billing, "--tenant", "acme")
    assert code == 0, checks
    assert checks["tenant subscription"]["status"] == "ok"
    assert checks["tenant suspension"]["detail"].startswith(
        "suspended, as the policy wants: billing: subscription canceled"
    )
    assert "customer.subscription.deleted processed" in checks["tenant events"]["detail"]


def test_unknown_tenant_fails(billing: Billing, healthy: Database) -> None:
    code, checks = doctor(billing, "--tenant", "nobody")
    assert code == 1 and checks["tenant"]["status"] == "fail"


def test_missing_key_and_bad_secret_are_configuration_failures(
    billing: Billing, db_env: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "not-a-secret")
    code, checks = doctor(billing)
    assert code == 1
    assert checks["stripe key"]["status"] == "fail"
    assert checks["webhook secret"]["status"] == "fail"
    assert "stripe" not in checks  # no key, no Stripe call


@pytest.mark.parametrize(
    ("secret", "status"),
    [
        ("whsec_old_0123456789abcdefgh", None),
        ("whsec_old_0123456789abcdefgh,whsec_new_0123456789abcdefgh", "warn"),
        ("whsec_old_0123456789abcdefgh,sk_test_0123456789abcdefgh", "fail"),
    ],
    ids=["one secret", "a roll", "a roll with an api key"],
)
def test_several_webhook_secrets_are_a_reminder_to_finish_the_roll(
    billing: Billing, db_env: Database, monkeypatch: pytest.MonkeyPatch, secret: str, status: str
) -> None:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", secret)
    _code, checks = doctor(billing)
    if status is None:
        assert "webhook secret roll" not in checks
        return
    check = checks["webhook secret roll"]
    assert check["status"] == status
    assert ("2 webhook secrets configured" in check["detail"]) == (status == "warn")
    assert "0123456789abcdefgh" not in json.dumps(checks)
