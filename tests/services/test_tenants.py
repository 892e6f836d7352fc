"""Tenant rules: suspensions record who made them, dry runs write nothing, failures roll back."""

from __future__ import annotations

import pytest

from billing_cli.errors import Conflict, DatabaseError, NotFound, UsageError
from billing_cli.repository import Database
from billing_cli.services.tenants import rules as tenants
from tests.factories import add_tenant, invocation, row_counts, table_snapshot


def test_add_and_show(db: Database) -> None:
    add_tenant(db, "acme", name="Acme Inc", email="ops@acme.test")
    detail = tenants.show_tenant(db, slug="acme")
    assert detail.tenant["name"] == "Acme Inc"
    assert detail.tenant["status"] == "active"
    assert detail.subscription is None
    assert [entry["outcome"] for entry in detail.audit] == ["created"]


def test_duplicate_slug_is_a_conflict(db: Database) -> None:
    add_tenant(db, "acme")
    with pytest.raises(Conflict, match="already exists"):
        add_tenant(db, "acme")


@pytest.mark.parametrize("slug", ["", "Acme", "-acme", "a b", "x" * 64])
def test_bad_slugs_are_usage_errors(db: Database, slug: str) -> None:
    with pytest.raises(UsageError, match="slug"):
        add_tenant(db, slug)
    assert row_counts(db)["tenant"] == 0


def test_manual_suspension_and_reactivation(db: Database) -> None:
    add_tenant(db, "acme")
    change = tenants.suspend_tenant(db, invocation=invocation(), slug="acme", reason="chargeback")
    assert change.changed and change.after is not None
    assert change.after["suspended_by"] == "manual"
    assert change.after["suspension_reason"] == "chargeback"
    again = tenants.suspend_tenant(db, invocation=invocation(), slug="acme", reason="again")
    assert not again.changed
    assert "already suspended" in again.message
    back = tenants.reactivate_tenant(db, invocation=invocation(), slug="acme")
    assert back.changed and back.after is not None and back.after["status"] == "active"
    assert not tenants.reactivate_tenant(db, invocation=invocation(), slug="acme").changed
    outcomes = [entry["outcome"] for entry in tenants.show_tenant(db, slug="acme").audit]
    assert outcomes == ["reactivated", "suspended (manual)", "created"]


def test_suspension_writes_notifications(db: Database) -> None:
    add_tenant(db, "acme")
    tenants.suspend_tenant(db, invocation=invocation(), slug="acme", reason="r")
    tenants.reactivate_tenant(db, invocation=invocation(), slug="acme")
    assert row_counts(db)["notification"] == 2


def test_unknown_tenant(db: Database) -> None:
    with pytest.raises(NotFound, match="no tenant 'ghost'"):
        tenants.suspend_tenant(db, invocation=invocation(), slug="ghost", reason="r")


@pytest.mark.parametrize(
    "command",
    [
        lambda db, inv: tenants.add_tenant(
            db, invocation=inv, slug="new", name="N", email="n@n.test"
        ),
        lambda db, inv: tenants.suspend_tenant(db, invocation=inv, slug="acme", reason="r"),
    ],
    ids=["add", "suspend"],
)
def test_dry_run_writes_nothing(db: Database, command) -> None:  # type: ignore[no-untyped-def]
    add_tenant(db, "acme")
    before = table_snapshot(db)
    change = command(db, invocation(dry_run=True))
    assert change.dry_run and change.changed
    assert change.message.startswith("would ")
    assert table_snapshot(db) == before


def test_dry_run_reactivation_writes_nothing(db: Database) -> None:
    add_tenant(db, "acme")
    tenants.suspend_tenant(db, invocation=invocation(), slug="acme", reason="r")
    before = table_snapshot(db)
    change = tenants.reactivate_tenant(db, invocation=invocation(dry_run=True), slug="acme")
    assert change.changed and change.after is not None and change.after["status"] == "active"
    assert table_snapshot(db) == before


def test_failed_audit_write_leaves_the_tenant_untouched(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state change and its audit entry commit together or not at all."""
    add_tenant(db, "acme")
    before = table_snapshot(db)

    def refuse(**_: object) -> None:
        raise DatabaseError("database refused the change: disk full")

    monkeypatch.setattr("billing_cli.repository.audit.add", refuse)
    with pytest.raises(DatabaseError, match="disk full"):
        tenants.suspend_tenant(db, invocation=invocation(), slug="acme", reason="r")
    assert table_snapshot(db) == before
