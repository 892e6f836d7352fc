"""Issue 19, point 5: an ordinary support day, mailed to a real SMTP server (aiosmtpd) by
``billing notifications send`` runs between the day's events; the mailbox must hold exactly the
messages a person would expect (``scripted_day.json``: recipients, subjects, key phrases), and
``notifications list`` each withdrawn notice with its reason.

The day: acme's trial ends with a payment before the first run; bolt's card is declined three
times (billing suspends it) and then pays; cove's subscription is canceled after a decline;
dune is suspended by hand with an internal reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from billing_cli.repository import Database
from tests.cli.conftest import Billing
from tests.mail.conftest import SmtpServer
from tests.mail.story import FROM, Tenant, body
from tests.services.webhooks.conftest import add_plans

EXPECTED = json.loads((Path(__file__).parent / "scripted_day.json").read_text())


@pytest.fixture
def billing() -> Billing:
    return Billing()


def test_the_mailbox_after_a_support_day_holds_only_true_messages(
    billing: Billing, db_env: Database, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BILLING_SMTP_URL", smtp.url())
    monkeypatch.setenv("BILLING_MAIL_FROM", FROM)
    add_plans(db_env)
    acme, bolt, cove, dune = (Tenant(db_env, slug) for slug in ("acme", "bolt", "cove", "dune"))
    for tenant in (bolt, cove, dune):
        tenant.clock = acme.clock  # one clock for the day

    def send() -> None:
        result = billing("notifications", "send")
        assert result.exit_code == 0, result.stderr

    acme.trialing()
    acme.trial_will_end()
    acme.trial_converts()  # the trial ended and the first invoice was paid
    bolt.fail(1)
    send()  # 10:00
    bolt.fail(2)
    bolt.fail(3)  # billing suspends bolt
    send()  # 12:00
    dune.suspend("chargeback under review")
    cove.fail(1)
    cove.cancel()
    send()  # 14:00
    bolt.pay()  # bolt recovers: billing lifts its suspension
    send()  # 17:00
    send()  # a later run finds nothing left to send

    got = [(str(m["To"]), str(m["Subject"]), body(m)) for m in smtp.handler.received]
    assert [(to, subject) for to, subject, _ in got] == [
        (m["to"], m["subject"]) for m in EXPECTED["mailbox"]
    ]
    for (_to, subject, text), expected in zip(got, EXPECTED["mailbox"], strict=True):
        for phrase in expected["phrases"]:
            assert phrase in text, (subject, phrase)
        for phrase in expected["absent"]:
            assert phrase not in text, (subject, phrase)

    withdrawn = billing.json("notifications", "list", "--state", "withdrawn")
    assert len(withdrawn) == len(EXPECTED["withdrawn"])
    for row, (tenant, kind, reason) in zip(reversed(withdrawn), EXPECTED["withdrawn"], strict=True):
        assert (row["tenant"], row["kind"]) == (tenant, kind)
        assert row["withdrawn_reason"].startswith(reason)
    human = billing("notifications", "list", "--state", "withdrawn")
    assert "the trial is over" in human.stdout.replace("\n", " ")
    assert billing.json("notifications", "list", "--state", "pending") == []
