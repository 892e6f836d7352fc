"""Every list, show and change command at 60, 80, 100 and 140 columns, on a terminal and piped.

One seeded database and sandbox (tenants, synced plans, a subscription, a charge, a suspension,
webhook events, notifications, intents, audit entries) is rendered by each command of the table
below at each width. Whatever the command prints with ``--json`` must appear whole in its text
output: no cell cut (``activ``), no word, number, id or date broken over two lines (``45/.5%``).
Change commands run with ``--dry-run``, which renders through the same code as a real change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from rich.cells import cell_len

from billing_cli.cli import render
from billing_cli.gateway import Gateway
from billing_cli.repository import Database
from billing_cli.services.webhooks import WebhookEngine
from tests import events as ev
from tests.factories import add_synced_plan, add_tenant
from tests.services.webhooks.conftest import link_customer

from .conftest import Billing

pytestmark = pytest.mark.sandbox

WIDTHS = (60, 80, 100, 140)
T0 = 1_767_225_600
REASON = "unpaid since March; see ticket SUP-4812 and the thread with their finance team"
DRY_RUN_FOR = ("--dry-run", "--reason", REASON)
DESCRIPTION = "Onboarding workshop for the finance team, two half days, remote"


@dataclass
class Seeded:
    """The ids the commands of the table need."""

    event_id: str
    intent_id: str
    payment_id: str
    invoice_id: str


@pytest.fixture
def seeded(
    billing: Billing, db_env: Database, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> Seeded:
    monkeypatch.setenv("BILLING_MAIL_FROM", "Billing <billing@example.com>")
    add_synced_plan(db_env, gateway, "starter", amount=1900)
    add_synced_plan(db_env, gateway, "pro", amount=4900)
    add_tenant(db_env, "acme", name="Acme Industries International Holdings")
    add_tenant(db_env, "globex", name="Globex Corporation")
    add_tenant(db_env, "initech", name="Initech")
    billing.json("subs", "create", "acme", "--plan", "starter", "--payment-method", "pm_card_visa")
    charged = billing.json(
        "payments",
        "charge",
        "acme",
        "--amount",
        "1234.50",
        "--currency",
        "usd",
        "--description",
        DESCRIPTION,
        "--reason",
        "SUP-4811",
        "--yes",
    )
    assert billing("tenants", "suspend", "initech", "--reason", REASON).exit_code == 0
    link_customer(db_env, "globex", "cus_globex", "sub_globex")
    engine = WebhookEngine(db_env, live_mode=False, max_failed_attempts=1)
    failed = ev.invoice_event(
        "invoice.payment_failed",
        created=T0,
        subscription_id="sub_globex",
        customer_id="cus_globex",
        attempt_count=1,
        paid=False,
    )
    engine.process(failed, source="endpoint")
    intents = billing.json("intents", "list")
    return Seeded(
        event_id=failed["id"],
        intent_id=intents[0]["id"],
        payment_id=charged["after"]["payment_intent"],
        invoice_id=billing.json("invoices", "list", "acme")[0]["id"],
    )


# Raw minor units beside a formatted amount: the table shows "1,234.50 USD", not 123450.
_MINOR_UNITS = frozenset(
    {
        "amount",
        "amount_due",
        "amount_paid",
        "amount_remaining",
        "amount_refunded",
        "refundable",
        "balance",  # shown as "25.00 USD credit"
    }
)


def _words(data: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """Every word of every value a command's ``--json`` holds, as a person would read it, with
    the name of the field it is in."""
    from billing_cli.services.views import iso_from_unix

    if isinstance(data, dict):
        for name, value in data.items():
            yield from _words(value, name)
    elif isinstance(data, list):
        for value in data:
            yield from _words(value, key)
    elif isinstance(data, bool) or data is None or key in _MINOR_UNITS:
        return
    elif isinstance(data, int) and key in render._EPOCH_FIELDS:
        yield key, iso_from_unix(data)
    else:
        yield from ((key, word) for word in str(data).split())


_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d[^\s\"',)]*")
_ONE_FORMAT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _odd_timestamps(text: str) -> list[str]:
    """Timestamps not in the one format of output: ISO, UTC with Z, whole seconds."""
    return [t for t in _TIMESTAMP.findall(text) if not _ONE_FORMAT.fullmatch(t)]


def _too_wide(line: str, width: int) -> bool:
    """Wider than the terminal, other than for one word that is wider on its own."""
    return cell_len(line.rstrip()) > width and len(line.split()) > 1


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _rendered(
    billing: Billing,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    *,
    width: int,
    terminal: bool,
) -> list[str]:
    monkeypatch.setenv("COLUMNS", str(width))
    if terminal:
        monkeypatch.setenv("FORCE_COLOR", "1")
    else:
        monkeypatch.delenv("FORCE_COLOR", raising=False)
    render.reset_consoles()
    result = billing(*args)
    render.reset_consoles()
    assert result.exit_code in (0, 1, 3), result.stderr
    return _ANSI.sub("", result.stdout).splitlines()


# What support staff list, show and change; changes run as dry runs ({...}: ids from the seed).
# Beside each command, the --json fields its text leaves out on purpose (a list picks columns, a
# change shows only the fields that move, a currency is part of the formatted amount); every
# other value must be printed whole.
COMMANDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("tenants", "list"), "created_at suspended_at"),
    (
        ("tenants", "show", "acme"),
        "brand currency description expires id last4 payment_intent payment_method reason target",
    ),
    (("tenants", "show", "initech"), "id status target"),
    (("plans", "list"), "currency lookup_key"),
    (("subs", "list"), "current_period_start last_event_created stripe_customer_id"),
    (("subs", "show", "acme"), ""),
    (("payments", "list", "acme"), "charge currency refunded_display"),
    (("payments", "methods", "list", "acme"), ""),
    (
        ("invoices", "list", "acme"),
        "billing_reason currency customer payment period_end subscription",
    ),
    (("invoices", "show", "{invoice_id}"), ""),
    (("coupons", "list"), ""),
    (("webhooks", "list"), "api_version processed_at received_at"),
    (("webhooks", "show", "{event_id}"), "next_payment_attempt period_end"),
    (
        ("notifications", "list"),
        "by currency event invoice next_payment_attempt reason",
    ),
    (
        ("intents", "list"),
        "command currency customer finished_at payment_method plan price text",
    ),
    (("intents", "show", "{intent_id}"), ""),
    (
        ("audit", "list"),
        "currency current_period_end description email name payment_intent payment_method reason"
        " source stripe_customer_id stripe_subscription_id suspension_reason",
    ),
    (("stats",), "by charge_success_rate rate since success_rate until"),  # rates as 100.0%
    (("config",), ""),
    (("db", "status"), ""),
    (("reconcile",), "choice"),
    (("doctor",), "status"),  # shown as its label: ok, WARN, FAIL
    (
        ("tenants", "suspend", "acme", "--reason", REASON, "--dry-run"),
        "created_at email name target suspended_at",  # suspended_at: now, on each run
    ),
    (("tenants", "reactivate", "initech", "--dry-run"), "created_at email name target"),
    (
        ("tenants", "update", "acme", "--name", "Acme Industries Worldwide", "--dry-run"),
        "created_at email status target",
    ),
    (("tenants", "remove", "globex", "--dry-run"), "target"),
    (
        ("tenants", "credit", "acme", "--amount", "25.00", "--currency", "usd", *DRY_RUN_FOR),
        "amount_display billing_intent currency target",  # the Stripe call's signed amount
    ),
    (
        ("plans", "update", "pro", "--name", "Professional", "--dry-run"),
        "amount_display currency interval interval_count price stripe_price_id"
        " stripe_product_id target trial_days",
    ),
    (("plans", "sync", "--dry-run"), "created"),
    (
        ("subs", "upgrade", "acme", "--plan", "pro", "--dry-run"),
        "action currency current_period_end current_period_start item price price_id"
        " proration_amount status stripe_customer_id target",
    ),
    (
        ("subs", "cancel", "acme", "--dry-run"),
        "current_period_end current_period_start plan status stripe_customer_id target",
    ),
    (
        ("payments", "refund", "{payment_id}", "--amount", "4.50", "--dry-run"),
        "billing_intent currency target",
    ),
    (
        (
            "coupons",
            "create",
            "spring-20",
            "--duration",
            "once",
            "--percent-off",
            "20",
            "--dry-run",
        ),
        "billing_intent target",
    ),
    (("notifications", "send", "--dry-run"), "message_id"),
)


# Key/value and side-by-side tables keep their shape (a table, not blocks) down to 80 columns.
KEEP_SHAPE = {("subs", "show", "acme"), ("config",), ("tenants", "show", "acme")}


def _is_table(lines: list[str]) -> bool:
    """A table, or the one block a record becomes when a value has a word too wide for a
    table; not a block per field (``field  slug`` / ``value  acme``)."""
    return not any(line.startswith("field ") for line in lines)


def test_every_value_is_whole_at_every_width(
    billing: Billing, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = vars(seeded)
    failures: list[str] = []
    for template, left_out in COMMANDS:
        args = tuple(arg.format(**ids) for arg in template)
        data = billing(*args, "--json")
        assert data.exit_code in (0, 1, 3) and data.stdout, (args, data.stderr)
        hidden = set(left_out.split())
        words = {word for key, word in _words(json.loads(data.stdout)) if key not in hidden}
        failures += [f"{' '.join(args)} --json: {t}" for t in _odd_timestamps(data.stdout)]
        for width in WIDTHS:
            for terminal in (True, False):
                lines = _rendered(billing, monkeypatch, args, width=width, terminal=terminal)
                missing = sorted(w for w in words if not any(w in line for line in lines))
                missing += [line for line in lines if _too_wide(line, width)]
                missing += _odd_timestamps("\n".join(lines))
                if width >= 80 and template in KEEP_SHAPE and not _is_table(lines):
                    missing.append("not a table")
                if missing:
                    where = f"{' '.join(args)} at {width} ({'tty' if terminal else 'piped'})"
                    failures.append(f"{where}: {missing[:8]}")
    assert not failures, "\n".join(failures)
