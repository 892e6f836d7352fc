"""Alembic, driven from code: the migrations ship inside the package, so no alembic.ini is needed
in the operator's working directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from billing_cli.errors import DatabaseNotReady
from billing_cli.repository.db_errors import translate_errors

if TYPE_CHECKING:
    from billing_cli.repository.database import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def _config(database: Database | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database is not None:
        config.attributes["engine"] = database.engine
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "the package ships at least one migration"
    return head


def current_revision(database: Database) -> str | None:
    """The revision the database is at, or None when it has no schema yet."""
    with database.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def check_ready(database: Database) -> None:
    """Refuse to work on a database that is missing or not at the latest migration."""
    if database.file_missing():
        raise DatabaseNotReady(
            f"no database at {database.display_url}; run `billing db upgrade` to create it"
        )
    current = current_revision(database)
    head = head_revision()
    if current is None:
        raise DatabaseNotReady(
            f"database {database.display_url} has no billing schema; run `billing db upgrade`"
        )
    if current != head:
        raise DatabaseNotReady(
            f"database {database.display_url} is at migration {current}, not {head}; "
            "run `billing db upgrade`"
        )


def upgrade(database: Database, revision: str = "head") -> None:
    """Create or evolve the schema; safe to run repeatedly."""
    with translate_errors(database.display_url):
        command.upgrade(_config(database), revision)


def pending_revisions(database: Database) -> list[str]:
    """Revisions not yet applied, oldest first."""
    script = ScriptDirectory.from_config(_config())
    current = current_revision(database)
    revisions = [rev.revision for rev in script.iterate_revisions("head", current)]
    return list(reversed(revisions))


def pending_revisions_from_scratch() -> list[str]:
    """Every revision, oldest first: what upgrading an empty database applies."""
    script = ScriptDirectory.from_config(_config())
    return list(reversed([rev.revision for rev in script.iterate_revisions("head", None)]))
