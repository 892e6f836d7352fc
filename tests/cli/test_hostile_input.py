"""The last hostile and mistaken inputs (issue 20.5): each is one line on stderr, exit 2, and
nothing written, nothing asked of Stripe."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from billing_cli.repository import Database
from tests.cli.conftest import Billing, Outcome
from tests.cli.test_webhooks_cli import acme  # noqa: F401 - the fixture: acme linked to cus_acme
from tests.conftest import StripeRequests
from tests.factories import add_tenant, table_snapshot


def _refused(
    billing: Billing,
    db: Database,
    *args: str,
    message: str = "",
    stripe: StripeRequests | None = None,
) -> Outcome:
    """Run ``args``: one line on stderr starting with ``message``, exit 2, nothing written and,
    given the spy, nothing sent to Stripe."""
    before = table_snapshot(db)
    result = billing(*args)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"Error: {message}")
    assert result.stderr.count("\n") == 1
    assert stripe is None or stripe.sent == []
    assert table_snapshot(db) == before
    return result


# -- malformed ids: refused before any lookup or Stripe call (the test is below, with text) ----


_MALFORMED_IDS: list[tuple[tuple[str, ...], str]] = [
    (("tenants", "show", "ACME"), "invalid slug 'ACME': use 1-63 lower-case letters"),
    (("tenants", "suspend", "Acme", "--reason", "r"), "invalid slug 'Acme'"),
    (("audit", "list", "--tenant", "acme\n"), "invalid slug 'acme\\n'"),
    (("webhooks", "show", "in_123"), "'in_123' is an invoice id, not an event id (evt_...)"),
    (("webhooks", "show", "evt 1"), "'evt 1' is not an event id (evt_...)"),
    (("intents", "show", "xx_123"), "'xx_123' is not an intent id (bi_ and 24 hex digits)"),
    (("intents", "resume", "bi_1"), "'bi_1' is not an intent id"),
    (
        ("webhooks", "replay", "--event", "evt_ok1", "--event", "ch_123"),
        "'ch_123' is a charge id, not an event id (evt_...)",
    ),
    (("webhooks", "replay", "--event", "in_123"), "'in_123' is an invoice id"),
]


def test_a_well_formed_id_still_reaches_the_lookup(billing: Billing, db_env: Database) -> None:
    """The check refuses forms, not unknown ids: those are still "not found" (exit 1)."""
    assert billing("webhooks", "show", "evt_nope").exit_code == 1
    assert billing("intents", "show", "bi_" + "0" * 24).exit_code == 1
    assert billing("tenants", "show", "ghost").exit_code == 1


# -- windows: in the future, or of no length ----------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [("stats",), ("webhooks", "list"), ("audit", "list"), ("webhooks", "replay", "--dry-run")],
)
@pytest.mark.parametrize(
    ("window", "message"),
    [
        (("--since", "2099-01-01"), "--since 2099-01-01T00:00:00Z is in the future"),
        (("--since", "0h"), "--since names this very moment, so the window has no length"),
    ],
)
def test_a_window_in_the_future_or_of_no_length_exits_2(
    billing: Billing,
    db_env: Database,
    sandbox: object,
    stripe_requests: StripeRequests,
    command: tuple[str, ...],
    window: tuple[str, ...],
    message: str,
) -> None:
    _refused(billing, db_env, *command, *window, message=message, stripe=stripe_requests)


def test_replay_refuses_an_until_at_or_before_since(
    billing: Billing, db_env: Database, sandbox: object, stripe_requests: StripeRequests
) -> None:
    for until in ("2d", "3d"):
        result = billing("webhooks", "replay", "--since", "2d", "--until", until)
        assert result.exit_code == 2
        assert "is not after --since" in result.stderr and "empty window" in result.stderr
    assert stripe_requests.sent == []


# -- tenants update: the checks of tenants add --------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--email", "ops@acme.test\n", "invalid email address 'ops@acme.test\\n'"),
        ("--email", "ops@acme.test\r\nBcc: x@y.z", "invalid email address"),
        ("--email", "a" * 400 + "@acme.test", "--email is 410 characters long; the limit is 320"),
        ("--name", "Acme\x1b]0;pwn\x07", "--name must not contain control characters"),
        ("--name", "N" * 300, "--name is 300 characters long; the limit is 200"),
        ("--name", "   ", "--name must not be empty"),
    ],
)
def test_tenants_update_runs_the_checks_of_tenants_add(
    billing: Billing, db_env: Database, option: str, value: str, message: str
) -> None:
    add_tenant(db_env, "acme")
    _refused(billing, db_env, "tenants", "update", "acme", option, value, message=message)


# -- text that reaches Stripe: no control characters, line breaks or bidi overrides -------------

_PLAN = ("--amount", "29.00", "--currency", "usd", "--interval", "month")
_FIVE_USD = ("--amount", "5", "--currency", "usd")


_STRIPE_TEXT: list[tuple[tuple[str, ...], str]] = [
    (("plans", "add", "pro", "--name", "Pro\x1b]0;pwn\x07", *_PLAN), "--name must not"),
    (("plans", "add", "pro", "--name", "Pro\u202eorP", *_PLAN), "--name must not"),
    (("plans", "update", "basic", "--name", "Basic\nFree"), "--name must not"),
    (("plans", "update", "basic", "--name", "B" * 201), "--name is 201 characters long"),
    (
        ("tenants", "add", "beta", "--name", "Beta\u2028Inc", "--email", "b@beta.test"),
        "--name must not",
    ),
    (("tenants", "update", "acme", "--name", "Acme\u2066x"), "--name must not"),
    (("tenants", "update", "acme", "--email", "ap\u202e@acme.test"), "--email must not"),
    (
        ("payments", "charge", "acme", *_FIVE_USD, "--description", "Fee\r\nrefund approved"),
        "--description must not",
    ),
    (
        ("tenants", "credit", "acme", *_FIVE_USD, "--reason", "goodwill\x1b[2J"),
        "--reason must not",
    ),
    (
        ("tenants", "credit", "acme", *_FIVE_USD, "--reason", " "),
        "--reason must not be empty",
    ),
]


@pytest.mark.parametrize(("args", "message"), [*_MALFORMED_IDS, *_STRIPE_TEXT])
def test_malformed_ids_and_text_for_stripe_exit_2_before_any_lookup_or_stripe_call(
    billing: Billing,
    db_env: Database,
    sandbox: object,
    stripe_requests: StripeRequests,
    args: tuple[str, ...],
    message: str,
) -> None:
    """Malformed ids (``tenants show ACME``, ``webhooks replay --event ch_123``), and text bound
    for Stripe holding control characters, line breaks or bidi overrides."""
    add_tenant(db_env, "acme")
    assert billing("plans", "add", "basic", "--name", "Basic", *_PLAN).exit_code == 0
    _refused(billing, db_env, *args, message=message, stripe=stripe_requests)


# -- webhooks setup --events ---------------------------------------------------------------------

_URL = "http://127.0.0.1:9/webhooks/stripe/"


def test_an_unknown_event_type_is_refused_with_the_valid_ones_listed(
    billing: Billing, db_env: Database, sandbox: object, stripe_requests: StripeRequests
) -> None:
    result = _refused(
        billing,
        db_env,
        "webhooks",
        "setup",
        _URL,
        "--events",
        "invoice.payed",
        "--yes",
        message="--events: Stripe has no event type 'invoice.payed'",
        stripe=stripe_requests,
    )
    assert "did you mean invoice.paid" in result.stderr
    assert "customer.subscription.deleted" in result.stderr  # the handled types are listed


def test_a_list_that_drops_handled_types_says_which_and_asks_first(
    billing: Billing, db_env: Database, sandbox: object, stripe_requests: StripeRequests
) -> None:
    from billing_cli.services.webhooks.setup import default_event_types

    assert billing("webhooks", "setup", _URL).exit_code == 0
    before, stripe_requests.sent[:] = table_snapshot(db_env), []
    fewer = ("--events", "invoice.paid", "--events", "charge.refunded")
    declined = billing("webhooks", "setup", _URL, *fewer, input="n\n")
    dropped = len(default_event_types()) - 1
    assert declined.exit_code == 1
    assert f"--events leaves out {dropped} handled types: customer.created" in declined.stderr
    assert "cancelled; nothing was changed" in declined.stderr
    assert stripe_requests.writes == [] and table_snapshot(db_env) == before

    dry = billing("webhooks", "setup", _URL, *fewer, "--dry-run")
    assert dry.exit_code == 0 and "leaves out" in dry.stderr and stripe_requests.writes == []

    accepted = billing("webhooks", "setup", _URL, *fewer, input="y\n")
    assert accepted.exit_code == 0, accepted.stderr
    endpoint = billing.json("webhooks", "endpoints")[0]
    assert endpoint["enabled_events"] == ["charge.refunded", "invoice.paid"]


# -- replay files: NaN/Infinity refused whole, a byte-order mark read ----------------------------


def _replay_file(tmp_path: Path, lines: list[str], *, prefix: bytes = b"") -> str:
    path = tmp_path / "events.jsonl"
    path.write_bytes(prefix + "".join(line + "\n" for line in lines).encode())
    return str(path)


def _event_lines() -> list[str]:
    from tests import events as ev
    from tests.services.webhooks.conftest import PRICE_BASIC

    common = {"subscription_id": "sub_acme", "customer_id": "cus_acme"}
    created = ev.subscription_event(
        "customer.subscription.created",
        created=1_767_225_600,
        status="active",
        price_id=PRICE_BASIC,
        **common,
    )
    failed = ev.invoice_event(
        "invoice.payment_failed", created=1_767_225_700, attempt_count=1, paid=False, **common
    )
    return [json.dumps(created), json.dumps(failed)]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.usefixtures("acme")
def test_a_replay_file_holding_nan_or_infinity_is_refused_whole(
    billing: Billing, db_env: Database, tmp_path: Path, constant: str
) -> None:
    good, later = _event_lines()
    bad = later.replace('"attempt_count": 1', f'"attempt_count": {constant}')
    assert constant in bad
    result = _refused(
        billing, db_env, "webhooks", "replay", "--from-file", _replay_file(tmp_path, [good, bad])
    )
    assert f"line 2 is not JSON ({constant} is not a JSON number)" in result.stderr


@pytest.mark.usefixtures("acme")
def test_a_replay_file_with_a_byte_order_mark_is_read(
    billing: Billing, db_env: Database, tmp_path: Path
) -> None:
    path = _replay_file(tmp_path, _event_lines(), prefix=codecs.BOM_UTF8)
    result = billing.json("webhooks", "replay", "--from-file", path)
    assert result["counts"]["processed"] == 2, result


# -- --env-file and database URLs: one line, and a pasted password is never echoed --------------


def test_an_env_file_that_is_a_directory_or_binary_is_one_line(
    billing: Billing, tmp_path: Path
) -> None:
    (tmp_path / "conf").mkdir()
    directory = billing("--env-file", "conf", "config")
    assert (directory.exit_code, directory.stderr) == (
        1,
        "Error: env file conf is a directory, not a file\n",
    )
    (tmp_path / "key.env").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe STRIPE_SECRET_KEY=x")
    binary = billing("--env-file", "key.env", "config")
    assert (binary.exit_code, binary.stderr) == (
        1,
        "Error: env file key.env is a binary file, not NAME=value lines of UTF-8 text\n",
    )


_FORMS = "sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DATABASE"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "postgres://app:hunter2@db/billing",
            f"is a postgres:// URL; the supported forms are {_FORMS}",
        ),
        ("mysql://app:hunter2@db/billing", f"is a mysql:// URL; the supported forms are {_FORMS}"),
        ("hunter2", "is not a database URL (its value is not shown, as it may be a password)"),
        ("hunter2@db/billing", "is not a database URL"),
        ("postgresql+psycopg://app:hunter2@[::1/billing", "has a malformed IPv6 host"),
        ("postgresql+psycopg://app:hunter2@::1:5432/billing", "has a malformed IPv6 host"),
        ("postgresql+psycopg://app:hunter2@[::g]:5432/billing", "has a malformed IPv6 host"),
    ],
)
def test_database_urls_that_cannot_work_are_one_line_without_the_password(
    billing: Billing, monkeypatch: pytest.MonkeyPatch, url: str, message: str
) -> None:
    monkeypatch.setenv("BILLING_DATABASE_URL", url)
    result = billing("tenants", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: BILLING_DATABASE_URL {message}")
    assert result.stderr.count("\n") == 1
    assert "hunter2" not in result.stderr and "unexpected" not in result.stderr


def test_a_bracketed_ipv6_host_is_accepted(
    billing: Billing, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BILLING_DATABASE_URL", "postgresql+psycopg://app@[::1]:9/billing")
    shown = billing("config", "--json")
    assert shown.exit_code == 0, shown.stderr


# -- summaries: right plurals, and a dry run does not point to a ledger it did not write --------


def _stranger_line() -> str:
    from tests import events as ev

    stranger = ev.invoice_event(
        "invoice.paid",
        created=1_767_225_600,
        subscription_id="sub_unknown",
        customer_id="cus_unknown",
        attempt_count=1,
        paid=True,
    )
    return json.dumps(stranger)


@pytest.mark.usefixtures("acme")
def test_a_one_event_replay_says_1_event(
    billing: Billing, db_env: Database, tmp_path: Path
) -> None:
    result = billing(
        "webhooks", "replay", "--from-file", _replay_file(tmp_path, [_stranger_line()])
    )
    assert result.exit_code == 0, result.stderr
    assert "1 event:" in result.stderr and "1 events" not in result.stderr
    assert "1 event deferred: their customer has no tenant yet" in result.stderr
    assert "(s)" not in result.stderr


@pytest.mark.usefixtures("acme")
def test_a_dry_runs_summary_does_not_point_to_the_ledger(
    billing: Billing, db_env: Database, tmp_path: Path
) -> None:
    path = _replay_file(tmp_path, [_stranger_line()])
    result = billing("webhooks", "replay", "--from-file", path, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "1 event would be deferred: their customer has no tenant yet" in result.stderr
    assert "webhooks list" not in result.stderr
    assert billing.json("webhooks", "list") == []


# -- issue 24.8: cleaned-up customer data leaves a trace in the ledger and an honest audit -------


@pytest.mark.parametrize(
    ("fields", "reason", "outcome"),
    [
        (
            {"name": "\x1b]0;pwned\x07Acme \x1b[31mInc", "email": "billing@acme.test"},
            "control characters removed from the name",
            "synced name from Stripe",
        ),
        (
            {"name": "N" * 300, "email": "billing@acme.test"},
            "name cut to 200 characters",
            "synced name from Stripe",
        ),
        (
            {"name": "Acme Corp", "email": "ap@acme.test\r\nBcc: x@evil.test"},
            "e-mail 'ap@acme.test\\r\\nBcc: x@evil.test' is not an address; kept the tenant's",
            "synced name from Stripe",
        ),
    ],
)
@pytest.mark.usefixtures("acme")
def test_a_cleaned_customer_update_says_so_in_the_ledger_and_audits_only_what_changed(
    billing: Billing,
    db_env: Database,
    tmp_path: Path,
    fields: dict[str, str],
    reason: str,
    outcome: str,
) -> None:
    from tests import events as ev

    event = ev.customer_event(
        "customer.updated", created=1_767_225_600, customer_id="cus_acme", **fields
    )
    replayed = billing(
        "webhooks", "replay", "--from-file", _replay_file(tmp_path, [json.dumps(event)])
    )
    assert replayed.exit_code == 0, replayed.stderr
    shown = billing.json("webhooks", "show", event["id"])
    assert shown["status"] == "processed"
    assert reason in shown["error"]
    (synced,) = [e for e in billing.json("audit", "list") if e["outcome"].startswith("synced")]
    assert synced["outcome"] == outcome


@pytest.mark.usefixtures("acme")
def test_a_clean_customer_update_leaves_no_reason_and_names_both_fields(
    billing: Billing, db_env: Database, tmp_path: Path
) -> None:
    from tests import events as ev

    event = ev.customer_event(
        "customer.updated",
        created=1_767_225_600,
        customer_id="cus_acme",
        name="Acme Corp",
        email="ap@acme.test",
    )
    path = _replay_file(tmp_path, [json.dumps(event)])
    assert billing("webhooks", "replay", "--from-file", path).exit_code == 0
    assert billing.json("webhooks", "show", event["id"])["error"] is None
    (synced,) = [e for e in billing.json("audit", "list") if e["outcome"].startswith("synced")]
    assert synced["outcome"] == "synced name and email from Stripe"


@pytest.mark.parametrize(
    "args",
    [
        ("tenants", "credit", "ACME", *_FIVE_USD, "--reason", "goodwill"),
        ("payments", "charge", "Acme", *_FIVE_USD, "--description", "fee"),
        ("invoices", "list", "ACME"),
        ("tenants", "update", "ACME", "--name", "Acme"),
    ],
)
def test_every_command_taking_a_slug_refuses_a_malformed_one_before_stripe(
    billing: Billing,
    db_env: Database,
    sandbox: object,
    stripe_requests: StripeRequests,
    args: tuple[str, ...],
) -> None:
    add_tenant(db_env, "acme")
    _refused(billing, db_env, *args, message="invalid slug", stripe=stripe_requests)
