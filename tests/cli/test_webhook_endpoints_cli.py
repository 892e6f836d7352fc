"""``billing webhooks endpoints disable|enable|delete ID`` through the real CLI, against the
sandbox (``stripe_sandbox/webhook_endpoints.py``), and re-runs after faults injected between
stripe-python and the sandbox (``tests.faults``)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
import stripe

from billing_cli.repository import Database
from billing_cli.services import audit
from stripe_sandbox import Sandbox
from tests.cli.conftest import Billing
from tests.factories import table_snapshot
from tests.faults import Fault, FaultProxy

pytestmark = pytest.mark.sandbox

URL = "http://127.0.0.1:9/webhooks/stripe/"  # nothing listens: deliveries fail, harmlessly
RERUN_HINT = "re-run the same command to finish it safely"


@pytest.fixture
def client(sandbox: Sandbox) -> stripe.StripeClient:
    """The sandbox seen directly (past any proxy): what Stripe really holds."""
    return stripe.StripeClient(
        sandbox.secret_key, base_addresses={"api": sandbox.api_base}, max_network_retries=0
    )


@pytest.fixture
def endpoint_id(db_env: Database, client: stripe.StripeClient) -> str:
    made = client.v1.webhook_endpoints.create({"url": URL, "enabled_events": ["invoice.paid"]})
    return str(made.id)


def _interrupted(
    billing: Billing, proxy: FaultProxy, fault: Fault, action: str, endpoint_id: str
) -> None:
    """Run ``endpoints ACTION ID --yes`` with ``fault`` on every request that makes the change;
    the run must stop with the re-run hint."""
    method = "DELETE" if action == "delete" else "POST"
    path = f"/v1/webhook_endpoints/{endpoint_id}"
    proxy.arm(replace(fault, method=method, path_prefix=path, times=99))
    first = billing("webhooks", "endpoints", action, endpoint_id, "--yes")
    proxy.clear()
    assert first.exit_code == 1 and RERUN_HINT in first.stderr, first.stderr


def _status(client: stripe.StripeClient, endpoint_id: str) -> str | None:
    found = [e for e in client.v1.webhook_endpoints.list().data if e.id == endpoint_id]
    return str(found[0].status) if found else None


def _audited(db: Database) -> list[tuple[str, str]]:
    entries = audit.list_entries(db, tenant_slug=None, since=None, limit=100)
    return [(e["target"], e["outcome"]) for e in entries]


def _intents(db: Database) -> list[tuple[str, str]]:
    import sqlalchemy as sa

    with db.connect() as connection:
        rows = connection.execute(sa.text("SELECT operation, status FROM stripe_intent"))
        return sorted((str(o), str(s)) for o, s in rows)


@pytest.mark.parametrize(
    ("action", "then"), [("disable", "disabled"), ("delete", None)], ids=["disable", "delete"]
)
def test_it_asks_first_and_a_no_or_no_answer_changes_nothing(
    billing: Billing,
    db_env: Database,
    client: stripe.StripeClient,
    endpoint_id: str,
    action: str,
    then: str | None,
) -> None:
    before = table_snapshot(db_env)
    for answer in (None, "n\n"):
        refused = billing("webhooks", "endpoints", action, endpoint_id, input=answer)
        assert refused.exit_code == 1
        # the question on its line, then one line of error (never glued to the question)
        question, error = refused.stderr.strip().split("\n")
        assert question.endswith("[y/N]:") and error.startswith("Error: ")
        assert _status(client, endpoint_id) == "enabled"
    assert "pass --yes" in billing("webhooks", "endpoints", action, endpoint_id).stderr
    assert table_snapshot(db_env) == before

    done = billing("webhooks", "endpoints", action, endpoint_id, input="y\n")
    assert done.exit_code == 0, done.stderr
    assert done.stderr.startswith(f"{action} webhook endpoint {endpoint_id} (")  # asked
    assert _status(client, endpoint_id) == then
    ((target, outcome),) = _audited(db_env)
    assert target == f"webhook_endpoint:{endpoint_id}"
    assert outcome.startswith(f"{then or 'deleted'} webhook endpoint {endpoint_id} ({URL})")
    assert _intents(db_env) == [(f"webhook_endpoint.{action}", "succeeded")]


def test_disable_then_enable_with_yes_each_audited_and_a_repeat_is_a_no_op(
    billing: Billing, db_env: Database, client: stripe.StripeClient, endpoint_id: str
) -> None:
    disabled = billing.json("webhooks", "endpoints", "disable", endpoint_id, "--yes")
    assert (disabled["action"], disabled["after"]["status"]) == ("disable", "disabled")
    assert disabled["before"]["status"] == "enabled"
    assert _status(client, endpoint_id) == "disabled"

    again = billing.json("webhooks", "endpoints", "disable", endpoint_id, "--yes")
    assert (again["changed"], again["message"]) == (
        False,
        f"webhook endpoint {endpoint_id} is already disabled",
    )
    enabled = billing.json("webhooks", "endpoints", "enable", endpoint_id, "--yes")
    assert enabled["after"]["status"] == "enabled"
    assert _status(client, endpoint_id) == "enabled"
    assert [outcome.split(" ")[0] for _, outcome in _audited(db_env)] == ["enabled", "disabled"]
    listed = billing.json("webhooks", "endpoints")  # still the list without a subcommand
    assert [e["id"] for e in listed] == [endpoint_id]


@pytest.mark.parametrize("action", ["disable", "enable", "delete"])
def test_dry_run_shows_the_write_and_makes_none(
    billing: Billing,
    db_env: Database,
    client: stripe.StripeClient,
    endpoint_id: str,
    action: str,
) -> None:
    if action == "enable":
        client.v1.webhook_endpoints.update(endpoint_id, {"disabled": True})
    status = _status(client, endpoint_id)
    before = table_snapshot(db_env)
    result = billing("webhooks", "endpoints", action, endpoint_id, "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    preview = json.loads(result.stdout)
    assert preview["dry_run"] is True
    assert preview["message"].startswith(f"would {action} webhook endpoint {endpoint_id}")
    operation = "delete_webhook_endpoint" if action == "delete" else "set_webhook_endpoint_disabled"
    assert [w["operation"] for w in preview["stripe_writes"]] == [operation]
    assert _status(client, endpoint_id) == status
    assert table_snapshot(db_env) == before


def test_an_unknown_endpoint_is_one_line_and_writes_nothing(
    billing: Billing, db_env: Database, sandbox: Sandbox
) -> None:
    before = table_snapshot(db_env)
    result = billing("webhooks", "endpoints", "delete", "we_nope", "--yes")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: no webhook endpoint we_nope; `billing webhooks endpoints` lists them\n"
    )
    assert table_snapshot(db_env) == before


AFTER = [
    pytest.param(Fault("status", "after", "", "", status=500), id="500-after"),
    pytest.param(Fault("cut", "after", "", ""), id="cut-after"),
    pytest.param(Fault("hang", "after", "", "", hang_seconds=4), id="timeout-after"),
]


@pytest.mark.parametrize("fault", AFTER)  # Stripe acted; its answer was lost
@pytest.mark.parametrize(("action", "then"), [("disable", "disabled"), ("delete", None)])
def test_a_rerun_after_stripe_acted_finishes_without_acting_twice(
    billing: Billing,
    db_env: Database,
    client: stripe.StripeClient,
    endpoint_id: str,
    proxy: FaultProxy,
    fault: Fault,
    action: str,
    then: str | None,
) -> None:
    _interrupted(billing, proxy, fault, action, endpoint_id)
    assert _status(client, endpoint_id) == then  # Stripe did it
    assert _intents(db_env) == [(f"webhook_endpoint.{action}", "unknown")]
    assert _audited(db_env) == []

    method = "DELETE" if action == "delete" else "POST"
    path = f"/v1/webhook_endpoints/{endpoint_id}"
    sent = proxy.writes_to(path, method)
    second = billing.json("webhooks", "endpoints", action, endpoint_id, "--yes")
    assert "finished an interrupted run" in second["message"]
    assert proxy.writes_to(path, method) == sent  # not sent again
    assert _intents(db_env) == [(f"webhook_endpoint.{action}", "succeeded")]
    assert len(_audited(db_env)) == 1
    assert _status(client, endpoint_id) == then


def test_a_rerun_after_a_disable_that_never_reached_stripe_sends_it_once(
    billing: Billing,
    db_env: Database,
    client: stripe.StripeClient,
    endpoint_id: str,
    proxy: FaultProxy,
) -> None:
    _interrupted(
        billing, proxy, Fault("hang", "before", "", "", hang_seconds=4), "disable", endpoint_id
    )
    assert _status(client, endpoint_id) == "enabled"

    second: Any = billing.json("webhooks", "endpoints", "disable", endpoint_id, "--yes")
    assert second["after"]["status"] == "disabled"
    assert "interrupted" not in second["message"]
    assert _status(client, endpoint_id) == "disabled"
    assert _intents(db_env) == [("webhook_endpoint.disable", "succeeded")]


def test_intents_resume_finishes_an_interrupted_disable(
    billing: Billing,
    db_env: Database,
    client: stripe.StripeClient,
    endpoint_id: str,
    proxy: FaultProxy,
) -> None:
    _interrupted(
        billing, proxy, Fault("status", "after", "", "", status=500), "disable", endpoint_id
    )
    (open_intent,) = billing.json("intents", "list", "--open")
    resumed = billing("intents", "resume", open_intent["id"], "--yes")
    assert resumed.exit_code == 0, resumed.stderr
    assert "finished an interrupted run" in resumed.stdout
    assert _intents(db_env) == [("webhook_endpoint.disable", "succeeded")]
    assert _status(client, endpoint_id) == "disabled"
