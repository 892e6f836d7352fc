"""``billing db``: create and evolve the schema, and say where it stands."""

from __future__ import annotations

import typer

from billing_cli.cli.options import JsonOption
from billing_cli.cli.runtime import runtime_of

app = typer.Typer(help="The tenant database's schema.", no_args_is_help=True, rich_markup_mode=None)


@app.command("upgrade")
def upgrade(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Create the database or apply pending migrations (safe to repeat)."""
    from billing_cli.cli import render
    from billing_cli.repository import migrations

    db = runtime_of(ctx).database(check_ready=False)
    pending = [] if db.file_missing() else migrations.pending_revisions(db)
    if db.file_missing():
        pending = migrations.pending_revisions_from_scratch()
    migrations.upgrade(db)
    result = {
        "database": db.display_url,
        "applied": pending,
        "revision": migrations.head_revision(),
    }
    if json_output:
        render.emit_json(result)
        return
    if pending:
        render.out().print(f"applied {', '.join(pending)} to {db.display_url}")
    else:
        render.out().print(f"{db.display_url} is up to date ({result['revision']})")


@app.command("status")
def status(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Show the database's migration state."""
    from billing_cli.cli import render
    from billing_cli.repository import migrations

    db = runtime_of(ctx).database(check_ready=False)
    exists = not db.file_missing()
    current = migrations.current_revision(db) if exists else None
    head = migrations.head_revision()
    result = {
        "database": db.display_url,
        "exists": exists,
        "current": current,
        "head": head,
        "up_to_date": current == head,
    }
    if json_output:
        render.emit_json(result)
        return
    render.key_values("Database", result)
    if current != head:
        render.note("run `billing db upgrade` to bring it up to date")
