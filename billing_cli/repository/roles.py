"""``BILLING_DATABASE_ROLE``: every PostgreSQL connection ``SET ROLE``s before doing anything.

Some teams keep the billing tables in an application database that enforces row-level security
(RLS) with tenant policies that read a per-request user context. This tool works across
tenants and has no such context, so its reads would silently see no rows and its writes would
be refused. It therefore connects as the configured login user and switches to a role that
bypasses RLS (``BYPASSRLS``) or that a policy covers, on every new connection of the pool, in
the ``connect`` event, before any statement of the tool runs (see the README's grants).

Without a role, each new connection checks whether RLS is active for the current user on any
of the tool's tables (``row_security_active``); if so the tool stops with one line naming the
table and the fix, rather than reporting empty lists or failing half-way through a webhook.
With a role, the operator has said how RLS is handled (the role may be covered by a policy,
which ``row_security_active`` cannot tell apart), so the check is not made.

:func:`install_database_role` is hooked into ``Database.__init__``; SQLite has no roles and no
RLS, and a role configured for SQLite is refused.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel import SQLModel

from billing_cli.errors import DatabaseError


def install_database_role(engine: sa.Engine, role: str) -> None:
    """Make every new connection of ``engine`` switch to ``role`` (or check RLS without one)."""
    if engine.dialect.name != "postgresql":
        if role:
            raise DatabaseError("BILLING_DATABASE_ROLE is for PostgreSQL; unset it for SQLite")
        return
    event.listen(engine, "connect", functools.partial(_on_connect, role=role))


def _on_connect(dbapi_connection: Any, _record: Any, *, role: str) -> None:
    """Runs once per new DBAPI connection, before the pool hands it out."""
    import psycopg
    from psycopg import sql

    try:
        with dbapi_connection.cursor() as cursor:
            if role:
                cursor.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
                hidden = None
            else:
                hidden = _rls_active_table(cursor)
                user = _current_user(cursor)
        # SET is transactional: commit, or the pool's rollback on return would undo it.
        dbapi_connection.commit()
    except psycopg.Error as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DatabaseError(
            f"cannot SET ROLE {role} (BILLING_DATABASE_ROLE): {reason}; "
            "grant the role to the database user (see the README's grants)"
        ) from None
    if hidden is not None:
        raise DatabaseError(
            f"row-level security is active on table {hidden} for database user {user}: "
            "the tool would see and change no rows; set BILLING_DATABASE_ROLE to a role "
            "with BYPASSRLS (see the README's grants)"
        )


def _rls_active_table(cursor: Any) -> str | None:
    """The first of the tool's tables (on the search path) on which RLS applies to us."""
    names = sorted(SQLModel.metadata.tables)
    cursor.execute(
        "SELECT name FROM unnest(%s::text[]) AS name "
        "WHERE to_regclass(name) IS NOT NULL AND row_security_active(to_regclass(name)) "
        "ORDER BY name LIMIT 1",
        (names,),
    )
    found = cursor.fetchone()
    return None if found is None else str(found[0])


def _current_user(cursor: Any) -> str:
    cursor.execute("SELECT current_user")
    return str(cursor.fetchone()[0])
