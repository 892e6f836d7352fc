"""The one place that builds engines and opens sessions on the tenant database.

A :class:`Database` is built once per command from the settings. Services ask it for a
:meth:`Database.transaction`, which commits on success, rolls back on error, and always rolls back
under ``dry_run`` so a dry run goes through the real code path (queries, flushes, constraint
checks) and leaves nothing behind. Driver errors are turned into one-line ``DatabaseError``s here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlmodel import Session

from billing_cli.config import SUPPORTED_DATABASE_URLS, display_url
from billing_cli.errors import DatabaseError
from billing_cli.repository.db_errors import translate_errors
from billing_cli.repository.roles import install_database_role


def _sqlite_path(url: sa.URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling would BEGIN lazily and DEFERRED; _begin_sqlite takes
    # over, so a write transaction can start IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _begin_sqlite(connection: sa.Connection) -> None:
    """Start SQLite transactions ourselves: IMMEDIATE for writers, DEFERRED for readers.

    A DEFERRED transaction takes SQLite's write lock only at its first write, so two writers
    that both read first (``tenants suspend`` twice) both see the old state and both write:
    the audit trail then shows two suspensions, each from ``active``. ``BEGIN IMMEDIATE`` takes
    the write lock at the start, so writers queue (up to ``busy_timeout``) as row locks make
    them queue on PostgreSQL.
    """
    mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """An engine on the tenant database plus the session and schema checks services need."""

    def __init__(self, url: str, *, echo: bool = False, role: str = "") -> None:
        try:
            self.url = sa.make_url(url)
        except exc.ArgumentError:
            raise DatabaseError(  # never echoed: a pasted password is no URL either
                f"BILLING_DATABASE_URL is not a database URL; use {SUPPORTED_DATABASE_URLS}"
            ) from None
        self.display_url = display_url(self.url.render_as_string(hide_password=False))
        connect_args: dict[str, Any] = {}
        if self.url.get_backend_name() == "postgresql":
            connect_args["connect_timeout"] = 5
        try:
            self.engine = sa.create_engine(self.url, echo=echo, connect_args=connect_args)
        except (exc.ArgumentError, ImportError, exc.NoSuchModuleError) as error:
            raise DatabaseError(f"cannot use database {self.display_url}: {error}") from None
        if self.url.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _enable_sqlite_foreign_keys)
            event.listen(self.engine, "begin", _begin_sqlite)
        install_database_role(self.engine, role)  # BILLING_DATABASE_ROLE (see .roles)
        self._writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    def file_missing(self) -> bool:
        """True for a SQLite URL whose file does not exist yet (connecting would create it)."""
        path = _sqlite_path(self.url)
        return path is not None and not path.exists()

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        """A raw connection, with driver errors turned into DatabaseError."""
        with translate_errors(self.display_url), self.engine.connect() as connection:
            yield connection

    @contextmanager
    def transaction(self, *, dry_run: bool = False, write: bool = True) -> Iterator[Session]:
        """A session whose work commits at the end, or is rolled back under ``dry_run``.

        A ``write`` transaction on SQLite begins IMMEDIATE (see :func:`_begin_sqlite`). Keep it
        short: nothing that waits on the network belongs inside it.
        """
        engine = self._writer if write else self.engine
        with translate_errors(self.display_url), Session(engine) as session:
            try:
                yield session
                if dry_run:
                    session.rollback()
                else:
                    session.commit()
            except BaseException:
                session.rollback()
                raise

    def read(self) -> AbstractContextManager[Session]:
        """A session for queries only: whatever happens in it is rolled back."""
        return self.transaction(dry_run=True, write=False)

    def dispose(self) -> None:
        self.engine.dispose()
