"""Alembic environment: runs on the engine handed in by billing_cli.repository.migrations."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import billing_cli.models  # noqa: F401  (registers the tables on SQLModel.metadata)

config = context.config
engine = config.attributes.get("engine")
if engine is None:
    raise RuntimeError("run migrations through `billing db upgrade`")

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
