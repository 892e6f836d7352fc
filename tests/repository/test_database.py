"""Schema management and readiness checks, on every backend."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from billing_cli.errors import DatabaseError, DatabaseNotReady
from billing_cli.models import Tenant, utcnow
from billing_cli.repository import Database, migrations
from billing_cli.repository import tenants as tenants_repo


def test_migrations_match_the_models(db: Database) -> None:
    with db.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_upgrade_is_repeatable(db: Database) -> None:
    migrations.upgrade(db)
    assert migrations.current_revision(db) == migrations.head_revision()
    migrations.check_ready(db)


def test_unmigrated_database_names_the_fix(database_url: str) -> None:
    database = Database(database_url)
    if database.dialect == "sqlite":
        with pytest.raises(DatabaseNotReady, match="billing db upgrade"):
            migrations.check_ready(database)
        Path(database.url.database or "").touch()
    with pytest.raises(DatabaseNotReady, match=r"no billing schema.*billing db upgrade"):
        migrations.check_ready(database)
    database.dispose()


def test_missing_sqlite_file_is_not_created_by_the_check(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    with pytest.raises(DatabaseNotReady, match="no database at"):
        migrations.check_ready(Database(f"sqlite:///{path}"))
    assert not path.exists()


def test_unreachable_server_is_one_line() -> None:
    database = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(DatabaseError, match="unreachable") as caught:
        migrations.check_ready(database)
    assert "\n" not in str(caught.value)


def test_garbage_url_is_refused() -> None:
    with pytest.raises(DatabaseError, match="not a database URL"):
        Database("not a url at all")


def test_timestamps_come_back_as_aware_utc(db: Database) -> None:
    now = utcnow()
    with db.transaction() as session:
        tenants_repo.add(
            session=session,
            tenant=Tenant(slug="tz", name="Tz", email="t@z.test", created_at=now),
        )
    with db.read() as session:
        tenant = tenants_repo.get_by_slug(session=session, slug="tz")
        assert tenant is not None and tenant.created_at is not None
        assert tenant.created_at.utcoffset() is not None
        assert abs((tenant.created_at - now).total_seconds()) < 0.001


def test_transaction_rolls_back_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError), db.transaction() as session:
        tenants_repo.add(session=session, tenant=Tenant(slug="gone", name="Gone", email="g@o.test"))
        raise RuntimeError("boom")
    with db.connect() as connection:
        assert connection.execute(sa.text("select count(*) from tenant")).scalar_one() == 0
