"""``plans export`` / ``plans apply`` (plans as code) and ``plans remove`` / ``plans list``
housekeeping, through the real CLI; the sync step against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from billing_cli.models import TenantSubscription
from billing_cli.repository import Database
from billing_cli.repository import plans as plans_repo
from billing_cli.repository import tenants as tenants_repo
from stripe_sandbox import Sandbox
from tests.cli.conftest import Billing
from tests.conftest import StripeRequests
from tests.factories import add_tenant, table_snapshot

PLAN = """\
[[plan]]
slug = "{slug}"
name = "{name}"
amount = "{amount}"
currency = "usd"
interval = "month"
"""


def add(billing: Billing, slug: str, amount: str = "29.00", *extra: str) -> None:
    result = billing(
        "plans", "add", slug, "--name", slug.title(), "--amount", amount, "--currency", "usd",
        "--interval", "month", *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr


def plan_audits(billing: Billing) -> list[tuple[str, str]]:
    return [
        (e["target"], e["outcome"])
        for e in billing.json("audit", "list")
        if e["command"].startswith("plans apply")
    ]


def write(tmp_path: Path, text: str, name: str = "plans.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_applying_the_exported_file_changes_nothing_and_round_trips_every_field(
    billing: Billing, db_env: Database, tmp_path: Path
) -> None:
    add(billing, "pro", "29.00", "--trial-days", "14")
    add(billing, "seats", "4.50", "--per-seat", "--interval-count", "3")
    assert billing("plans", "deactivate", "seats").exit_code == 0
    path = tmp_path / "plans.toml"
    exported = billing("plans", "export", str(path))
    assert exported.exit_code == 0 and exported.stderr == f"wrote 2 plans to {path}\n"
    text = path.read_text()
    assert 'amount = "29.00"' in text and "trial_days = 14" in text and "per_seat = true" in text
    before = table_snapshot(db_env)
    for _ in range(2):
        result = billing("plans", "apply", str(path))
        assert result.exit_code == 0, result.stderr
        assert result.stdout == f"applied {path}: 0 added, 0 updated, 0 deactivated, 2 unchanged\n"
    assert table_snapshot(db_env) == before
    assert billing("plans", "export").stdout == text  # stdout without FILE


def test_export_refuses_to_overwrite_without_force(
    billing: Billing, db_env: Database, tmp_path: Path
) -> None:
    add(billing, "pro")
    path = write(tmp_path, "# my edits\n")
    refused = billing("plans", "export", str(path))
    assert (
        refused.exit_code == 2
        and refused.stderr == f"Error: {path} exists; pass --force to overwrite it\n"
    )
    assert path.read_text() == "# my edits\n"
    assert billing("plans", "export", str(path), "--force").exit_code == 0
    assert 'slug = "pro"' in path.read_text()


def test_edit_dry_run_then_apply_shows_before_after_audits_and_a_second_apply_is_a_no_op(
    billing: Billing, db_env: Database, tmp_path: Path
) -> None:
    add(billing, "pro")
    add(billing, "old", "5.00")
    text = billing("plans", "export").stdout.replace('amount = "29.00"', 'amount = "39.50"')
    text = text.replace('slug = "old"', 'slug = "basic"').replace('name = "Old"', 'name = "Basic"')
    path = write(tmp_path, text)
    before = table_snapshot(db_env)
    dry = billing("plans", "apply", str(path), "--dry-run", "--prune")
    assert dry.exit_code == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        f"[dry run] would apply {path}: 1 added, 1 updated, 1 deactivated, 0 unchanged",
        "  add basic: name Basic; price 5.00 USD; interval month; interval_count 1; "
        "trial_days 0; per_seat no; active yes",
        "  update pro: price 29.00 USD -> 39.50 USD",
        "  deactivate old: active yes -> no",
        "nothing was saved; without --dry-run, `billing plans sync` then updates Stripe",
    ]
    assert table_snapshot(db_env) == before
    kept = billing("plans", "apply", str(path))
    assert kept.exit_code == 0, kept.stderr
    assert "  not in the file, kept (--prune deactivates): old" in kept.stdout
    assert "run `billing plans sync` (or apply with --sync)" in kept.stdout
    pruned = billing.json("plans", "apply", str(path), "--prune")
    assert [(c["slug"], c["action"]) for c in pruned["changes"]] == [("old", "deactivate")]
    assert plan_audits(billing) == [
        ("plan:old", f"deactivated from {path}"),
        ("plan:pro", f"updated from {path}"),
        ("plan:basic", f"created from {path}"),
    ]
    again = billing.json("plans", "apply", str(path), "--prune")
    assert again["changed"] is False and again["unchanged"] == ["basic", "pro"]
    rows = {r["slug"]: r for r in billing.json("plans", "list", "--local")}
    assert (rows["pro"]["amount"], rows["old"]["active"], rows["basic"]["amount"]) == (
        3950,
        False,
        500,
    )


@pytest.mark.sandbox
def test_apply_with_sync_brings_stripe_in_line(
    billing: Billing, db_env: Database, sandbox: Sandbox, tmp_path: Path
) -> None:
    path = write(tmp_path, PLAN.format(slug="team", name="Team", amount="19.00"))
    result = billing("plans", "apply", str(path), "--sync")
    assert result.exit_code == 0, result.stderr
    assert "now syncing Stripe:" in result.stdout and "1 created" in result.stdout
    [row] = billing.json("plans", "list")
    assert (row["state"], row["stripe"]["price"]) == ("in sync", "19.00 USD")
    edited = path.read_text().replace("19.00", "24.00")
    path.write_text(edited)
    report = billing.json("plans", "apply", str(path), "--sync")
    assert report["changes"][0]["after"]["price"] == "24.00 USD"
    assert report["sync"]["plans"][0]["action"] == "updated"
    assert billing.json("plans", "list")[0]["stripe"]["price"] == "24.00 USD"


@pytest.mark.sandbox
def test_apply_sync_dry_run_sends_nothing(
    billing: Billing,
    db_env: Database,
    sandbox: Sandbox,
    tmp_path: Path,
    stripe_requests: StripeRequests,
) -> None:
    path = write(tmp_path, PLAN.format(slug="team", name="Team", amount="19.00"))
    before = table_snapshot(db_env)
    result = billing("plans", "apply", str(path), "--sync", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert stripe_requests.sent == [] and table_snapshot(db_env) == before


GOOD = PLAN.format(slug="pro", name="Pro", amount="29.00")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD + 'colour = "red"\n', "line 7: unknown key 'colour' in [[plan]]"),
        ('title = "x"\n' + GOOD, "line 1: unknown key 'title'; the file holds [[plan]] tables"),
        (GOOD + "\n" + GOOD, "line 9: duplicate slug 'pro' (first at line 2)"),
        (GOOD.replace("29.00", "29.001"), "line 4: USD takes at most 2 decimals; got '29.001'"),
        (GOOD.replace("29.00", "1e3"), "line 4: amount must be a plain decimal number"),
        (GOOD.replace('"usd"', '"xyz"'), "line 5: currency 'xyz' is not an ISO 4217 code"),
        (GOOD.replace('"Pro"', '"Pro\\u001b[31m"'), "line 3: name must not contain control"),
        (GOOD.replace('"pro"', '"Pro Plan"'), "line 2: invalid slug 'Pro Plan'"),
        (GOOD.replace('"month"', '"week"'), "line 6: interval must be month or year"),
        (GOOD + "trial_days = 900\n", "line 7: trial_days must be 0-730"),
        (GOOD + 'per_seat = "yes"\n', "line 7: per_seat must be true or false, not 'yes'"),
        (GOOD.replace('name = "Pro"\n', ""), "line 1: [[plan]] lacks name"),
        (GOOD.replace('"29.00"', '"29.00'), "line 4: not valid TOML"),
        (GOOD + 'name = "Again"\n', "line 7: not valid TOML: Cannot overwrite a value"),
    ],
)
def test_a_bad_file_is_one_line_naming_file_and_line_and_applies_nothing(
    billing: Billing, db_env: Database, tmp_path: Path, text: str, message: str
) -> None:
    add(billing, "basic", "9.00")
    path = write(tmp_path, text)
    before = table_snapshot(db_env)
    result = billing("plans", "apply", str(path), "--prune")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {path}, {message}"), result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert table_snapshot(db_env) == before


def test_an_empty_file_is_refused_rather_than_pruning_every_plan(
    billing: Billing, db_env: Database, tmp_path: Path
) -> None:
    add(billing, "pro")
    path = write(tmp_path, "# nothing here\n")
    before = table_snapshot(db_env)
    result = billing("plans", "apply", str(path), "--prune")
    assert result.exit_code == 2 and result.stderr == (
        f"Error: {path}: no [[plan]] tables; a plan file lists at least one plan\n"
    )
    assert table_snapshot(db_env) == before


def test_a_missing_file_is_one_line(billing: Billing, db_env: Database, tmp_path: Path) -> None:
    result = billing("plans", "apply", str(tmp_path / "nope.toml"))
    assert result.exit_code == 2
    assert (
        result.stderr == f"Error: cannot read {tmp_path / 'nope.toml'}: No such file or directory\n"
    )


def test_amount_may_be_a_toml_number(billing: Billing, db_env: Database, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        GOOD.replace('"29.00"', "19.9")
        + PLAN.format(slug="yen", name="Yen", amount="0")
        .replace('"0"', "500")
        .replace('"usd"', '"jpy"'),
    )
    assert billing("plans", "apply", str(path)).exit_code == 0
    rows = {r["slug"]: r["price"] for r in billing.json("plans", "list", "--local")}
    assert rows == {"pro": "19.90 USD", "yen": "500 JPY"}


def test_remove_deletes_a_never_synced_plan_and_its_dry_run_writes_nothing(
    billing: Billing, db_env: Database
) -> None:
    add(billing, "typo")
    before = table_snapshot(db_env)
    dry = billing("plans", "remove", "typo", "--dry-run")
    assert dry.exit_code == 0 and dry.stdout.startswith("[dry run] would remove plan typo")
    assert table_snapshot(db_env) == before
    done = billing.json("plans", "remove", "typo")
    assert (done["action"], done["before"]["slug"], done["after"]) == ("remove", "typo", None)
    assert billing.json("plans", "list", "--local") == []
    [entry] = [e for e in billing.json("audit", "list") if e["command"] == "plans remove"]
    assert (entry["target"], entry["outcome"]) == ("plan:typo", "removed")
    missing = billing("plans", "remove", "typo")
    assert missing.exit_code == 1 and missing.stderr.count("\n") == 1


@pytest.mark.sandbox
def test_remove_refuses_a_synced_plan(billing: Billing, db_env: Database, sandbox: Sandbox) -> None:
    add(billing, "pro")
    assert billing("plans", "sync").exit_code == 0
    before = table_snapshot(db_env)
    refused = billing("plans", "remove", "pro")
    assert refused.exit_code == 1
    assert "was synced to Stripe" in refused.stderr and "plans deactivate pro" in refused.stderr
    assert refused.stderr.count("\n") == 1 and table_snapshot(db_env) == before


def test_remove_refuses_a_plan_a_subscription_names(billing: Billing, db_env: Database) -> None:
    add(billing, "pro")
    add_tenant(db_env, "acme")
    with db_env.transaction() as session:
        plan = plans_repo.get_by_slug(session=session, slug="pro")
        tenant = tenants_repo.get_by_slug(session=session, slug="acme")
        assert plan is not None and tenant is not None and tenant.id is not None
        session.add(TenantSubscription(tenant_id=tenant.id, plan_id=plan.id, status="canceled"))
    before = table_snapshot(db_env)
    refused = billing("plans", "remove", "pro")
    assert refused.exit_code == 1 and "named by 1 subscription(s)" in refused.stderr
    assert table_snapshot(db_env) == before


def test_list_shows_trial_days_and_per_seat(billing: Billing, db_env: Database) -> None:
    add(billing, "pro", "29.00", "--trial-days", "14", "--per-seat")
    result = billing("plans", "list", "--local")
    assert result.exit_code == 0, result.stderr
    header = result.stdout.splitlines()
    assert any("trial" in line for line in header) and any("per seat" in line for line in header)
    [row] = [line for line in header if line.startswith("│ pro")]
    cells = [cell.strip() for cell in row.strip("│").split("│")]
    assert cells[4:6] == ["14", "yes"]
    assert json.loads(billing("plans", "list", "--local", "--json").stdout)[0]["trial_days"] == 14
