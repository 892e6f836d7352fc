"""Options shared by many commands, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout and nothing else.")]
DryRunOption = Annotated[
    bool,
    typer.Option(
        "--dry-run", help="Show every change this would make (Stripe and database); make none."
    ),
]
YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation in live mode.")
]
