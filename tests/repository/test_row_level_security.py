"""``BILLING_DATABASE_ROLE`` on a PostgreSQL database that enforces row-level security.

The tool's tables get RLS with tenant policies keyed on a per-request setting
(``app.tenant_id``), as an application database would have them. The application's login user
is subject to them; the tool, connecting as that user, must ``SET ROLE`` to a role with
``BYPASSRLS``. With the role the webhook engine and the CLI work; without it they stop with one
clear line instead of seeing no rows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from billing_cli.errors import DatabaseError
from billing_cli.repository import Database, migrations
from billing_cli.services.webhooks import WebhookEngine
from tests import events as ev
from tests.cli.conftest import Billing
from tests.conftest import (
    POSTGRES_URL,
    _drop_postgres_schema,
    _fresh_postgres_schema,
    postgres_base_url,
)
from tests.factories import add_tenant
from tests.services.webhooks.conftest import PRICE_BASIC, add_plans, link_customer, state

pytestmark = pytest.mark.postgres

_TENANT_TABLES = {"tenant": "id", "tenant_subscription": "tenant_id", "notification": "tenant_id"}
_SHARED_TABLES = ("subscription_plan", "webhook_event", "audit_entry")
_CONTEXT = "current_setting('app.tenant_id', true)"


@dataclass(frozen=True)
class RlsDatabase:
    admin: Database  # the schema's owner (a superuser here): RLS does not apply to it
    login_url: str  # the application's login user, subject to RLS
    role: str  # granted to the login user, with BYPASSRLS


def _policies(connection: sa.Connection) -> None:
    """RLS on every table of the tool: tenant tables by tenant id, the shared ones only with a
    tenant context set (which the tool never sets)."""
    for table, column in _TENANT_TABLES.items():
        connection.execute(sa.text(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"))
        connection.execute(
            sa.text(
                f"CREATE POLICY tenant_isolation ON {table} "
                f"USING ({column} = NULLIF({_CONTEXT}, '')::int)"
            )
        )
    for table in _SHARED_TABLES:
        connection.execute(sa.text(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"))
        connection.execute(
            sa.text(
                f"CREATE POLICY tenant_context ON {table} "
                f"USING (NULLIF({_CONTEXT}, '') IS NOT NULL)"
            )
        )


@pytest.fixture
def rls() -> Iterator[RlsDatabase]:
    if not POSTGRES_URL:
        pytest.skip("BILLING_TEST_DATABASE_URL is not set (.ci/run sets it to a local PostgreSQL)")
    base_url = postgres_base_url()
    url, schema = _fresh_postgres_schema(base_url)
    suffix = uuid.uuid4().hex[:10]
    login, role = f"billing_login_{suffix}", f"billing_rls_{suffix}"
    admin = Database(url)
    migrations.upgrade(admin)
    with admin.engine.begin() as connection:
        # The README's grants, plus the login user's own privileges (the application's).
        connection.execute(sa.text(f"CREATE ROLE {login} LOGIN"))
        connection.execute(sa.text(f"CREATE ROLE {role} NOLOGIN BYPASSRLS"))
        connection.execute(sa.text(f"GRANT {role} TO {login}"))
        for grantee in (role, login):
            connection.execute(sa.text(f'GRANT USAGE ON SCHEMA "{schema}" TO {grantee}'))
            connection.execute(
                sa.text(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES "
                    f'IN SCHEMA "{schema}" TO {grantee}'
                )
            )
            connection.execute(
                sa.text(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "{schema}" TO {grantee}')
            )
        _policies(connection)
    login_url = sa.make_url(url).set(username=login, password=None)
    try:
        yield RlsDatabase(admin, login_url.render_as_string(hide_password=False), role)
    finally:
        admin.dispose()
        _drop_postgres_schema(base_url, schema)
        cleanup = sa.create_engine(base_url)
        with cleanup.begin() as connection:
            for name in (login, role):
                connection.execute(sa.text(f"DROP OWNED BY {name}"))
                connection.execute(sa.text(f"DROP ROLE {name}"))
        cleanup.dispose()


def _acme(db: Database) -> None:
    add_plans(db)
    add_tenant(db, "acme")
    link_customer(db, "acme", "cus_acme", "sub_acme")


def _canceled() -> dict[str, object]:
    return ev.subscription_event(
        "customer.subscription.deleted",
        subscription_id="sub_acme",
        customer_id="cus_acme",
        status="canceled",
        price_id=PRICE_BASIC,
    )


def test_the_policies_really_hide_rows_from_the_login_user(rls: RlsDatabase) -> None:
    _acme(rls.admin)
    bare = sa.create_engine(rls.login_url)
    with bare.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM tenant")).scalar() == 0
    bare.dispose()


def test_the_engine_works_with_the_role(rls: RlsDatabase) -> None:
    _acme(rls.admin)
    db = Database(rls.login_url, role=rls.role)
    outcome = WebhookEngine(db, live_mode=False, max_failed_attempts=3).process(
        _canceled(), source="endpoint"
    )
    db.dispose()
    assert outcome.status == "processed", outcome.reason
    tenant = state(rls.admin)["tenant"]
    assert tenant["status"] == "suspended" and tenant["suspended_by"] == "billing"


def test_the_engine_fails_with_one_clear_line_without_the_role(rls: RlsDatabase) -> None:
    _acme(rls.admin)
    db = Database(rls.login_url)
    engine = WebhookEngine(db, live_mode=False, max_failed_attempts=3)
    with pytest.raises(DatabaseError) as raised:
        engine.process(_canceled(), source="endpoint")
    db.dispose()
    message = str(raised.value)
    assert "row-level security is active on table" in message
    assert "BILLING_DATABASE_ROLE" in message and "\n" not in message
    assert state(rls.admin)["tenant"]["status"] == "active"


def test_a_role_the_login_user_lacks_is_named_in_one_line(rls: RlsDatabase) -> None:
    db = Database(rls.login_url, role="billing_nobody_has_this_role")
    with pytest.raises(DatabaseError, match=r"cannot SET ROLE billing_nobody_has_this_role"):
        migrations.check_ready(db)
    db.dispose()


def test_the_cli_works_with_the_role_and_fails_clearly_without(
    rls: RlsDatabase, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    billing = Billing()
    _acme(rls.admin)
    monkeypatch.setenv("BILLING_DATABASE_URL", rls.login_url)

    without = billing("tenants", "list")
    assert without.exit_code == 1
    assert without.stdout == ""
    lines = without.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: row-level security is active")

    monkeypatch.setenv("BILLING_DATABASE_ROLE", rls.role)
    assert [t["slug"] for t in billing.json("tenants", "list")] == ["acme"]
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(_canceled()) + "\n")
    replayed = billing("webhooks", "replay", "--from-file", str(events), "--json")
    assert replayed.exit_code == 0, replayed.stderr
    assert json.loads(replayed.stdout)["counts"]["processed"] == 1
    assert billing.json("tenants", "show", "acme")["tenant"]["status"] == "suspended"
