"""``billing tenants`` and ``billing audit`` as an operator uses them."""

from __future__ import annotations

import json
from pathlib import Path

from billing_cli.repository import Database
from tests.cli.conftest import Billing
from tests.factories import row_counts, table_snapshot


def test_add_list_show(billing: Billing, db_env: Database) -> None:
    added = billing("tenants", "add", "acme", "--name", "Acme", "--email", "ops@acme.test")
    assert added.exit_code == 0, added.stderr
    assert "added tenant acme" in added.stdout
    listed = billing.json("tenants", "list")
    assert [(t["slug"], t["status"]) for t in listed] == [("acme", "active")]
    shown = billing.json("tenants", "show", "acme")
    assert shown["tenant"]["email"] == "ops@acme.test"
    assert shown["audit"][0]["command"] == "tenants add"


def test_json_output_is_only_json(billing: Billing, db_env: Database) -> None:
    result = billing("tenants", "add", "acme", "--name", "Acme", "--email", "a@acme.test", "--json")
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["after"]["slug"] == "acme"
    assert payload["dry_run"] is False


def test_suspend_reactivate_cycle_with_audit(billing: Billing, db_env: Database) -> None:
    billing("tenants", "add", "acme", "--name", "Acme", "--email", "a@acme.test")
    result = billing("--operator", "alice", "tenants", "suspend", "acme", "--reason", "chargeback")
    assert result.exit_code == 0
    assert "suspended tenant acme: chargeback" in result.stdout
    again = billing("tenants", "suspend", "acme", "--reason", "again")
    assert again.exit_code == 0
    assert "already suspended (by manual: chargeback)" in again.stdout
    suspended = billing.json("tenants", "list", "--status", "suspended")
    assert [t["slug"] for t in suspended] == ["acme"]
    assert billing("tenants", "reactivate", "acme").exit_code == 0
    entries = billing.json("audit", "list", "--tenant", "acme")
    assert [(e["command"], e["operator"]) for e in entries][1] == ("tenants suspend", "alice")
    assert entries[1]["before"]["status"] == "active"
    assert entries[1]["after"]["status"] == "suspended"


def test_operator_from_environment(billing: Billing, db_env: Database, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BILLING_OPERATOR", "bob")
    billing("tenants", "add", "acme", "--name", "Acme", "--email", "a@acme.test")
    assert billing.json("audit", "list")[0]["operator"] == "bob"


def test_dry_runs_write_nothing(billing: Billing, db_env: Database) -> None:
    billing("tenants", "add", "acme", "--name", "Acme", "--email", "a@acme.test")
    before = table_snapshot(db_env)
    counts = row_counts(db_env)
    for args in (
        ("tenants", "add", "beta", "--name", "Beta", "--email", "b@beta.test"),
        ("tenants", "suspend", "acme", "--reason", "test"),
    ):
        result = billing(*args, "--dry-run")
        assert result.exit_code == 0, result.stderr
        assert result.stdout.startswith("[dry run] would ")
    assert table_snapshot(db_env) == before
    assert row_counts(db_env) == counts


def test_unknown_tenant_is_one_line_exit_1(billing: Billing, db_env: Database) -> None:
    result = billing("tenants", "show", "ghost")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == ("Error: no tenant 'ghost'; `billing tenants list` shows the tenants\n")


def test_bad_input_exits_2_and_changes_nothing(billing: Billing, db_env: Database) -> None:
    result = billing("tenants", "add", "Bad Slug", "--name", "X", "--email", "x@x.test")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: invalid slug 'Bad Slug'")
    assert len(result.stderr.strip().splitlines()) == 1
    assert row_counts(db_env)["tenant"] == 0
    missing_option = billing("tenants", "add", "acme")
    assert missing_option.exit_code == 2
    assert missing_option.stderr == (
        "Error: Missing option '--name'. (see `billing tenants add --help`)\n"
    )
    bad_choice = billing("tenants", "list", "--status", "sleeping")
    assert bad_choice.exit_code == 2
    assert bad_choice.stderr.startswith("Error: --status must be one of active, suspended")
    assert len(bad_choice.stderr.splitlines()) == 1
    unknown = billing("tenants", "evict", "acme")
    assert unknown.exit_code == 2
    assert unknown.stderr.startswith("Error: no command 'evict'; the commands are add, list, ")
    assert unknown.stderr.endswith("(see `billing tenants --help`)\n")
    assert len(unknown.stderr.splitlines()) == 1
    assert "Usage: billing tenants" in billing("tenants").stderr  # a bare group shows its help


def test_unmigrated_database_names_the_fix(billing: Billing) -> None:
    result = billing("tenants", "list")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: no database at sqlite:///{Path('billing.db').absolute()}; "
        "run `billing db upgrade` to create it\n"
    )


def test_db_upgrade_and_status(billing: Billing) -> None:
    first = billing.json("db", "upgrade")
    assert first["applied"][0] == "0001"
    assert first["applied"][-1] == first["revision"]
    assert len(first["applied"]) == len(set(first["applied"]))
    assert billing.json("db", "upgrade")["applied"] == []
    status = billing.json("db", "status")
    assert status["up_to_date"] is True


def test_unreachable_postgres_is_one_line(billing: Billing, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BILLING_DATABASE_URL", "postgresql+psycopg://x:pw@127.0.0.1:1/nope")
    result = billing("tenants", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: database postgresql+psycopg://x:***@127.0.0.1:1/nope")
    assert "pw@" not in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_config_masks_secrets(billing: Billing, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_51VerySecretValue0000a1b2")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_AnotherSecretValue99c3d4")
    shown = billing("config")
    assert shown.exit_code == 0
    assert "sk_test_…a1b2" in shown.stdout and "whsec_…c3d4" in shown.stdout
    assert "VerySecret" not in shown.stdout and "AnotherSecret" not in shown.stdout
    view = billing.json("config")
    assert view["stripe_check"] == "ok"


def test_live_key_outside_live_mode_is_flagged(billing: Billing, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_live_51VerySecretValue0000zzzz")
    result = billing("config", "--json")
    assert result.exit_code == 1  # as every command that calls Stripe would refuse it
    view = json.loads(result.stdout)
    assert view["stripe_check"].startswith("refusing a live Stripe key")
    assert "VerySecret" not in json.dumps(view)


def test_live_mode_requires_confirmation(billing: Billing, db_env: Database, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("STRIPE_LIVE_MODE", "True")
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_live_51VerySecretValue0000zzzz")
    refused = billing("tenants", "add", "acme", "--name", "A", "--email", "a@a.test")
    assert refused.exit_code == 1
    assert "pass --yes" in refused.stderr
    assert row_counts(db_env)["tenant"] == 0
    accepted = billing("tenants", "add", "acme", "--name", "A", "--email", "a@a.test", "--yes")
    assert accepted.exit_code == 0, accepted.stderr
    assert row_counts(db_env)["tenant"] == 1


def test_missing_env_file(billing: Billing) -> None:
    result = billing("--env-file", "nope.env", "config")
    assert result.exit_code == 1
    assert result.stderr == "Error: env file nope.env does not exist\n"


def test_a_manual_hold_over_a_billing_suspension_is_said_and_lifted(
    billing: Billing, db_env: Database
) -> None:
    from billing_cli.models import Invocation
    from billing_cli.services.tenants import rules as tenants

    billing("tenants", "add", "acme", "--name", "Acme", "--email", "a@acme.test")
    with db_env.transaction() as session:  # as the webhook engine suspends for billing
        tenant = tenants.require_tenant(session, "acme", for_update=True)
        tenants.suspend(
            session,
            tenant,
            reason="billing: subscription canceled",
            by="billing",
            invocation=Invocation(operator="webhook:evt_1", command="webhook"),
        )
    held = billing("tenants", "suspend", "acme", "--reason", "chargeback")
    assert held.exit_code == 0, held.stderr
    assert "held tenant acme by hand: chargeback" in held.stdout
    tenant = billing.json("tenants", "show", "acme")["tenant"]
    assert (tenant["suspended_by"], tenant["suspension_reason"]) == ("manual", "chargeback")
    back = billing("tenants", "reactivate", "acme")
    assert "reactivated tenant acme (lifted the manual hold: chargeback)" in back.stdout
