"""``billing subs migrate``: a plan's subscriptions on older prices moved, against the sandbox.

Each test builds the situation the issue describes: tenants subscribed to ``starter`` at 10.00,
then the plan's price changed to 12.00 (a new Stripe Price; existing subscriptions keep the old).
"""

from __future__ import annotations

import pytest
import stripe

from billing_cli.repository import Database
from billing_cli.services import audit
from stripe_sandbox import Sandbox
from tests.conftest import StripeRequests
from tests.factories import add_synced_plan, add_tenant, table_snapshot
from tests.faults import Fault, FaultProxy

from .conftest import Billing
from .test_interrupted_writes import stripe_client  # noqa: F401  (fixture)
from .test_killed_writes import kill_when_blocked, start

pytestmark = pytest.mark.sandbox

TENANTS = ("acme", "bolt", "cora")
MIGRATE = ("subs", "migrate", "--plan", "starter")


@pytest.fixture
def repriced(db_env: Database, sandbox: Sandbox, billing: Billing) -> Database:
    """Three tenants on starter's old price, one on its new price, one canceled on the old."""
    from billing_cli.config import Settings
    from billing_cli.gateway import make_gateway

    gateway = make_gateway(
        Settings(stripe_secret_key=sandbox.secret_key, stripe_api_base=sandbox.api_base)
    )
    add_synced_plan(db_env, gateway, "starter", amount=1000)
    for slug in (*TENANTS, "gone", "newb"):
        add_tenant(db_env, slug)
    for slug in (*TENANTS, "gone"):
        _subscribe(billing, slug)
    assert billing("subs", "cancel", "gone", "--now").exit_code == 0
    assert billing("plans", "update", "starter", "--amount", "12.00").exit_code == 0
    assert billing("plans", "sync").exit_code == 0
    _subscribe(billing, "newb")
    return db_env


def _subscribe(billing: Billing, slug: str) -> None:
    result = billing(
        "subs", "create", slug, "--plan", "starter", "--payment-method", "pm_card_visa"
    )
    assert result.exit_code == 0, result.stderr


def prices_by_tenant(client: stripe.StripeClient) -> dict[str, list[tuple[str, int]]]:
    """Stripe's truth: each tenant's subscriptions as (status, unit amount)."""
    found: dict[str, list[tuple[str, int]]] = {}
    for sub in client.v1.subscriptions.list({"status": "all", "limit": 100}).data:
        tenant = sub.metadata.to_dict().get("tenant", "?")
        amount = int(sub["items"].data[0].price.unit_amount)
        found.setdefault(tenant, []).append((sub.status, amount))
    return found


def migrations_audited(db: Database) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in audit.list_entries(db, tenant_slug=None, since=None, limit=1000):
        if entry["outcome"].startswith("price ") and not entry["dry_run"]:
            slug = entry["target"].removeprefix("subscription:")
            counts[slug] = counts.get(slug, 0) + 1
    return counts


def test_dry_run_previews_every_tenant_and_writes_nothing(
    billing: Billing, repriced: Database, stripe_requests: StripeRequests
) -> None:
    before = table_snapshot(repriced)
    stripe_requests.sent.clear()
    report = billing.json(*MIGRATE, "--dry-run")
    assert [(t["tenant"], t["outcome"]) for t in report["tenants"]] == [
        (slug, "would move") for slug in TENANTS
    ]
    first = report["tenants"][0]
    assert (first["old_amount"], first["new_amount"]) == ("10.00 USD", "12.00 USD")
    assert first["invoice_preview"]["currency"] == "usd"
    assert report["monthly_revenue_before"] == "30.00 USD"
    assert report["monthly_revenue_after"] == "36.00 USD"
    assert len(report["stripe_writes"]) == 3
    assert [p for p in stripe_requests.posts if "create_preview" not in p] == []
    assert table_snapshot(repriced) == before
    people = billing(*MIGRATE, "--dry-run")
    assert "would move 3, skipped 0, failed 0" in people.stdout
    assert "30.00 USD -> 36.00 USD" in people.stdout


def test_moves_each_live_tenant_once_and_a_rerun_moves_nobody(
    billing: Billing,
    repriced: Database,
    stripe_client: stripe.StripeClient,  # noqa: F811
    stripe_requests: StripeRequests,
) -> None:
    stripe_requests.sent.clear()
    report = billing.json(*MIGRATE)
    assert report["moved"] == 3 and report["failed"] == 0
    writes = [p for p in stripe_requests.posts if p.startswith("/v1/subscriptions/")]
    assert len(writes) == 3  # one write per tenant
    lists = [p for m, p in stripe_requests.sent if m == "GET" and p == "/v1/subscriptions"]
    assert len(lists) == 1  # one older price, one page
    truth = prices_by_tenant(stripe_client)
    assert all(truth[slug] == [("active", 1200)] for slug in (*TENANTS, "newb"))
    assert truth["gone"] == [("canceled", 1000)]  # a canceled subscription is never touched
    assert migrations_audited(repriced) == dict.fromkeys(TENANTS, 1)
    listed = {r["tenant"]: r["plan"] for r in billing.json("subs", "list")}
    assert listed["acme"] == "starter"

    stripe_requests.sent.clear()
    again = billing.json(*MIGRATE)
    assert (again["moved"], again["failed"], again["tenants"]) == (0, 0, [])
    assert stripe_requests.writes == []
    assert migrations_audited(repriced) == dict.fromkeys(TENANTS, 1)


def test_tenant_and_limit_choose_who_moves(
    billing: Billing,
    repriced: Database,
    stripe_client: stripe.StripeClient,  # noqa: F811
) -> None:
    only = billing.json(*MIGRATE, "--tenant", "bolt")
    assert [t["tenant"] for t in only["tenants"]] == ["bolt"]
    first = billing.json(*MIGRATE, "--limit", "1")
    assert [t["tenant"] for t in first["tenants"]] == ["acme"]
    amounts = {k: v[0][1] for k, v in prices_by_tenant(stripe_client).items()}
    assert (amounts["acme"], amounts["bolt"], amounts["cora"]) == (1200, 1200, 1000)
    again = billing.json(*MIGRATE, "--tenant", "bolt", "--tenant", "newb")
    assert [(t["tenant"], t["outcome"]) for t in again["tenants"]] == [
        ("bolt", "skipped"),  # already moved
        ("newb", "skipped"),  # subscribed on the new price
    ]


def test_a_manual_hold_stays_after_the_move(
    billing: Billing,
    repriced: Database,
    stripe_client: stripe.StripeClient,  # noqa: F811
) -> None:
    assert billing("tenants", "suspend", "bolt", "--reason", "abuse").exit_code == 0
    assert billing.json(*MIGRATE)["moved"] == 3
    shown = {t["slug"]: t for t in billing.json("tenants", "list")}
    assert shown["bolt"]["status"] == "suspended"
    assert shown["bolt"]["suspended_by"] == "manual"
    assert prices_by_tenant(stripe_client)["bolt"] == [("active", 1200)]


def test_period_end_sends_no_proration(
    billing: Billing, repriced: Database, stripe_requests: StripeRequests
) -> None:
    report = billing.json(*MIGRATE, "--at", "period-end", "--dry-run")
    assert report["proration"] == "none"
    assert {w["params"]["proration_behavior"] for w in report["stripe_writes"]} == {"none"}
    assert all(t["invoice_preview"]["proration_amount"] == 0 for t in report["tenants"])


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (("--at", "period-end", "--proration", "always_invoice"), 2, "--at period-end"),
        (("--limit", "0"), 2, "--limit"),
        (("--rate", "500"), 2, "--rate"),
        (("--tenant", "nobody"), 1, "nobody"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    billing: Billing, repriced: Database, args: tuple[str, ...], code: int, text: str
) -> None:
    before = table_snapshot(repriced)
    result = billing(*MIGRATE, *args)
    assert result.exit_code == code
    assert text in result.stderr and "Traceback" not in result.stderr
    assert table_snapshot(repriced) == before


def test_an_unknown_plan_is_refused(billing: Billing, repriced: Database) -> None:
    result = billing("subs", "migrate", "--plan", "nope")
    assert result.exit_code != 0 and "no plan 'nope'" in result.stderr


# -- interrupted runs ---------------------------------------------------------------------------


def sub_of(db: Database, slug: str) -> str:
    import sqlalchemy as sa

    with db.connect() as connection:
        return str(
            connection.execute(
                sa.text(
                    "select s.stripe_subscription_id from tenant_subscription s "
                    "join tenant t on t.id = s.tenant_id where t.slug = :slug"
                ),
                {"slug": slug},
            ).scalar_one()
        )


def test_a_lost_answer_fails_that_tenant_and_the_rerun_finishes_it_once(
    billing: Billing,
    repriced: Database,
    proxy: FaultProxy,
    stripe_client: stripe.StripeClient,  # noqa: F811
) -> None:
    path = f"/v1/subscriptions/{sub_of(repriced, 'bolt')}"
    proxy.arm(Fault("status", "after", "POST", path + "$", status=500, times=10))
    first = billing(*MIGRATE)
    assert first.exit_code == 1
    assert "moved 2, skipped 0, failed 1" in first.stdout
    assert "failed bolt:" in first.stdout
    assert prices_by_tenant(stripe_client)["bolt"] == [("active", 1200)]  # Stripe acted
    proxy.clear()
    proxy.forwarded.clear()
    second = billing.json(*MIGRATE)
    assert [(t["tenant"], t["outcome"], t["old_amount"]) for t in second["tenants"]] == [
        ("bolt", "moved", "10.00 USD")  # the price it was moved from, as the first run recorded
    ]
    assert [p for m, p in proxy.forwarded if m == "POST"] == []  # finished, not sent again
    assert migrations_audited(repriced) == dict.fromkeys(TENANTS, 1)


def test_killed_mid_run_then_rerun_moves_every_tenant_once(
    billing: Billing,
    repriced: Database,
    proxy: FaultProxy,
    stripe_client: stripe.StripeClient,  # noqa: F811
) -> None:
    path = f"/v1/subscriptions/{sub_of(repriced, 'bolt')}"
    proxy.arm(Fault("hang", "after", "POST", path + "$", hang_seconds=60))
    kill_when_blocked(start(*MIGRATE), proxy)
    assert prices_by_tenant(stripe_client)["bolt"] == [("active", 1200)]
    again = billing.json(*MIGRATE)
    outcomes = {t["tenant"]: t["outcome"] for t in again["tenants"]}
    assert outcomes == {"bolt": "moved", "cora": "moved"}  # acme was moved before the kill
    assert migrations_audited(repriced) == dict.fromkeys(TENANTS, 1)
    assert all(
        v == [("active", 1200)] for k, v in prices_by_tenant(stripe_client).items() if k in TENANTS
    )


def test_an_incomplete_subscription_is_skipped_not_moved(
    billing: Billing,
    repriced: Database,
    stripe_client: stripe.StripeClient,  # noqa: F811
) -> None:
    add_tenant(repriced, "dud")
    assert billing("plans", "update", "starter", "--amount", "10.00").exit_code == 0
    assert billing("plans", "sync").exit_code == 0  # back to 10.00 for dud's subscription
    failing = ("--payment-method", "pm_card_chargeCustomerFail")
    assert billing("subs", "create", "dud", "--plan", "starter", *failing).exit_code == 1
    assert billing("plans", "update", "starter", "--amount", "12.00").exit_code == 0
    assert billing("plans", "sync").exit_code == 0
    report = billing.json(*MIGRATE, "--tenant", "dud", "--tenant", "acme")
    lines = {t["tenant"]: (t["outcome"], t["message"]) for t in report["tenants"]}
    assert lines["dud"] == ("skipped", "not live (incomplete)")
    assert lines["acme"][0] == "moved"
    assert prices_by_tenant(stripe_client)["dud"] == [("incomplete", 1000)]


def test_a_429_is_retried_and_the_tenant_moves(
    billing: Billing,
    repriced: Database,
    proxy: FaultProxy,
    stripe_client: stripe.StripeClient,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = f"/v1/subscriptions/{sub_of(repriced, 'bolt')}"
    limited = Fault("status", "before", "POST", path + "$", 429, {"Retry-After": "0"}, times=2)
    proxy.arm(limited)
    monkeypatch.setenv("STRIPE_MAX_NETWORK_RETRIES", "3")  # the sandbox fixture turns them off
    report = billing.json(*MIGRATE)
    assert (report["moved"], report["failed"]) == (3, 0)
    assert proxy.writes_to(path + "$") == 1  # the two 429s never reached Stripe
    assert prices_by_tenant(stripe_client)["bolt"] == [("active", 1200)]
    assert migrations_audited(repriced) == dict.fromkeys(TENANTS, 1)
