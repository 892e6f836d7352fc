"""The tour behind ``billing demo``: real ``billing`` commands run on a throwaway database and
a local Stripe sandbox that the demo starts and stops itself.

Each step is printed as the command line a person would type, then run in-process through the
same app, so the demo shows exactly the tool's real output. It needs no Stripe account, no
server installed by hand and no network beyond 127.0.0.1.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from typer._click import Command

    from billing_cli.repository import Database
    from stripe_sandbox import Sandbox


@dataclass(frozen=True)
class Step:
    """One command of the tour; ``expect`` is its exit code (1 for the declined card)."""

    args: tuple[str, ...]
    note: str = ""
    expect: int = 0


def _steps(*steps: Step | tuple[str, ...]) -> tuple[Step, ...]:
    return tuple(step if isinstance(step, Step) else Step(step) for step in steps)


SETUP = _steps(
    Step(("db", "upgrade"), "a fresh tenant database"),
    Step(
        (
            "plans",
            "add",
            "starter",
            "--name",
            "Starter",
            "--amount",
            "19.00",
            "--currency",
            "usd",
            "--interval",
            "month",
            "--trial-days",
            "14",
        ),
        "plans live in the database",
    ),
    (
        "plans",
        "add",
        "pro",
        "--name",
        "Pro",
        "--amount",
        "49.00",
        "--currency",
        "usd",
        "--interval",
        "month",
    ),
    Step(("plans", "sync", "--dry-run"), "preview: what sync would create in Stripe"),
    ("plans", "sync"),
    Step(("plans", "sync"), "a second sync has nothing to do"),
    ("plans", "list"),
    Step(("doctor",), "the whole chain checked in one go: settings, database, Stripe, endpoint"),
)

TENANTS = _steps(
    ("tenants", "add", "acme", "--name", "Acme Inc", "--email", "billing@acme.test"),
    ("tenants", "add", "globex", "--name", "Globex", "--email", "ap@globex.test"),
    ("tenants", "add", "initech", "--name", "Initech", "--email", "finance@initech.test"),
    Step(
        ("tenants", "suspend", "initech", "--reason", "chargeback under review", "--dry-run"),
        "support previews a manual suspension",
    ),
)

SUBSCRIPTIONS = _steps(
    Step(
        ("subs", "create", "acme", "--plan", "starter", "--payment-method", "pm_card_visa"),
        "starter comes with a 14-day trial",
    ),
    Step(
        (
            "subs",
            "create",
            "globex",
            "--plan",
            "starter",
            "--payment-method",
            "pm_card_visa",
            "--trial-days",
            "0",
        ),
        "no trial: the first invoice is paid at once",
    ),
    Step(
        (
            "subs",
            "upgrade",
            "globex",
            "--plan",
            "pro",
            "--proration",
            "always_invoice",
            "--dry-run",
        ),
        "Stripe's invoice preview shows what the upgrade bills",
    ),
    ("subs", "upgrade", "globex", "--plan", "pro", "--proration", "always_invoice"),
    Step(
        (
            "payments",
            "charge",
            "globex",
            "--amount",
            "12.50",
            "--currency",
            "usd",
            "--description",
            "Extra seats",
        ),
        "a one-off charge",
    ),
    Step(
        ("payments", "methods", "attach", "initech", "pm_card_chargeCustomerFail", "--default"),
        "a card that attaches but fails every charge",
    ),
    Step(
        (
            "payments",
            "charge",
            "initech",
            "--amount",
            "5.00",
            "--currency",
            "usd",
            "--description",
            "Setup fee",
        ),
        "the decline is one clear line, exit code 1",
        expect=1,
    ),
    Step(("subs", "cancel", "acme"), "cancel at period end..."),
    Step(("subs", "resume", "acme"), "...and change our mind"),
    ("subs", "show", "acme"),
    ("subs", "list"),
    ("audit", "list", "--limit", "6"),
)

ADJUSTMENTS = _steps(
    Step(("subs", "extend-trial", "acme", "--days", "7"), "support gives acme a week more"),
    Step(
        (
            "coupons",
            "create",
            "SPRING20",
            "--percent-off",
            "20",
            "--duration",
            "repeating",
            "--months",
            "3",
        ),
        "three months at 20% off",
    ),
    Step(
        ("subs", "discount", "acme", "--coupon", "SPRING20", "--dry-run"),
        "the preview: Stripe's next invoice with the coupon",
    ),
    ("subs", "discount", "acme", "--coupon", "SPRING20"),
    Step(("invoices", "upcoming", "acme"), "the next invoice: date, lines, discount, total"),
    Step(
        ("subs", "pause", "acme"),
        "pause collection; BILLING_PAUSED_ACCESS=keep (the default): acme keeps its access",
    ),
    Step(("subs", "unpause", "acme"), "...and collect again"),
)

DUNNING_SETUP = _steps(
    ("tenants", "add", "hooli", "--name", "Hooli", "--email", "billing@hooli.test"),
    Step(("subs", "create", "hooli", "--plan", "starter"), "a trial needs no card up front"),
    Step(
        ("payments", "methods", "attach", "hooli", "pm_card_chargeCustomerFail", "--default"),
        "the card on file will fail",
    ),
)

AFTER_SUSPENSION = _steps(
    Step(
        ("tenants", "list", "--status", "suspended"),
        "three failed attempts (BILLING_MAX_FAILED_ATTEMPTS): suspended by billing",
    ),
    ("notifications", "list", "--tenant", "hooli"),
    Step(
        ("payments", "methods", "attach", "hooli", "pm_card_visa", "--default"),
        "support helps the customer put a working card on file",
    ),
)

AFTER_RECOVERY = _steps(
    Step(("tenants", "show", "hooli"), "the payment reactivated the tenant (billing suspension)"),
    Step(("doctor", "--tenant", "hooli"), "hooli against Stripe, its events, and the policy"),
    Step(("webhooks", "list", "--limit", "8"), "the ledger: every event, once"),
    Step(
        ("webhooks", "replay", "--since", "1h", "--type", "invoice.*", "--dry-run"),
        "on-call replays the last hour from Stripe's Events API: handled ones already processed",
    ),
    Step(
        (
            "webhooks",
            "replay",
            "--since",
            "1h",
            "--type",
            "invoice.payment_failed",
            "--force",
            "--dry-run",
        ),
        "even forced, old failures cannot undo the newer payment: nothing would change",
    ),
)

CLOSING = _steps(
    Step(("reconcile",), "the closing check: every tenant's local state against Stripe's"),
)

MAIL = _steps(
    Step(("notifications", "send"), "cron sends the outbox by e-mail (BILLING_SMTP_URL)"),
    Step(("notifications", "list", "--tenant", "hooli"), "each message sent once, marked sent"),
    Step(("stats", "--since", "1d"), "the metrics operators watch"),
    Step(("check",), "hooli's dunning trips the payment alert: exit 3 pages on-call", expect=3),
)


def run_tour(*, keep: bool, app: Command) -> None:
    """The tour behind ``billing demo``: ``app`` is the ``billing`` root command the steps run
    through; ``keep`` keeps the demo database."""
    from billing_cli.cli import demo_webhooks as hooks
    from billing_cli.cli import render
    from billing_cli.repository import Database
    from stripe_sandbox import Sandbox

    with _scratch_environment(keep=keep) as workdir, Sandbox() as sandbox:
        os.environ["STRIPE_API_BASE"] = sandbox.api_base
        os.environ["STRIPE_SECRET_KEY"] = sandbox.secret_key
        render.note(
            f"[bold]billing demo[/bold]: database in {workdir}, "
            f"local Stripe sandbox at {sandbox.api_base}"
        )
        _section("Plans: local rows, synced to Stripe Products and Prices")
        run_steps(app, SETUP[:1])  # the endpoint needs the schema
        db = Database(os.environ["BILLING_DATABASE_URL"])
        with hooks.endpoint_in_thread(db, secret_for=_set_up_endpoint(app, workdir)) as url:
            render.note(f"webhook endpoint listening at {url}; the sandbox delivers to it")
            run_steps(app, SETUP[1:])
            _section("Plans as code: export, edit, apply, sync")
            from billing_cli.cli.demo_plans import run_plans_as_code

            run_plans_as_code(lambda steps: run_steps(app, steps), Step, workdir)
            _section("A price change: subs migrate, with a dry run first")
            from billing_cli.cli.demo_migrate import run_price_migration

            run_price_migration(lambda steps: run_steps(app, steps), Step)
            _section("Tenants")
            run_steps(app, TENANTS)
            _section("Subscriptions and payments")
            run_steps(app, SUBSCRIPTIONS)
            _section("Adjustments: a longer trial, a discount, the next invoice, a pause")
            run_steps(app, ADJUSTMENTS)
            _section("Webhooks: failed payments, suspension, recovery, replay")
            run_steps(app, DUNNING_SETUP)
            sub = hooks.subscription_id(db, "hooli")
            _sandbox_step(
                db,
                sandbox,
                "(sandbox) the trial ends; the first charge is declined",
                lambda: _end_trial_later(sandbox, sub),
            )
            _sandbox_step(
                db,
                sandbox,
                "(sandbox) Stripe retries the invoice: declined again",
                lambda: sandbox.renew(sub),
            )
            _sandbox_step(
                db, sandbox, "(sandbox) third attempt: declined", lambda: sandbox.renew(sub)
            )
            run_steps(app, AFTER_SUSPENSION)
            _mail_chapter(app)  # cron sends now: later, the payment makes these notices untrue
            _sandbox_step(
                db,
                sandbox,
                "(sandbox) Stripe retries the invoice with the new card",
                lambda: sandbox.renew(sub),
            )
            run_steps(app, AFTER_RECOVERY)
            _section("Support desk: a failed invoice, the card fixed, a retry, a refund")
            from billing_cli.cli.demo_support import run_support_desk

            run_support_desk(lambda steps: run_steps(app, steps), Step)
            _section("Closing check: the local state equals Stripe's")
            run_steps(app, CLOSING)
        db.dispose()
        render.note("\n[bold green]demo finished[/bold green]")
        if keep:
            render.note(f"kept: BILLING_DATABASE_URL={os.environ['BILLING_DATABASE_URL']}")


def _end_trial_later(sandbox: Sandbox, subscription_id: str) -> None:
    """End the trial in a later second than the one the subscription was written in.

    A real trial lasts at least a day; the sandbox's ``end_trial`` stands in for that time. In
    the same second, the CLI's own write of the subscription outranks an event of that second
    (``policy.local_snapshot_key``, so a late webhook cannot undo a support action), and the
    trial's end would be taken for the older news.
    """
    import time

    started = int(time.time())
    while int(time.time()) == started:
        time.sleep(0.05)
    sandbox.end_trial(subscription_id)


def _set_up_endpoint(app: Command, workdir: Path) -> Callable[[str], str]:
    """``billing webhooks setup URL --write-env``, then the secret and URL it wrote."""

    def set_up(url: str) -> str:
        from dotenv import dotenv_values

        env_file = workdir / ".env"
        run_steps(
            app,
            _steps(
                Step(
                    ("webhooks", "setup", url, "--write-env", str(env_file)),
                    "register the endpoint with Stripe; its signing secret goes to the env file",
                )
            ),
        )
        values = dotenv_values(env_file)
        os.environ["BILLING_WEBHOOK_URL"] = url
        os.environ["STRIPE_WEBHOOK_SECRET"] = values["STRIPE_WEBHOOK_SECRET"] or ""
        return os.environ["STRIPE_WEBHOOK_SECRET"]

    return set_up


def _mail_chapter(app: Command) -> None:
    """Notifications through a local SMTP server, then the metrics and alert rules."""
    from billing_cli.cli import demo_mail, render

    _section("Notifications by e-mail; metrics and alerts")
    if not demo_mail.available():
        render.note("[dim]skipped: the e-mail chapter needs aiosmtpd (pip install -e '.[dev]')")
        return
    with demo_mail.local_smtp() as (url, received):
        os.environ["BILLING_SMTP_URL"] = url
        os.environ["BILLING_MAIL_FROM"] = "Billing <billing@saas.test>"
        run_steps(app, MAIL[:1])
        demo_mail.show(received)
        run_steps(app, MAIL[1:])


def _sandbox_step(db: Database, sandbox: Sandbox, note: str, action: Callable[[], object]) -> None:
    """Move the sandbox's clock, then wait until its webhooks are processed, and say so."""
    from billing_cli.cli import render
    from billing_cli.cli.demo_webhooks import ledger_ids, wait_for_delivery

    render.out().print(f"\n[bold magenta]# {note}[/bold magenta]")
    since, known = int(time.time()), ledger_ids(db)
    action()
    delivered = wait_for_delivery(db, sandbox, since=since, known=known)
    render.out().print(f"[dim]  {delivered} webhook event(s) delivered and processed[/dim]")


def _section(title: str) -> None:
    from billing_cli.cli import render

    render.out().rule(f"[bold]{title}")


def run_steps(app: Command, steps: Sequence[Step]) -> None:
    """Run each step as ``billing ARGS``; stop at the first step that ends unexpectedly.

    The command line is printed whole, never wrapped: piped to a file or a pager at 80 columns
    it must still be a line a person can copy and run.
    """
    from rich.text import Text

    from billing_cli.cli import render

    for step in steps:
        if step.note:
            render.out().print(f"\n[dim]# {step.note}[/dim]")
        else:
            render.out().print()
        command = Text(f"$ billing {shlex.join(step.args)}", style="bold cyan")
        render.out().print(command, soft_wrap=True)
        sys.stdout.flush()
        code = _run(app, step.args)
        sys.stderr.flush()
        if code != step.expect:
            render.note(f"[red]demo stopped: exit code {code}, expected {step.expect}[/red]")
            raise typer.Exit(1)


def _run(app: Command, args: Sequence[str]) -> int:
    """Exit code of one in-process run (Click returns it when not in standalone mode)."""
    try:
        result = app.main(list(args), prog_name="billing", standalone_mode=False)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1
    return result if isinstance(result, int) else 0


_DEMO_VARIABLES = (
    "BILLING_DATABASE_URL",
    "BILLING_OPERATOR",
    "STRIPE_API_BASE",
    "STRIPE_SECRET_KEY",
    "STRIPE_LIVE_MODE",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_MAX_NETWORK_RETRIES",
    "BILLING_WEBHOOK_URL",
    "BILLING_SMTP_URL",
    "BILLING_MAIL_FROM",
)


@contextmanager
def _scratch_environment(*, keep: bool) -> Iterator[Path]:
    """A temp database and demo settings, with the caller's environment put back after."""
    workdir = Path(tempfile.mkdtemp(prefix="billing-demo-"))
    saved = {name: os.environ.get(name) for name in _DEMO_VARIABLES}
    os.environ["BILLING_DATABASE_URL"] = f"sqlite:///{workdir / 'demo.db'}"
    os.environ["BILLING_OPERATOR"] = "demo"
    os.environ["STRIPE_LIVE_MODE"] = "False"
    os.environ["STRIPE_MAX_NETWORK_RETRIES"] = "0"
    try:
        yield workdir
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if not keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
