"""Checks that need neither Stripe nor the tenant data: the settings and the database schema."""

from __future__ import annotations

from billing_cli.config import Settings, check_key_mode, check_webhook_secrets
from billing_cli.errors import ConfigError, DatabaseError
from billing_cli.repository import Database
from billing_cli.repository.migrations import current_revision, head_revision
from billing_cli.services.doctor.checklist import DoctorReport

_KEY_PREFIXES = ("sk_test_", "rk_test_", "sk_live_", "rk_live_")


def check_configuration(report: DoctorReport, settings: Settings) -> bool:
    """Keys present, the key's mode matching STRIPE_LIVE_MODE, the webhook secret's format.

    True when the secret key is usable, so the Stripe checks can run.
    """
    key = settings.stripe_secret_key
    key_ok = False
    if not key:
        report.add(
            "stripe key",
            "fail",
            "STRIPE_SECRET_KEY is not set",
            "put a secret key (sk_test_...) in .env, or run `billing sandbox` for a local Stripe",
        )
    elif not key.startswith(_KEY_PREFIXES):
        report.add(
            "stripe key",
            "fail",
            "STRIPE_SECRET_KEY is not a secret or restricted key (sk_/rk_)",
            "copy the secret key from Stripe's API keys page into STRIPE_SECRET_KEY",
        )
    else:
        try:
            check_key_mode(key, live_mode=settings.stripe_live_mode)
        except ConfigError as error:
            report.add("stripe key", "fail", str(error), "make the key and STRIPE_LIVE_MODE agree")
        else:
            mode = "live" if settings.stripe_live_mode else "test"
            report.add("stripe key", "ok", f"{mode} key, matching STRIPE_LIVE_MODE")
            key_ok = True
    secret = settings.stripe_webhook_secret
    if not secret:
        report.add(
            "webhook secret",
            "warn",
            "STRIPE_WEBHOOK_SECRET is not set; `billing webhooks serve` refuses to start",
            "`billing webhooks setup URL --write-env .env` creates the endpoint and writes it",
        )
    elif not secret.startswith("whsec_") or len(secret) < 20 or any(c.isspace() for c in secret):
        report.add(
            "webhook secret",
            "fail",
            "STRIPE_WEBHOOK_SECRET does not look like a signing secret (whsec_...)",
            "copy the endpoint's signing secret, or `billing webhooks setup URL --write-env .env`",
        )
    else:
        report.add("webhook secret", "ok", "STRIPE_WEBHOOK_SECRET has the whsec_ format")
    check_webhook_secret_roll(report, settings)
    return key_ok


def check_database(report: DoctorReport, db: Database) -> bool:
    """Reachable and at the latest migration; True when the data checks can run."""
    if db.file_missing():
        report.add(
            "database", "fail", f"no database at {db.display_url}", "run `billing db upgrade`"
        )
        return False
    try:
        current = current_revision(db)
    except DatabaseError as error:
        report.add(
            "database",
            "fail",
            str(error),
            "check BILLING_DATABASE_URL (and BILLING_DATABASE_ROLE) and that the server is up",
        )
        return False
    report.add("database", "ok", f"{db.display_url} is reachable")
    head = head_revision()
    if current != head:
        where = "has no billing schema" if current is None else f"is at migration {current}"
        report.add(
            "database schema",
            "fail",
            f"the database {where}, not {head}",
            "run `billing db upgrade`",
        )
        return False
    report.add("database schema", "ok", f"migrated (revision {head})")
    return True


def check_webhook_secret_roll(report: DoctorReport, settings: Settings) -> None:
    """Several webhook secrets mean a roll was started: a reminder to finish it (each secret
    must still be a signing secret, or ``webhooks serve`` refuses to start)."""
    secrets = settings.webhook_secrets()
    if len(secrets) < 2:
        return
    try:
        check_webhook_secrets(settings.stripe_webhook_secret)
    except ConfigError as error:
        report.add("webhook secret roll", "fail", str(error), "fix STRIPE_WEBHOOK_SECRET")
        return
    report.add(
        "webhook secret roll",
        "warn",
        f"{len(secrets)} webhook secrets configured: a secret roll is not finished",
        "once the old secret has expired in Stripe, keep only the new one in "
        "STRIPE_WEBHOOK_SECRET and restart `billing webhooks serve` (README, Rolling the "
        "webhook secret)",
    )
