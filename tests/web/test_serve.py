"""``billing webhooks serve`` as an operator runs it: a real process, its settings, its signals,
and the sandbox's own signed webhooks arriving while the CLI subscribes a tenant."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
import typer
from typer.testing import CliRunner

from billing_cli.cli import main as cli_main
from billing_cli.repository import Database
from billing_cli.services.observe.counters import REJECTION_REASONS
from billing_cli.services.tenants import rules as tenants
from tests import events
from tests.cli.conftest import Billing
from tests.factories import add_synced_plan, add_tenant
from tests.signing import signed_delivery
from tests.web import ROOT, SECRET, SERVE_SCRIPT, ServeProcess, deliver, reply, wait_until

if TYPE_CHECKING:
    from billing_cli.gateway import Gateway
    from stripe_sandbox import Sandbox


@pytest.fixture
def billing() -> Billing:
    return Billing()


def serve_app() -> typer.Typer:
    """The real root app (``billing webhooks serve`` is registered there)."""
    return cli_main.app


def _env(db: Database) -> dict[str, str]:
    return {
        "BILLING_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "STRIPE_WEBHOOK_SECRET": SECRET,
    }


# -- refusals, in process ---------------------------------------------------------------------


def test_serve_refuses_to_start_without_a_webhook_secret(db_env: Database) -> None:
    result = CliRunner().invoke(serve_app(), ["webhooks", "serve", "--port", "0"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: STRIPE_WEBHOOK_SECRET is not set;")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "secret",
    ["sk_test_0123456789abcdefghijkl", "whsec_", "whsec_ok_0123456789abcdef,rk_test_0123456789"],
    ids=["an api key", "only the prefix", "the second of two"],
)
def test_serve_refuses_a_secret_not_of_the_whsec_form_in_one_line_without_showing_it(
    db_env: Database, monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", secret)
    result = CliRunner().invoke(serve_app(), ["webhooks", "serve", "--port", "0"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: STRIPE_WEBHOOK_SECRET: ")
    assert "not a signing secret of the form whsec_..." in result.stderr
    assert result.stderr.count("\n") == 1
    for part in secret.split(","):
        assert part.removeprefix("whsec_") not in result.stderr or part == "whsec_"


def test_serve_refuses_a_database_that_is_not_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("BILLING_DATABASE_URL", f"sqlite:///{tmp_path / 'absent.db'}")
    result = CliRunner().invoke(serve_app(), ["webhooks", "serve", "--port", "0"])
    assert result.exit_code == 1
    assert "run `billing db upgrade`" in result.stderr
    assert SECRET not in result.stderr


def test_serve_help_imports_neither_the_server_nor_stripe_nor_sqlalchemy() -> None:
    probe = SERVE_SCRIPT.replace(
        'app(prog_name="billing")',
        "try:\n    app(prog_name='billing')\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('starlette', 'uvicorn', 'stripe', 'sqlalchemy')"
        " if m in sys.modules)\n"
        "print('HEAVY=' + ','.join(heavy), file=sys.stderr)",
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, "webhooks", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert "--port" in result.stdout
    assert "HEAVY=\n" in result.stderr, result.stderr


# -- the process ------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT"])
def test_serve_answers_then_stops_cleanly_on_a_signal(db: Database, how: str) -> None:
    with ServeProcess(_env(db)) as server:
        assert requests.get(server.url + "/healthz", timeout=10).status_code == 200
        ok = deliver(server.url, events.event("charge.refunded", {"id": "ch_1"}))
        assert (ok.status_code, reply(ok)["status"]) == (200, "ignored")
        assert server.proc is not None
        server.proc.send_signal(getattr(signal, how))
        exit_code = server.proc.wait(timeout=10)

        assert exit_code == 0, server.stderr()
        assert server.stderr().splitlines()[-1] == f"stopped ({how})"
        with pytest.raises(requests.ConnectionError):
            requests.get(server.url + "/healthz", timeout=2)


def test_serve_with_several_workers_shares_the_port_and_stops_cleanly(db: Database) -> None:
    with ServeProcess(_env(db), "--workers", "2") as server:
        assert "2 worker processes" in server.stderr().splitlines()[0]
        wait_until(lambda: _healthy(server.url), timeout=30, what="the workers to answer /healthz")
        for n in range(20):
            response = deliver(server.url, events.event("charge.refunded", {"id": f"ch_{n}"}))
            assert (response.status_code, reply(response)["status"]) == (200, "ignored")
        assert server.terminate(timeout=20) == 0, server.stderr()
        assert server.stderr().splitlines()[-1] == "stopped (SIGTERM)"
    assert len(_ledger_types(db)) == 20


def _scraped(url: str) -> dict[str, float]:
    """One scrape of /metrics: each sample's value by name and labels."""
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(url + "/metrics", timeout=10).text
    return {
        sample.name + str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _total(scrape: dict[str, float], name: str) -> float:
    return sum(v for k, v in scrape.items() if k.startswith(name + "["))


def test_with_three_workers_every_scrape_counts_the_deliveries_of_all_of_them(
    db: Database,
) -> None:
    """M deliveries spread over three workers (concurrent, a new connection each); whichever
    worker answers a scrape, it reports all M, and the refusals of all the workers."""
    deliveries, refusals = 60, 9
    with ServeProcess(_env(db), "--workers", "3") as server:
        wait_until(lambda: _healthy(server.url), timeout=30, what="the workers to answer /healthz")

        def send(n: int) -> int:
            event = events.event("charge.refunded", {"id": f"ch_{n}"})
            secret = SECRET if n < deliveries else "whsec_someone_else_0123456789"
            return deliver(server.url, event, secret=secret).status_code

        with ThreadPoolExecutor(max_workers=12) as pool:
            codes = list(pool.map(send, range(deliveries + refusals)))
        assert codes == [200] * deliveries + [400] * refusals
        for _ in range(8):  # each scrape on a new connection: any worker may answer it
            scrape = _scraped(server.url)
            assert _total(scrape, "billing_webhook_deliveries_total") == deliveries
            assert scrape["billing_webhook_rejections_total[('reason', 'bad_signature')]"] == 9
            assert _total(scrape, "billing_webhook_processing_seconds_count") == deliveries
            assert _total(scrape, "billing_webhook_in_flight") <= 1  # the scrape is not counted
            rejection_series = [k for k in scrape if k.startswith("billing_webhook_rejections_")]
            assert len(rejection_series) == len(REJECTION_REASONS)  # one per reason, bounded
        assert server.terminate(timeout=20) == 0, server.stderr()
    assert len(_ledger_types(db)) == deliveries


def _workers(server: ServeProcess) -> list[int]:
    """The pids of the worker processes uvicorn spawned under the serve process."""
    assert server.proc is not None
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text()
    return [
        int(pid)
        for pid in children.split()
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def test_a_worker_killed_and_replaced_keeps_its_counts_in_every_scrape(db: Database) -> None:
    with ServeProcess(_env(db), "--workers", "2") as server:
        wait_until(lambda: _healthy(server.url), timeout=30, what="the workers to answer /healthz")
        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = list(
                pool.map(
                    lambda n: (
                        deliver(
                            server.url, events.event("charge.refunded", {"id": f"ch_{n}"})
                        ).status_code
                    ),
                    range(30),
                )
            )
        assert codes == [200] * 30
        before = wait_until(
            lambda: len(_workers(server)) == 2 and _workers(server), timeout=10, what="two workers"
        )
        os.kill(before[0], signal.SIGKILL)
        wait_until(
            lambda: before[0] not in _workers(server) and len(_workers(server)) == 2,
            timeout=30,
            what="uvicorn to replace the killed worker",
        )
        wait_until(lambda: _healthy(server.url), timeout=30, what="the workers to answer again")
        for _ in range(6):
            scrape = _scraped(server.url)
            assert _total(scrape, "billing_webhook_deliveries_total") == 30
            assert _total(scrape, "billing_webhook_in_flight") <= 1
        assert server.terminate(timeout=20) == 0, server.stderr()


def _healthy(url: str) -> bool:
    try:
        return requests.get(url + "/healthz", timeout=2).status_code == 200
    except (requests.ConnectionError, requests.Timeout):  # a worker still starting
        return False


def test_serve_during_a_secret_roll_accepts_either_secret_and_no_other(db: Database) -> None:
    rolled = "whsec_rolled_9876543210zyxwvutsrqpon"
    env = {**_env(db), "STRIPE_WEBHOOK_SECRET": f"{SECRET}, {rolled}"}
    with ServeProcess(env) as server:
        for n, signer in enumerate((SECRET, rolled, "whsec_other_0123456789abcdef")):
            event = events.event("charge.refunded", {"id": f"ch_{n}"})
            response = deliver(server.url, event, secret=signer)
            assert response.status_code == (400 if n == 2 else 200)
        assert rolled not in server.stderr()
        assert server.terminate() == 0
    assert len(_ledger_types(db)) == 2


def test_serve_announces_where_it_listens_without_showing_secrets(db: Database) -> None:
    with ServeProcess(_env(db)) as server:
        first = server.stderr().splitlines()[0]
        assert first.startswith(f"listening on {server.url}/webhooks/stripe/ (database ")
        assert SECRET not in server.stderr()
        assert server.terminate() == 0


def test_serve_takes_its_path_and_body_cap_from_the_command_line(db: Database) -> None:
    with ServeProcess(_env(db), "--path", "/hooks/stripe", "--max-body-kib", "1") as server:
        small = events.event("charge.refunded", {"id": "ch_1"})
        body = events.event("charge.refunded", {"id": "ch_2", "padding": "x" * 2048})
        for event, expected in ((small, 200), (body, 413)):
            data, headers = signed_delivery(event, SECRET)
            response = requests.post(
                server.url + "/hooks/stripe", data=data, headers=headers, timeout=10
            )
            assert response.status_code == expected
        assert server.terminate() == 0


# -- end to end: the sandbox's webhooks to the running endpoint --------------------------------


def _use_card(sandbox: Sandbox, subscription_id: str, customer_id: str, card: str) -> None:
    """Switch the subscription to another test card (Stripe's dashboard or portal would)."""
    import stripe

    client = stripe.StripeClient(
        sandbox.secret_key, base_addresses={"api": sandbox.api_base}, max_network_retries=0
    )
    method = client.v1.payment_methods.attach(card, {"customer": customer_id})
    client.v1.subscriptions.update(subscription_id, {"default_payment_method": method.id})


def _next_second() -> None:
    """Wait for the next wall-clock second.

    Event ``created`` times have one-second resolution and the engine orders events of one
    subscription by them; in real life a renewal comes a month after the payment before it, in
    the sandbox within the same second, where the order of two events is a tie to break."""
    now = time.time()
    time.sleep(math.ceil(now) - now + 0.01)


def _ledger_types(db: Database) -> list[tuple[str, str]]:
    import sqlalchemy as sa

    with db.connect() as connection:
        rows = connection.execute(sa.text("SELECT type, status FROM webhook_event ORDER BY id"))
        return [(str(t), str(s)) for t, s in rows]


@pytest.mark.sandbox
def test_the_sandbox_webhooks_keep_the_database_in_step_while_the_cli_subscribes(
    db_env: Database, sandbox: Sandbox, gateway: Gateway, billing: Billing
) -> None:
    db = db_env
    add_tenant(db, "acme")
    add_synced_plan(db, gateway, "basic", amount=2000)  # what `plans sync` makes
    with ServeProcess(_env(db)) as server:
        sandbox.register_webhook(f"{server.url}/webhooks/stripe/", SECRET)

        created = billing(
            "subs", "create", "acme", "--plan", "basic", "--payment-method", "pm_card_visa"
        )
        assert created.exit_code == 0, created.stderr

        def subscription() -> dict[str, Any]:
            row = tenants.show_tenant(db, slug="acme").subscription
            assert row is not None
            return row

        def delivered(event_type: str, count: int = 1) -> bool:
            return _ledger_types(db).count((event_type, "processed")) >= count

        wait_until(lambda: delivered("invoice.payment_succeeded"), timeout=15, what="payment")
        sub = subscription()
        assert sub["status"] == "active"
        sub_id, customer_id = sub["stripe_subscription_id"], sub["stripe_customer_id"]

        _use_card(sandbox, sub_id, customer_id, "pm_card_chargeCustomerFail")
        _next_second()
        for attempt in (1, 2, 3):
            sandbox.renew(sub_id)
            wait_until(
                lambda n=attempt: delivered("invoice.payment_failed", n),
                timeout=15,
                what=f"failed payment {attempt}",
            )

        def suspended() -> bool:
            tenant = tenants.show_tenant(db, slug="acme").tenant
            return tenant["status"] == "suspended" and tenant["suspended_by"] == "billing"

        wait_until(suspended, timeout=15, what="the tenant to be suspended by billing")
        sub = subscription()
        assert (sub["status"], sub["failed_payment_attempts"]) == ("past_due", 3)

        # Back to a good card: the next collection pays and the webhook reactivates the tenant.
        _use_card(sandbox, sub_id, customer_id, "pm_card_visa")
        _next_second()
        sandbox.renew(sub_id)
        wait_until(
            lambda: tenants.show_tenant(db, slug="acme").tenant["status"] == "active",
            timeout=15,
            what="the tenant to be reactivated",
        )
        sub = subscription()
        assert (sub["status"], sub["failed_payment_attempts"]) == ("active", 0)
        assert all(status != "failed" for _, status in _ledger_types(db))
        assert server.terminate() == 0


def test_serve_reports_a_port_in_use_in_one_line(
    db_env: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(serve_app(), ["webhooks", "serve", "--port", str(port)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot listen on 127.0.0.1:{port}: ")
    assert result.stderr.count("\n") == 1
