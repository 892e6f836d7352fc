"""The plans-as-code chapter of ``billing demo``: export the catalogue to a TOML file, edit it,
preview and apply it, sync Stripe, and see that applying it again changes nothing.

The edit is made here, as an operator would in an editor, and printed as a note. It only adds a
plan, so the chapters after this one see the catalogue they expect. ``run_steps`` and ``Step``
are handed in by the tour rather than imported, so this module does not import the tour.
(``subs migrate``, moving subscribers onto a changed plan, joins this chapter later.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

S = TypeVar("S")

TEAM_PLAN = """
[[plan]]
slug = "team"
name = "Team"
amount = "12.00"
currency = "usd"
interval = "month"
per_seat = true
"""


def run_plans_as_code(
    run_steps: Callable[[Sequence[S]], None],
    step: Callable[[tuple[str, ...], str, int], S],
    workdir: Path,
) -> None:
    """Run the chapter in ``workdir`` (the demo's scratch directory, removed at the end)."""
    from billing_cli.cli import render

    path = str(workdir / "plans.toml")
    run_steps([step(("plans", "export", path), "the catalogue as a file, to review and edit", 0)])
    with open(path, "a", encoding="utf-8") as file:
        file.write(TEAM_PLAN)
    render.out().print(f"\n[dim]# (edit) add a per-seat team plan to {path}[/dim]")
    run_steps(
        [
            step(
                ("plans", "apply", path, "--dry-run"), "preview: before -> after, nothing saved", 0
            ),
            step(("plans", "apply", path, "--sync"), "apply it, then sync Stripe", 0),
            step(("plans", "apply", path), "applying the same file again changes nothing", 0),
        ]
    )
