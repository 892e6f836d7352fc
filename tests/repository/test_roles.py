"""``BILLING_DATABASE_ROLE`` outside PostgreSQL, and how the setting reaches the database."""

from __future__ import annotations

from pathlib import Path

import pytest

from billing_cli.config import load_settings
from billing_cli.errors import DatabaseError
from billing_cli.repository import Database


def test_a_role_is_refused_on_sqlite(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="BILLING_DATABASE_ROLE is for PostgreSQL"):
        Database(f"sqlite:///{tmp_path / 'x.db'}", role="billing_app")


def test_the_role_is_read_from_the_env_file_too(tmp_path: Path) -> None:
    env = tmp_path / "billing.env"
    env.write_text("BILLING_DATABASE_ROLE=billing_app\n")
    assert load_settings(env_file=env, environ={}).database_role == "billing_app"
    assert load_settings(environ={"BILLING_DATABASE_ROLE": " other "}).database_role == "other"
