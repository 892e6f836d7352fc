"""Finding and editing tenants: search, plan and status columns, update (here and in Stripe),
``--reason`` kept in the audit, and the typed-slug confirmation of ``tenants remove``."""

from __future__ import annotations

import pytest
import stripe

from billing_cli.gateway import Gateway
from billing_cli.repository import Database
from billing_cli.services import audit
from stripe_sandbox import Sandbox
from tests.conftest import StripeRequests
from tests.factories import add_synced_plan, add_tenant, row_counts

from .conftest import Billing


def arguments_of(db: Database, prefix: str) -> list[dict[str, object]]:
    entries = audit.list_entries(db, tenant_slug="acme", since=None, limit=100)
    return [e["arguments"] for e in entries if e["outcome"].startswith(prefix)]


def test_search_and_columns(billing: Billing, db_env: Database) -> None:
    add_tenant(db_env, "acme", name="Acme Corp", email="ap@acme.test")
    add_tenant(db_env, "globex", name="Globex 100%", email="billing@globex.test")
    assert [t["slug"] for t in billing.json("tenants", "list", "--search", "ACME")] == ["acme"]
    assert [t["slug"] for t in billing.json("tenants", "list", "--search", "globex.test")] == [
        "globex"
    ]
    assert [t["slug"] for t in billing.json("tenants", "list", "--search", "100%")] == ["globex"]
    assert billing.json("tenants", "list", "--search", "_") == []  # no SQL wildcards
    (acme, _globex) = billing.json("tenants", "list")
    assert (acme["plan"], acme["subscription_status"]) == (None, None)
    table = billing("tenants", "list", "--search", "nobody")
    assert table.exit_code == 0 and "no tenants match 'nobody'" in table.stderr


def test_update_without_a_customer_and_reactivate_reason(
    billing: Billing, db_env: Database
) -> None:
    add_tenant(db_env, "acme")
    dry = billing.json("tenants", "update", "acme", "--name", "Acme Ltd", "--dry-run")
    assert dry["dry_run"] and dry["stripe_writes"] == []
    assert billing.json("tenants", "show", "acme")["tenant"]["name"] == "Acme"
    done = billing.json(
        "tenants", "update", "acme", "--name", "Acme Ltd", "--email", "new@acme.test"
    )
    assert (done["after"]["name"], done["after"]["email"]) == ("Acme Ltd", "new@acme.test")
    same = billing.json("tenants", "update", "acme", "--name", "Acme Ltd")
    assert same["changed"] is False
    assert billing("tenants", "update", "acme").exit_code == 2
    assert billing("tenants", "update", "acme", "--email", "nope").exit_code == 2
    assert billing("tenants", "suspend", "acme", "--reason", "abuse").exit_code == 0
    assert billing("tenants", "reactivate", "acme", "--reason", "ticket 7").exit_code == 0
    assert arguments_of(db_env, "reactivated")[0]["reason"] == "ticket 7"


@pytest.mark.sandbox
def test_update_changes_the_stripe_customer_too(
    billing: Billing,
    db_env: Database,
    gateway: Gateway,
    sandbox: Sandbox,
    stripe_requests: StripeRequests,
) -> None:
    add_tenant(db_env, "acme")
    add_synced_plan(db_env, gateway, "starter", amount=1000)
    created = billing.json(
        "subs", "create", "acme", "--plan", "starter", "--payment-method", "pm_card_visa"
    )
    customer_id = created["after"]["stripe_customer_id"]
    (row,) = billing.json("tenants", "list")
    assert (row["plan"], row["subscription_status"]) == ("starter", "active")

    before = row_counts(db_env)
    stripe_requests.sent.clear()
    dry = billing.json("tenants", "update", "acme", "--email", "ap@acme.test", "--dry-run")
    assert stripe_requests.writes == [] and row_counts(db_env) == before
    assert [w["operation"] for w in dry["stripe_writes"]] == ["update_customer"]

    billing.json("tenants", "update", "acme", "--email", "ap@acme.test")
    client = stripe.StripeClient(sandbox.secret_key, base_addresses={"api": sandbox.api_base})
    assert client.v1.customers.retrieve(customer_id).email == "ap@acme.test"
    assert billing.json("tenants", "show", "acme")["tenant"]["email"] == "ap@acme.test"
    assert len(arguments_of(db_env, "updated email")) == 1

    cancel = billing("subs", "cancel", "acme", "--reason", "asked by phone")
    assert cancel.exit_code == 0, cancel.stderr
    assert arguments_of(db_env, "canceled")[0]["reason"] == "asked by phone"


@pytest.mark.sandbox
def test_remove_asks_for_the_slug(billing: Billing, db_env: Database, sandbox: Sandbox) -> None:
    add_tenant(db_env, "acme")
    wrong = billing("tenants", "remove", "acme", input="acne\n")
    assert wrong.exit_code == 1 and "not 'acme'" in wrong.stderr
    no_answer = billing("tenants", "remove", "acme")
    assert no_answer.exit_code == 1 and "--yes" in no_answer.stderr
    assert [t["slug"] for t in billing.json("tenants", "list")] == ["acme"]
    typed = billing("tenants", "remove", "acme", input="acme\n")
    assert typed.exit_code == 0, typed.stderr
    assert billing.json("tenants", "list") == []
    add_tenant(db_env, "acme")
    assert billing("tenants", "remove", "acme", "--yes").exit_code == 0


def test_show_works_without_stripe_and_says_why_the_card_is_unknown(
    billing: Billing, db_env: Database
) -> None:
    from billing_cli.models import TenantSubscription
    from billing_cli.repository import subscriptions as subscriptions_repo
    from billing_cli.services.tenants import rules as tenant_rules

    add_tenant(db_env, "acme")
    with db_env.transaction() as session:
        tenant = tenant_rules.require_tenant(session, "acme")
        assert tenant.id is not None
        subscriptions_repo.save(
            session=session,
            subscription=TenantSubscription(tenant_id=tenant.id, stripe_customer_id="cus_x"),
        )
    shown = billing.json("tenants", "show", "acme")  # no STRIPE_SECRET_KEY in this test
    assert shown["tenant"]["slug"] == "acme" and shown["default_card"] is None
    assert "STRIPE_SECRET_KEY" in shown["default_card_error"]
    table = billing("tenants", "show", "acme")
    assert table.exit_code == 0 and "default card: unknown" in table.stderr
