"""Issue 18, point 5: the doctor's next steps work (SQLite and PostgreSQL).

- an event Stripe could not deliver but a replay already put in the ledger is not undelivered;
- ``--url`` probes the endpoint's ``/healthz``, and a dead endpoint's old delivery is not ok;
- ``--tenant`` survives an unreadable ledger row;
- a tenant that owes money gets its open invoice named with the command that pays it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from billing_cli.errors import GatewayError
from billing_cli.gateway.support_types import InvoiceInfo
from billing_cli.repository import Database
from billing_cli.services.doctor import remote
from billing_cli.services.doctor.checklist import DoctorReport
from billing_cli.services.doctor.tenant import check_tenant
from billing_cli.services.webhooks import WebhookEngine
from tests import events as ev
from tests.services.test_doctor import _set_row, acme

__all__ = ["acme"]  # the linked tenant fixture of the doctor's tenant tests

COMMON = {"subscription_id": "sub_acme", "customer_id": "cus_acme"}


class FakeStripe:
    """The two reads the checks make, answering what a test says Stripe holds."""

    def __init__(
        self, events: list[dict[str, Any]] | None = None, invoices: list[InvoiceInfo] | None = None
    ) -> None:
        self.events = events or []
        self.invoices = invoices or []

    def __getattr__(self, name: str) -> Any:
        def unreachable(*_: Any, **__: Any) -> Any:
            raise GatewayError(f"{name}: not answered by this fake")

        return unreachable

    def list_events(self, **_: Any) -> list[dict[str, Any]]:
        return self.events

    def list_invoices(self, *, customer_id: str, status: str | None = None, limit: int = 20) -> Any:
        return [i for i in self.invoices if i.customer_id == customer_id and i.status == status]


def _checks(report: DoctorReport) -> dict[str, dict[str, Any]]:
    return {c.name: c.to_dict() for c in report.checks}


def test_an_event_a_replay_already_applied_is_not_undelivered(acme: Database) -> None:
    applied = ev.invoice_event("invoice.paid", attempt_count=1, paid=True, **COMMON)
    missing = ev.invoice_event("invoice.payment_failed", attempt_count=1, paid=False, **COMMON)
    WebhookEngine(acme, live_mode=False, max_failed_attempts=3).process(applied, source="replay")

    report = DoctorReport()
    remote.check_deliveries(report, acme, FakeStripe(events=[applied, missing]))  # type: ignore[arg-type]
    check = _checks(report)["undelivered events"]
    assert check["status"] == "warn"
    assert check["detail"] == "Stripe could not deliver 1 event in the last 72 hours"

    WebhookEngine(acme, live_mode=False, max_failed_attempts=3).process(missing, source="replay")
    report = DoctorReport()
    remote.check_deliveries(report, acme, FakeStripe(events=[applied, missing]))  # type: ignore[arg-type]
    check = _checks(report)["undelivered events"]
    assert check["status"] == "ok" and check["fix"] == ""
    assert "2 replayed into the ledger" in check["detail"]


@pytest.fixture
def healthz() -> Iterator[str]:
    """A stand-in for ``webhooks serve`` on 127.0.0.1 that answers /healthz."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/stripe/"
    server.shutdown()
    server.server_close()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_url_is_probed_and_a_dead_endpoints_last_delivery_is_not_ok(
    acme: Database, healthz: str
) -> None:
    event = ev.subscription_event(
        "customer.subscription.created", status="active", price_id="price_x", **COMMON
    )
    WebhookEngine(acme, live_mode=False, max_failed_attempts=3).process(event, source="endpoint")

    up = DoctorReport()
    assert remote.check_endpoint_health(up, healthz)
    remote.check_deliveries(up, acme, None, endpoint_up=True)
    assert _checks(up)["endpoint health"]["status"] == "ok"
    assert _checks(up)["last delivery"]["status"] == "ok"

    down = DoctorReport()
    dead = f"http://127.0.0.1:{_free_port()}/webhooks/stripe/"
    assert not remote.check_endpoint_health(down, dead)
    remote.check_deliveries(down, acme, None, endpoint_up=False)
    checks = _checks(down)
    assert checks["endpoint health"]["status"] == "fail"
    assert checks["endpoint health"]["detail"].startswith(f"{dead.split('/webhooks')[0]}/healthz")
    assert checks["last delivery"]["status"] == "warn"
    assert "does not answer now" in checks["last delivery"]["detail"]


def test_an_unreadable_ledger_row_does_not_crash_the_tenant_check(acme: Database) -> None:
    broken = ev.invoice_event(
        "invoice.payment_failed",
        subscription_id="sub_acme",
        customer_id="cus_someone_else",
        attempt_count=1,
        paid=False,
    )
    broken["data"]["object"]["attempt_count"] = "three"
    outcome = WebhookEngine(acme, live_mode=False, max_failed_attempts=3).process(
        broken, source="endpoint"
    )
    assert outcome.status == "failed"

    report = DoctorReport()
    check_tenant(report, acme, None, slug="acme", max_failed_attempts=3)
    assert {"tenant customer", "tenant events", "tenant suspension"} <= set(_checks(report))


def _invoice(invoice_id: str, *, attempts: int, day: int) -> InvoiceInfo:
    return InvoiceInfo(
        id=invoice_id,
        number=None,
        status="open",
        customer_id="cus_acme",
        subscription_id="sub_acme",
        currency="usd",
        amount_due=1050,
        amount_paid=0,
        amount_remaining=1050,
        attempt_count=attempts,
        next_payment_attempt=None,
        billing_reason="subscription_cycle",
        hosted_invoice_url=None,
        created=datetime(2026, 11, day, tzinfo=UTC),
        period_start=None,
        period_end=None,
    )


@pytest.mark.parametrize(
    ("attempts", "fix"),
    [
        (3, "billing payments recover acme --payment-method pm_..."),
        (0, "billing invoices pay in_old"),
    ],
)
def test_a_tenant_that_owes_gets_its_open_invoice_and_the_fixing_command(
    acme: Database, attempts: int, fix: str
) -> None:
    _set_row(acme, status="past_due", attempts=attempts)
    stripe = FakeStripe(
        invoices=[
            _invoice("in_new", attempts=0, day=20),
            _invoice("in_old", attempts=attempts, day=2),
        ]
    )
    report = DoctorReport()
    check_tenant(report, acme, stripe, slug="acme", max_failed_attempts=3)  # type: ignore[arg-type]
    check = _checks(report)["tenant open invoice"]
    assert check["status"] == "fail"
    assert check["detail"].startswith("in_old is open: 10.50 USD due, created 2026-11-02T00:00:00Z")
    assert "(2 open in all)" in check["detail"]
    assert check["fix"] == fix


def test_a_tenant_in_good_standing_gets_no_invoice_check(acme: Database) -> None:
    _set_row(acme, status="active", attempts=0)
    report = DoctorReport()
    check_tenant(report, acme, FakeStripe(), slug="acme", max_failed_attempts=3)  # type: ignore[arg-type]
    assert "tenant open invoice" not in _checks(report)
