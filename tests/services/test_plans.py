"""Plan rows (add, update, retire) and ``plans list``'s states against the sandbox."""

from __future__ import annotations

import pytest

from billing_cli.errors import Conflict, NotFound, UsageError
from billing_cli.gateway import Gateway
from billing_cli.repository import Database
from billing_cli.services import audit
from billing_cli.services.catalog import plans
from stripe_sandbox import Sandbox
from tests.conftest import StripeRequests
from tests.factories import invocation, row_counts, table_snapshot
from tests.services.test_plan_sync import add_plan, sync, wipe_ids


def test_add_stores_minor_units_and_audits(db: Database) -> None:
    change = plans.add_plan(
        db,
        invocation=invocation(),
        slug="pro",
        name=" Pro ",
        amount="29.50",
        currency="USD",
        interval="year",
        interval_count=1,
        trial_days=14,
    )
    assert change.message.startswith("added plan pro (29.50 USD per year)")
    [row] = plans.list_plans(db, None)
    assert (row["name"], row["amount"], row["currency"], row["trial_days"]) == (
        "Pro",
        2950,
        "usd",
        14,
    )
    assert row["state"] == "not checked"
    [entry] = audit.list_entries(db, tenant_slug=None, since=None, limit=5)
    assert (entry["target"], entry["outcome"], entry["before"]) == ("plan:pro", "created", None)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("slug", "Pro Plan", "invalid slug"),
        ("amount", "abc", "amount must be a plain decimal number"),
        ("amount", "-1", "greater than zero"),
        ("amount", "29.001", "at most 2 decimals"),
        ("currency", "dollars", "three-letter ISO code"),
        ("interval", "week", "--interval must be month or year"),
        ("name", "  ", "--name must not be empty"),
        ("interval_count", 0, "--interval-count must be 1-36"),
        ("trial_days", -1, "--trial-days must be"),
    ],
)
def test_bad_input_is_a_usage_error_and_writes_nothing(
    db: Database, field: str, value: object, message: str
) -> None:
    arguments: dict[str, object] = {
        "slug": "pro",
        "name": "Pro",
        "amount": "29.00",
        "currency": "usd",
        "interval": "month",
    }
    arguments[field] = value
    with pytest.raises(UsageError, match=message):
        plans.add_plan(db, invocation=invocation(), **arguments)  # type: ignore[arg-type]
    assert row_counts(db)["subscription_plan"] == 0
    assert row_counts(db)["audit_entry"] == 0


def test_duplicate_slug_is_a_conflict(db: Database) -> None:
    add_plan(db, "pro")
    with pytest.raises(Conflict, match="already exists"):
        add_plan(db, "pro")


def test_dry_run_add_writes_nothing(db: Database) -> None:
    snapshot = table_snapshot(db)
    change = plans.add_plan(
        db,
        invocation=invocation(dry_run=True),
        slug="pro",
        name="Pro",
        amount="29",
        currency="usd",
        interval="month",
    )
    assert change.dry_run and change.message.startswith("would add plan pro")
    assert table_snapshot(db) == snapshot


def test_update_changes_fields_and_audits_before_after(db: Database) -> None:
    add_plan(db, "pro", amount="29.00")
    change = plans.update_plan(db, invocation=invocation(), slug="pro", amount="39", name="Pro+")
    assert change.changed
    assert change.before is not None and change.after is not None
    assert (change.before["amount"], change.after["amount"]) == (2900, 3900)
    assert change.after["name"] == "Pro+"
    entry = audit.list_entries(db, tenant_slug=None, since=None, limit=1)[0]
    assert entry["outcome"] == "updated" and entry["before"]["amount"] == 2900


def test_update_with_same_values_changes_nothing(db: Database) -> None:
    add_plan(db, "pro", amount="29.00")
    snapshot = table_snapshot(db)
    change = plans.update_plan(db, invocation=invocation(), slug="pro", amount="29")
    assert not change.changed and "already has these values" in change.message
    assert table_snapshot(db) == snapshot


def test_update_refuses_nothing_unknown_and_bare_currency(db: Database) -> None:
    add_plan(db, "pro")
    with pytest.raises(UsageError, match="nothing to change"):
        plans.update_plan(db, invocation=invocation(), slug="pro")
    with pytest.raises(NotFound, match="no plan 'ghost'"):
        plans.update_plan(db, invocation=invocation(), slug="ghost", name="X")
    snapshot = table_snapshot(db)
    with pytest.raises(UsageError, match="--currency needs --amount"):
        plans.update_plan(db, invocation=invocation(), slug="pro", currency="eur")
    plans.update_plan(db, invocation=invocation(), slug="pro", currency="jpy", amount="3000")
    assert plans.list_plans(db, None)[0]["price"] == "3,000 JPY"
    assert table_snapshot(db) != snapshot


def test_deactivate_and_activate(db: Database) -> None:
    add_plan(db, "pro")
    change = plans.set_plan_active(db, invocation=invocation(), slug="pro", active=False)
    assert change.changed and "--archive-stale" in change.message
    again = plans.set_plan_active(db, invocation=invocation(), slug="pro", active=False)
    assert not again.changed and again.message == "plan pro is already inactive"
    plans.set_plan_active(db, invocation=invocation(), slug="pro", active=True)
    assert plans.list_plans(db, None)[0]["active"] is True


def _states(db: Database, gateway: Gateway) -> dict[str, tuple[str, list[str]]]:
    return {
        row["slug"]: (row["state"], row["differences"]) for row in plans.list_plans(db, gateway)
    }


def test_list_states_beside_stripe(
    db: Database, gateway: Gateway, stripe_requests: StripeRequests
) -> None:
    for slug in ("synced", "pricey", "renamed", "restored", "retired"):
        add_plan(db, slug, amount="10.00")
    sync(db, gateway)
    add_plan(db, "new")
    plans.update_plan(db, invocation=invocation(), slug="pricey", amount="12.50")
    plans.update_plan(db, invocation=invocation(), slug="renamed", name="Renamed Plan")
    wipe_ids(db, "restored")
    plans.set_plan_active(db, invocation=invocation(), slug="retired", active=False)
    stripe_requests.sent.clear()
    states = _states(db, gateway)
    assert stripe_requests.writes == []
    assert {method for method, _ in stripe_requests.sent} == {"GET"}
    assert len(stripe_requests.sent) == 3  # list calls only, not one per plan
    assert states["synced"] == ("in sync", [])
    assert states["new"] == ("missing", ["no Product or Price"])
    assert states["pricey"] == ("drifted", ["amount 10.00 USD in Stripe, 12.50 USD here"])
    assert states["renamed"] == ("drifted", ["name 'Renamed' in Stripe, 'Renamed Plan' here"])
    assert states["restored"] == (
        "not synced",
        ["Stripe objects found but their ids are not stored"],
    )
    assert states["retired"][0] == "stale"


def test_list_after_sync_is_all_in_sync_or_archived(db: Database, gateway: Gateway) -> None:
    add_plan(db, "pro")
    add_plan(db, "old")
    plans.set_plan_active(db, invocation=invocation(), slug="old", active=False)
    sync(db, gateway, archive_stale=True)
    states = _states(db, gateway)
    assert states == {"old": ("inactive", []), "pro": ("in sync", [])}
    plans.set_plan_active(db, invocation=invocation(), slug="pro", active=False)
    sync(db, gateway, archive_stale=True)
    assert _states(db, gateway)["pro"] == ("archived", [])


def test_list_reports_stored_ids_missing_from_stripe(
    db: Database, gateway: Gateway, sandbox: Sandbox
) -> None:
    add_plan(db, "pro")
    sync(db, gateway)
    row = plans.list_plans(db, gateway)[0]
    sandbox.reset()  # another account, or a wiped sandbox: none of the stored objects exist
    [missing] = plans.list_plans(db, gateway)
    assert missing["state"] == "missing"
    assert missing["differences"] == [
        f"{row['stripe_product_id']}, {row['stripe_price_id']} not found in Stripe"
    ]
