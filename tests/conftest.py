"""Shared fixtures: an isolated environment for every test, and a migrated tenant database on
each backend (SQLite always; PostgreSQL when BILLING_TEST_DATABASE_URL is set, as .ci/run does)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from billing_cli.config import Settings
from billing_cli.repository import Database, migrations

if TYPE_CHECKING:
    from billing_cli.gateway import Gateway
    from stripe_sandbox import Sandbox

POSTGRES_URL = os.environ.get("BILLING_TEST_DATABASE_URL", "")
# Under pytest-xdist each worker is its own process with its own session; ``gw0``, ``gw1``...
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_ISOLATED_PREFIXES = ("STRIPE_", "BILLING_")


_POSTGRES_NOT_RUN = pytest.StashKey[int]()


# Left out of the quick loop (``scripts/test.sh --quick``) besides every property test and every
# test behind the fault-injecting proxy (it waits out injected hangs and time limits): modules
# that start servers or subprocesses, kill processes, run mypy, or page through thousands of
# objects. Each takes seconds, not milliseconds; the whole suite (and CI) still runs them.
SLOW_MODULES = (
    "tests/cli/test_demo.py",
    "tests/cli/test_killed_writes.py",
    "tests/gateway/test_typed_params.py",
    "tests/sandbox/test_listing.py",
    "tests/web/test_observability.py",
    "tests/web/test_serve.py",
)


_FAULT_FIXTURES = frozenset({"proxy", "through_proxy"})


def _mark_slow(items: list[pytest.Item]) -> None:
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        is_property = getattr(getattr(item, "obj", None), "is_hypothesis_test", False)
        faulted = bool(_FAULT_FIXTURES & set(getattr(item, "fixturenames", ())))
        if is_property or faulted or path in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the slow tests; without BILLING_TEST_DATABASE_URL, leave the PostgreSQL variants
    out and say so once in the summary, instead of one SKIPPED line each that would bury it."""
    _mark_slow(items)
    if POSTGRES_URL:
        return
    postgres = [item for item in items if item.get_closest_marker("postgres") is not None]
    if postgres:
        config.hook.pytest_deselected(items=postgres)
        items[:] = [item for item in items if item.get_closest_marker("postgres") is None]
        config.stash[_POSTGRES_NOT_RUN] = len(postgres)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    left_out = config.stash.get(_POSTGRES_NOT_RUN, 0)
    if left_out:
        terminalreporter.write_line(
            f"{left_out} PostgreSQL tests not run: BILLING_TEST_DATABASE_URL is not set "
            "(see README, Quick start)"
        )


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


_worker_database: dict[str, str] = {}


def _admin_engine() -> sa.Engine:
    return sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")


def postgres_base_url() -> str:
    """The PostgreSQL database this test process makes its schemas in.

    Run in parallel (pytest-xdist), each worker gets a database of its own, created on first
    use and dropped when the worker ends: PostgreSQL's advisory locks, which the webhook engine
    takes per customer, are scoped to a database, so two workers replaying the same fixture
    customer would otherwise wait on each other's locks. Without the privilege to create a
    database, the worker falls back to the configured one (schemas still keep tests apart).
    """
    if not XDIST_WORKER:
        return POSTGRES_URL
    if "url" in _worker_database:
        return _worker_database["url"]
    base = sa.make_url(POSTGRES_URL)
    name = f"{base.database}_{XDIST_WORKER}"
    engine = _admin_engine()
    try:
        with engine.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.DBAPIError:
        _worker_database["url"] = POSTGRES_URL
    else:
        _worker_database["url"] = base.set(database=name).render_as_string(hide_password=False)
        _worker_database["name"] = name
    finally:
        engine.dispose()
    return _worker_database["url"]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop this worker's own PostgreSQL database, if it made one."""
    name = _worker_database.get("name")
    if not name:
        return
    engine = _admin_engine()
    try:
        with engine.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


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
    base_url = postgres_base_url()
    url, schema = _fresh_postgres_schema(base_url)
    try:
        yield url
    finally:
        _drop_postgres_schema(base_url, schema)


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


# -- Stripe: one local sandbox per test session, wiped before each test that uses it ----------


@dataclass
class StripeRequests:
    """Every HTTP request stripe-python sent during a test, seen at the requests layer."""

    sent: list[tuple[str, str]] = field(default_factory=list)

    @property
    def posts(self) -> list[str]:
        return [path for method, path in self.sent if method == "POST"]

    @property
    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.sent if m in {"POST", "DELETE"} and p.startswith("/v1/")]


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    from stripe_sandbox import Sandbox

    with Sandbox() as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """A wiped sandbox, configured for CLI runs through the STRIPE_* variables."""
    sandbox_server.reset()
    monkeypatch.setenv("STRIPE_SECRET_KEY", sandbox_server.secret_key)
    monkeypatch.setenv("STRIPE_API_BASE", sandbox_server.api_base)
    monkeypatch.setenv("STRIPE_MAX_NETWORK_RETRIES", "0")
    return sandbox_server


@pytest.fixture
def sandbox_settings(sandbox: Sandbox) -> Settings:
    return Settings(
        stripe_secret_key=sandbox.secret_key,
        stripe_api_base=sandbox.api_base,
        stripe_max_network_retries=0,
    )


@pytest.fixture
def gateway(sandbox_settings: Settings) -> Gateway:
    """The real StripeGateway, over real HTTP, against the sandbox."""
    from billing_cli.gateway import make_gateway

    return make_gateway(sandbox_settings)


@pytest.fixture
def stripe_requests(monkeypatch: pytest.MonkeyPatch) -> StripeRequests:
    """Record (and pass on) every request made through ``requests`` during the test.

    A call-through spy, not a mock: it is how tests prove a dry run made zero Stripe POSTs.
    """
    import requests

    seen = StripeRequests()
    original = requests.Session.request

    def spy(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        seen.sent.append((method.upper(), urlsplit(url).path))
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", spy)
    return seen
