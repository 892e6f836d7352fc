"""The order the doctor's checks run in (the result types are in :mod:`.checklist`)."""

from __future__ import annotations

from collections.abc import Callable

from billing_cli.config import Settings
from billing_cli.errors import BillingError
from billing_cli.gateway import Gateway
from billing_cli.repository import Database
from billing_cli.services.doctor import local, remote, tenant
from billing_cli.services.doctor.checklist import Check, DoctorReport, Status

__all__ = ["Check", "DoctorReport", "Status", "run_doctor"]


def run_doctor(
    settings: Settings,
    database_factory: Callable[[], Database],
    gateway_factory: Callable[[], Gateway],
    *,
    url: str | None = None,
    tenant_slug: str | None = None,
) -> DoctorReport:
    """Run the checklist; ``url`` defaults to ``BILLING_WEBHOOK_URL``; an explicit ``url`` is
    also probed at its ``/healthz`` (the configured one is not: doctor calls only what it is
    told to).

    Both factories may raise a ``BillingError`` (a malformed database URL, a missing key):
    that becomes a failed check, not the end of the run.
    """
    report = DoctorReport()
    key_ok = local.check_configuration(report, settings)
    db: Database | None = None
    try:
        db = database_factory()
    except BillingError as error:
        report.add("database", "fail", str(error), "fix BILLING_DATABASE_URL")
    db_ok = db is not None and local.check_database(report, db)
    gateway: Gateway | None = None
    if key_ok:
        try:
            gateway = gateway_factory()
        except BillingError as error:
            report.add("stripe", "fail", str(error), "fix STRIPE_SECRET_KEY (`billing config`)")
    if gateway is not None and not remote.check_stripe(report, gateway, settings):
        gateway = None
    if gateway is not None:
        remote.check_endpoint(report, gateway, url or settings.webhook_url or None)
    endpoint_up = remote.check_endpoint_health(report, url) if url else True
    if db is not None and db_ok:
        remote.check_deliveries(report, db, gateway, endpoint_up=endpoint_up)
        if gateway is not None:
            remote.check_plans(report, db, gateway)
        if tenant_slug is not None:
            tenant.check_tenant(
                report,
                db,
                gateway,
                slug=tenant_slug,
                max_failed_attempts=settings.max_failed_attempts,
            )
    return report
