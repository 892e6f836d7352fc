"""Shared fixtures: an isolated environment for every test, and a migrated tenant database on
each backend (SQLite always; PostgreSQL when BILLING_TEST_DATABASE_URL is set, as .ci/run does)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from billing_cli.repository import Database, migrations

POSTGRES_URL = os.environ.get("BILLING_TEST_DATABASE_URL", "")
_ISOLATED_PREFIXES = ("STRIPE_", "BILLING_")


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's keys, database or .env: a clean environment in a temp dir."""
    for name in list(os.environ):
        if name.startswith(_ISOLATED_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    from billing_cli.cli import render

    render.reset_consoles()
    yield
    render.reset_consoles()


def _fresh_postgres_schema(base_url: str) -> tuple[str, str]:
    """A throwaway schema per test, so tests never see each other's rows."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    url = sa.make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


def _drop_postgres_schema(base_url: str, schema: str) -> None:
    engine = sa.create_engine(base_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database's URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'billing-test.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("BILLING_TEST_DATABASE_URL is not set (.ci/run sets it to a local PostgreSQL)")
    url, schema = _fresh_postgres_schema(POSTGRES_URL)
    try:
        yield url
    finally:
        _drop_postgres_schema(POSTGRES_URL, schema)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A migrated tenant database."""
    database = Database(database_url)
    migrations.upgrade(database)
    yield database
    database.dispose()


@pytest.fixture
def db_env(db: Database, monkeypatch: pytest.MonkeyPatch) -> Database:
    """The migrated database, also configured for CLI runs through BILLING_DATABASE_URL."""
    monkeypatch.setenv("BILLING_DATABASE_URL", db.url.render_as_string(hide_password=False))
    return db
