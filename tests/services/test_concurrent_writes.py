"""Concurrent commands for one tenant: serialised on SQLite as on PostgreSQL.

Threads released together by a barrier run the real services against a real database file or
server. The audit trail must read as if the commands ran one after the other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from billing_cli.errors import BillingError
from billing_cli.models import Invocation
from billing_cli.repository import Database
from billing_cli.services import audit, journal
from billing_cli.services.tenants import rules as tenant_rules
from tests.factories import add_tenant, invocation


def race(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads started together; results or the errors raised.

    No thread ends before all have finished ``work``: a winner is still "running" (as it would
    be while it waits on Stripe) when the others try.
    """
    start, finish = threading.Barrier(count), threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = work(index)
        except BillingError as error:
            results[index] = error
        finish.wait()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.fixture
def acme(db: Database) -> Iterator[Database]:
    add_tenant(db, "acme")
    yield db


def test_racing_suspensions_write_one_audit_entry(acme: Database) -> None:
    for round_ in range(3):
        race(
            6,
            lambda i, r=round_: tenant_rules.suspend_tenant(
                acme, invocation=invocation(), slug="acme", reason=f"round {r} by {i}"
            ),
        )
        trail = [e for e in audit.list_entries(acme, tenant_slug="acme", since=None, limit=1000)]
        suspended = [e for e in trail if e["outcome"].startswith("suspended")]
        assert len(suspended) == round_ + 1, [e["outcome"] for e in trail]
        assert all(e["before"]["status"] == "active" for e in suspended)
        tenant_rules.reactivate_tenant(acme, invocation=invocation(), slug="acme")


def test_racing_operators_get_one_intent_and_clear_refusals(acme: Database) -> None:
    """Different parameters for one tenant and family: one intent, the others refused."""

    def begin(index: int) -> journal.Intent:
        return journal.begin(
            acme,
            operation="payment.charge",
            target="payment:acme",
            tenant_slug="acme",
            params={"amount": 100 + index},
            invocation=Invocation(operator=f"op{index}", command="payments charge"),
        )

    results = race(5, begin)
    won = [r for r in results if isinstance(r, journal.Intent)]
    refused = [r for r in results if isinstance(r, BillingError)]
    assert len(won) == 1 and len(refused) == 4
    for error in refused:
        assert "\n" not in error.message
        assert won[0].id in error.message or "same moment" in error.message


def test_the_same_command_twice_at_once_runs_once(acme: Database) -> None:
    """Identical parameters: the second is refused while the first holds the intent."""

    def begin(_: int) -> journal.Intent:
        return journal.begin(
            acme,
            operation="payment.charge",
            target="payment:acme",
            tenant_slug="acme",
            params={"amount": 100},
            invocation=Invocation(operator="op", command="payments charge"),
        )

    results = race(4, begin)
    won = [r for r in results if isinstance(r, journal.Intent)]
    assert len(won) == 1
    assert all(
        "being run right now" in r.message or "same moment" in r.message
        for r in results
        if isinstance(r, BillingError)
    )
