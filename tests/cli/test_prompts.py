"""Questions asked before a write, when there is no one to answer them (a script, cron)."""

from __future__ import annotations

import pytest

from billing_cli.repository import Database
from tests.factories import add_tenant, row_counts

from .conftest import Billing


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("tenants", "remove", "acme"), "Error: not confirmed; pass --yes to remove tenant acme"),
        (("invoices", "void", "in_123"), "Error: not confirmed; pass --yes to void invoice in_123"),
    ],
)
def test_an_unanswered_prompt_ends_its_line_before_the_error(
    billing: Billing, db_env: Database, args: tuple[str, ...], error: str
) -> None:
    add_tenant(db_env, "acme")
    before = row_counts(db_env)
    result = billing(*args)
    assert result.exit_code == 1
    question, refusal = result.stderr.splitlines()
    assert question.rstrip().endswith(("to confirm:", "[y/N]:")), question
    assert refusal.startswith(error), refusal
    assert row_counts(db_env) == before
