"""``billing plans export`` and ``billing plans apply``: the catalogue as a TOML file.

Registered on the ``plans`` app by :mod:`.plans_cmd`; apart from it because rendering a file's
before -> after is its own job. The rules (file format, checks, one transaction) live in
:mod:`billing_cli.services.catalog.plan_files`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from billing_cli.cli.options import DryRunOption, JsonOption, YesOption
from billing_cli.cli.runtime import runtime_of

if TYPE_CHECKING:
    from billing_cli.services.catalog.plan_files import ApplyReport


def export(
    ctx: typer.Context,
    file: Annotated[
        Path | None,
        typer.Argument(metavar="[FILE]", help="Where to write the TOML; stdout without it."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite FILE if it exists.")] = False,
) -> None:
    """Write every plan as TOML: edit it, then `billing plans apply FILE`."""
    from billing_cli.cli import render
    from billing_cli.errors import UsageError
    from billing_cli.services.catalog import plan_files

    text, count = plan_files.export_plans(runtime_of(ctx).database())
    if file is None:
        sys.stdout.write(text)
        return
    if file.exists() and not force:
        raise UsageError(f"{file} exists; pass --force to overwrite it")
    try:
        file.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {file}: {exc.strerror or exc}") from None
    render.note(f"wrote {count} plans to {file}")


def apply(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A plan file (TOML).")],
    prune: Annotated[
        bool, typer.Option("--prune", help="Deactivate active plans the file does not name.")
    ] = False,
    sync: Annotated[
        bool, typer.Option("--sync", help="Then run `plans sync` to bring Stripe in line.")
    ] = False,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Make the plans table follow FILE: add, update, and with --prune deactivate."""
    from billing_cli.cli import render
    from billing_cli.services.catalog import plan_files

    runtime = runtime_of(ctx)
    db, invocation = runtime.begin_change(
        ctx,
        what=f"apply plan file {file}" + (" and sync Stripe" if sync else ""),
        dry_run=dry_run,
        yes=yes,
    )
    # Built first, so that a missing Stripe key refuses the command before the file is applied.
    gateway = runtime.gateway(dry_run=False) if sync and not dry_run else None
    report = plan_files.apply_plan_file(db, invocation=invocation, path=file, prune=prune)
    synced = None
    if gateway is not None:
        from billing_cli.services.catalog import plan_sync

        synced = plan_sync.sync_plans(db, gateway, invocation=invocation, archive_stale=prune)
    if json_output:
        data = report.to_dict()
        data["sync"] = synced.to_dict() if synced is not None else None
        render.emit_json(data)
        return
    _render(report, sync=sync)
    if synced is not None:
        from billing_cli.cli.sync_report import render_report

        render_report(synced)


def _render(report: ApplyReport, *, sync: bool) -> None:
    """The change as before -> after, plan by plan, then what to run next."""
    from billing_cli.cli import render

    counts = ", ".join(
        f"{report.count(action)} {done}"
        for action, done in (("add", "added"), ("update", "updated"), ("deactivate", "deactivated"))
    )
    head = f"{counts}, {len(report.unchanged)} unchanged"
    prefix = "[dry run] would apply" if report.dry_run else "applied"
    render.out().print(f"{prefix} {report.source}: {head}", markup=False, soft_wrap=True)
    for change in report.changes:
        moved = "; ".join(
            f"{key} {_cell(new)}"
            if change.before is None
            else f"{key} {_cell(old)} -> {_cell(new)}"
            for key, old, new in change.moved()
        )
        line = f"  {change.action} {change.slug}: {moved}"
        render.out().print(line, markup=False, soft_wrap=True)
    if report.unlisted:
        kept = ", ".join(report.unlisted)
        render.out().print(f"  not in the file, kept (--prune deactivates): {kept}", markup=False)
    if not report.changes:
        return
    if report.dry_run:
        line = "nothing was saved; without --dry-run, `billing plans sync` then updates Stripe"
    elif sync:
        line = "now syncing Stripe:"
    else:
        line = "Stripe is unchanged: run `billing plans sync` (or apply with --sync)"
    render.out().print(line, markup=False)


def _cell(value: Any) -> str:
    from billing_cli.text import printable

    if isinstance(value, bool):
        return "yes" if value else "no"
    return "-" if value is None else printable(str(value))
