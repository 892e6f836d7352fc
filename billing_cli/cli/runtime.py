"""What one command run needs, built on first use: settings, database, gateway, operator.

Kept in the Typer context object. Nothing here is built at import time or for ``--help``, and
nothing beyond typer is imported with it: every command module imports this one, and
:mod:`billing_cli.config` alone would add ~4 ms to every ``--help``.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from billing_cli.config import Settings
    from billing_cli.gateway import Gateway
    from billing_cli.models import Invocation
    from billing_cli.repository import Database

_NOT_ARGUMENTS = frozenset({"json_output", "dry_run", "yes"})


@dataclass
class Runtime:
    """Per-run state behind the global options."""

    env_file: Path | None = None
    verbose: bool = False
    operator: str | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _database: Database | None = field(default=None, repr=False)
    _counting: ExitStack | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        if self._settings is None:
            from billing_cli.config import load_settings

            self._settings = load_settings(env_file=self.env_file)
            configure_logging(verbose=self.verbose, log_file=self._settings.log_file)
        return self._settings

    def database(self, *, check_ready: bool = True) -> Database:
        """The tenant database, refusing one that is missing or not migrated."""
        if self._database is None:
            from billing_cli.repository import Database

            settings = self.settings()
            self._database = Database(settings.database_url, role=settings.database_role)
        if check_ready:
            from billing_cli.repository.migrations import check_ready as ensure_migrated

            ensure_migrated(self._database)
        return self._database

    def gateway(self, *, dry_run: bool) -> Gateway:
        """The Stripe gateway; under ``dry_run`` writes are recorded instead of sent."""
        from billing_cli.gateway import DryRunGateway, make_gateway

        real = make_gateway(self.settings())
        self._count_stripe_errors()
        return DryRunGateway(real) if dry_run else real

    def _count_stripe_errors(self) -> None:
        """Every Stripe error of this run, reads too, counts for ``billing check``."""
        if self._counting is not None:
            return
        from billing_cli.services.observe.counters import count_stripe_errors

        self._counting = ExitStack()
        self._counting.enter_context(count_stripe_errors(lambda: self.database(check_ready=False)))

    def invocation(self, ctx: typer.Context, *, dry_run: bool = False) -> Invocation:
        """Who runs what: the audit entry's operator, command and arguments."""
        from billing_cli.config import resolve_operator
        from billing_cli.models import Invocation

        command = " ".join(ctx.command_path.split()[1:]) or ctx.command_path
        arguments = {k: v for k, v in ctx.params.items() if k not in _NOT_ARGUMENTS}
        return Invocation(
            operator=resolve_operator(self.operator, self.settings()),
            command=command,
            arguments=arguments,
            dry_run=dry_run,
        )

    def begin_change(
        self, ctx: typer.Context, *, what: str, dry_run: bool, yes: bool
    ) -> tuple[Database, Invocation]:
        """What a command that writes to the database needs, after the live-mode confirmation."""
        db = self.database()
        self.confirm(what, yes=yes, dry_run=dry_run)
        return db, self.invocation(ctx, dry_run=dry_run)

    def begin_stripe_change(
        self, ctx: typer.Context, *, what: str, dry_run: bool, yes: bool
    ) -> tuple[Database, Gateway, Invocation]:
        """As :meth:`begin_change`, plus the gateway (recording, not sending, under dry run)."""
        db, invocation = self.begin_change(ctx, what=what, dry_run=dry_run, yes=yes)
        return db, self.gateway(dry_run=dry_run), invocation

    def confirm(self, what: str, *, yes: bool, dry_run: bool) -> None:
        """In live mode, a real mutation needs ``--yes`` or a typed yes at a terminal."""
        if dry_run or yes or not self.settings().stripe_live_mode:
            return
        from billing_cli.errors import ConfirmationDeclined

        if not sys.stdin.isatty():
            raise ConfirmationDeclined(f"live mode: pass --yes to {what}")
        if not typer.confirm(f"LIVE MODE: {what}?", default=False, err=True):
            raise ConfirmationDeclined("cancelled; nothing was changed")

    def close(self) -> None:
        if self._counting is not None:
            self._counting.close()  # writes the errors still pending, while the database is open
            self._counting = None
        if self._database is not None:
            self._database.dispose()


def runtime_of(ctx: typer.Context) -> Runtime:
    root = ctx.find_root()
    if not isinstance(root.obj, Runtime):
        root.obj = Runtime()
    return root.obj


def configure_logging(*, verbose: bool, log_file: str) -> None:
    """Stripe-call and engine logs go to stderr with --verbose and to BILLING_LOG_FILE.

    Replaces the handlers of the previous run, so in-process runs (the demo, tests) each get
    their own choice.
    """
    import logging

    logger = logging.getLogger("billing")
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    handlers: list[logging.Handler] = []
    if verbose:
        handlers.append(logging.StreamHandler(sys.stderr))
    if log_file:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    if not handlers:  # without one, Python's last-resort handler prints warnings to stderr
        handlers.append(logging.NullHandler())
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
