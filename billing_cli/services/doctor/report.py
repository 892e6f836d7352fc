"""The doctor's result types and the order the checks run in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from billing_cli.config import Settings
from billing_cli.errors import BillingError
from billing_cli.gateway import Gateway
from billing_cli.repository import Database

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One line of the checklist."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


@dataclass
class DoctorReport:
    """Every check run, in order; ``failed`` decides the exit code."""

    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, status: Status, detail: str, fix: str = "") -> Check:
        check = Check(name, status, detail, "" if status == "ok" else fix)
        self.checks.append(check)
        return check

    @property
    def failed(self) -> bool:
        return any(check.status == "fail" for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.failed,
            "checks": [check.to_dict() for check in self.checks],
        }


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
    from billing_cli.services.doctor import local, remote, tenant

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
