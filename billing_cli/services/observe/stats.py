"""``billing stats`` and ``billing check``: the seed's metrics and alerts, read from the database.

Every figure comes from an SQL aggregate in :mod:`billing_cli.repository.stats`; this module
names the metrics, fills in the periods that had nothing (so series line up), computes the
rates, and turns the alert rules' figures and thresholds into verdicts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlmodel import Session

from billing_cli.config import Settings
from billing_cli.models import utcnow
from billing_cli.repository import Database
from billing_cli.repository import intents as intents_repo
from billing_cli.repository import stats as stats_repo
from billing_cli.services.observe.counters import REJECTION_REASONS, SIGNATURE_REASONS
from billing_cli.services.observe.metric_definitions import DEFINITIONS
from billing_cli.text import plural
from billing_cli.timeparse import iso

BY_CHOICES = ("day", "week")


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def periods(since: datetime, until: datetime, by: str) -> list[str]:
    """Every period from ``since`` to ``until``, named as the database names them."""
    day = since.date()
    if by == "week":
        day -= timedelta(days=day.weekday())
    step = timedelta(days=7 if by == "week" else 1)
    names = []
    while day <= until.date():
        names.append(day.isoformat())
        day += step
    return names


Query = Callable[..., list[dict[str, Any]]]
PERCENTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))


def period_of_day(day: str, by: str) -> str:
    """The period a ``YYYY-MM-DD`` day belongs to: itself, or its week's Monday."""
    if by == "day":
        return day
    when = date.fromisoformat(day)
    return (when - timedelta(days=when.weekday())).isoformat()


def _by_day(
    rows: list[dict[str, Any]], by: str, names: list[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Per-day counts (the ledger's queries) summed per period and over the window."""
    per: dict[str, dict[str, Any]] = {name: {} for name in names}
    total: dict[str, Any] = {}
    for row in rows:
        period = per.setdefault(period_of_day(row["period"], by), {})
        for key, value in row.items():
            if key != "period":
                period[key] = period.get(key, 0) + int(value or 0)
                total[key] = total.get(key, 0) + int(value or 0)
    return {name: per[name] for name in names}, total


def percentiles(histogram: dict[float, int]) -> dict[str, float | None]:
    """Nearest-rank percentiles of a histogram (bucket -> count): for each p, the smallest
    bucket with at least p of all values at or below it."""
    n = sum(histogram.values())
    found: dict[str, float | None] = {name: None for name, _p in PERCENTILES}
    if not n:
        return found
    seen = 0
    wanted = list(PERCENTILES)
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        while wanted and seen >= wanted[0][1] * n:
            found[wanted.pop(0)[0]] = bucket
    return found


def _series(
    session: Session,
    query: Query,
    since: datetime,
    by: str,
    names: list[str],
    *,
    additive: bool = True,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The query per period (keyed by period, every period present) and over the window.

    The periods cover the whole window, so counts over it are the sums of the periods' (one
    scan fewer); figures that do not add up (distinct counts, percentiles) are queried.
    """
    by_period = {row.pop("period"): row for row in query(session=session, since=since, by=by)}
    if additive:
        total: dict[str, Any] = {}
        for row in by_period.values():
            for key, value in row.items():
                total[key] = total.get(key, 0) + int(value or 0)
    else:
        totals = query(session=session, since=since, by=None)
        total = totals[0] if totals else {}
        total.pop("period", None)
    return {name: by_period.get(name, {}) for name in names}, total


def _metric(name: str, total: dict[str, Any], series: list[dict[str, Any]]) -> dict[str, Any]:
    return {"definition": DEFINITIONS[name], "total": total, "series": series}


def compute_stats(
    db: Database, *, since: datetime, by: str = "day", now: datetime | None = None
) -> dict[str, Any]:
    """The seed's metrics over ``since``..now, per ``by`` period and in total (JSON-ready)."""
    until = now or utcnow()
    names = periods(since, until, by)
    with db.read() as session:
        days = day_ranges(since, until)
        per_day = [
            {"period": day, **stats_repo.invoice_payments(session=session, start=start, end=end)}
            for day, start, end in days
        ]
        invoices = _by_day(per_day, by, names)
        metrics = {
            "subscription_creation": _creations(session, since, by, names),
            "payments": _payments(session, since, by, names, invoices),
            "webhook_processing": _processing(session, since, until, by, names),
            "failed_payments": _failed_payments(session, since, by, names, invoices),
            "suspensions": _suspensions(session, since, by, names),
            "rejected_deliveries": _rejected(session, since, by, names),
            "stripe_errors": _stripe_errors(session, since, by, names),
        }
    return {"since": iso(since), "until": iso(until), "by": by, "metrics": metrics}


def _creations(session: Session, since: datetime, by: str, names: list[str]) -> dict[str, Any]:
    per, total = _series(session, stats_repo.subscription_creations, since, by, names)

    def view(row: dict[str, Any]) -> dict[str, Any]:
        attempts, ok = int(row.get("attempts", 0)), int(row.get("succeeded", 0))
        return {"attempts": attempts, "succeeded": ok, "success_rate": _rate(ok, attempts)}

    series = [{"period": p, **view(r)} for p, r in per.items()]
    return _metric("subscription_creation", view(total), series)


Series = tuple[dict[str, dict[str, Any]], dict[str, Any]]


def _payments(
    session: Session, since: datetime, by: str, names: list[str], invoice_series: Series
) -> dict[str, Any]:
    invoices, invoice_total = invoice_series
    charges, charge_total = _series(session, stats_repo.charges, since, by, names)

    def view(invoice: dict[str, Any], charge: dict[str, Any]) -> dict[str, Any]:
        ok, failed = int(invoice.get("succeeded", 0)), int(invoice.get("failed", 0))
        tries, charged = int(charge.get("attempts", 0)), int(charge.get("succeeded", 0))
        return {
            "invoices_succeeded": ok,
            "invoices_failed": failed,
            "invoice_success_rate": _rate(ok, ok + failed),
            "charges_attempted": tries,
            "charges_succeeded": charged,
            "charge_success_rate": _rate(charged, tries),
        }

    series = [{"period": p, **view(invoices[p], charges[p])} for p in names]
    return _metric("payments", view(invoice_total, charge_total), series)


def day_ranges(since: datetime, until: datetime) -> list[tuple[str, datetime, datetime | None]]:
    """The UTC days from ``since`` on, each as (name, start, end); the last is open-ended."""
    ranges: list[tuple[str, datetime, datetime | None]] = []
    start = since
    while True:
        midnight = datetime.combine(start.date() + timedelta(days=1), time(), tzinfo=UTC)
        if midnight > until:
            ranges.append((start.date().isoformat(), start, None))
            return ranges
        ranges.append((start.date().isoformat(), start, midnight))
        start = midnight


def _processing(
    session: Session, since: datetime, until: datetime, by: str, names: list[str]
) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = {name: defaultdict(int) for name in names}
    histograms: dict[str, dict[float, int]] = {name: defaultdict(int) for name in names}
    total_counts: dict[str, int] = defaultdict(int)
    whole: dict[float, int] = defaultdict(int)
    for day, start, end in day_ranges(since, until):
        period = period_of_day(day, by)
        for row in stats_repo.ledger_day(session=session, start=start, end=end):
            n = 0
            for status in stats_repo.LEDGER_STATUSES:
                if row[status]:
                    counts.setdefault(period, defaultdict(int))[status] += int(row[status])
                    total_counts[status] += int(row[status])
                    n += int(row[status])
            if row["code"] is not None:
                bucket = stats_repo.ms_of_code(int(row["code"]))
                histograms.setdefault(period, defaultdict(int))[bucket] += n
                whole[bucket] += n

    def view(outcomes: dict[str, int], histogram: dict[float, int]) -> dict[str, Any]:
        return {
            "events": sum(outcomes.values()),
            "outcomes": dict(sorted(outcomes.items())),
            **{k: _ms(v) for k, v in percentiles(histogram).items()},
        }

    series = [{"period": p, **view(counts[p], histograms[p])} for p in names]
    return _metric("webhook_processing", view(total_counts, whole), series)


def _ms(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def _failed_payments(
    session: Session, since: datetime, by: str, names: list[str], invoice_series: Series
) -> dict[str, Any]:
    invoices, invoice_total = invoice_series
    tenants, tenant_total = _series(
        session, stats_repo.failed_payment_tenants, since, by, names, additive=False
    )

    def view(invoice: dict[str, Any], touched: dict[str, Any]) -> dict[str, Any]:
        return {
            "failed_attempts": int(invoice.get("failed", 0)),
            "tenants": int(touched.get("tenants", 0)),
        }

    series = [{"period": p, **view(invoices[p], tenants[p])} for p in names]
    return _metric("failed_payments", view(invoice_total, tenant_total), series)


def _suspensions(session: Session, since: datetime, by: str, names: list[str]) -> dict[str, Any]:
    """Suspensions by cause, and the rate: tenants suspended in the window over the tenants
    active at any time in it (active now, or suspended in it). Dividing suspensions by the
    tenants active *now* gave 133% when more tenants were suspended than were left active; a
    tenant suspended twice counts once, so the rate never passes 100%."""
    per, total = _series(session, stats_repo.suspensions, since, by, names)
    active = stats_repo.tenants_by_status(session=session).get("active", 0)
    suspended, not_active_now = stats_repo.suspended_tenants(session=session, since=since)

    def view(row: dict[str, Any]) -> dict[str, Any]:
        billing, manual = int(row.get("billing", 0)), int(row.get("manual", 0))
        return {"billing": billing, "manual": manual, "total": billing + manual}

    summary = {
        **view(total),
        "tenants_suspended": suspended,
        "tenants_active_in_window": active + not_active_now,
    }
    summary["rate"] = _rate(suspended, active + not_active_now)
    return _metric("suspensions", summary, [{"period": p, **view(r)} for p, r in per.items()])


def _rejected(session: Session, since: datetime, by: str, names: list[str]) -> dict[str, Any]:
    per: dict[str, dict[str, int]] = defaultdict(dict)
    for row in stats_repo.rejections(session=session, since=since, by=by):
        per[row["period"]][row["reason"]] = int(row["count"])
    totals: dict[str, int] = defaultdict(int)
    for reasons in per.values():
        for reason, n in reasons.items():
            totals[reason] += n

    def view(reasons: dict[str, int]) -> dict[str, Any]:
        return {"total": sum(reasons.values()), **{r: reasons.get(r, 0) for r in REJECTION_REASONS}}

    return _metric(
        "rejected_deliveries", view(totals), [{"period": p, **view(per[p])} for p in names]
    )


def _stripe_errors(session: Session, since: datetime, by: str, names: list[str]) -> dict[str, Any]:
    per: dict[str, int] = defaultdict(int)
    for row in stats_repo.stripe_errors(session=session, since=since, by=by):
        per[row["period"]] += int(row["count"])
    kinds = [
        {"operation": r["operation"], "error_class": r["error_class"], "count": int(r["count"])}
        for r in stats_repo.stripe_errors(session=session, since=since, by=None)
    ]
    total = {"total": sum(k["count"] for k in kinds), "by_kind": kinds}
    return _metric("stripe_errors", total, [{"period": p, "total": per[p]} for p in names])


# -- billing check -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleResult:
    """One alert rule's verdict: ``fired`` when ``figure`` is above ``threshold``."""

    rule: str
    fired: bool
    figure: float | int | None
    threshold: float | int
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "fired": self.fired,
            "figure": self.figure,
            "threshold": self.threshold,
            "message": self.message,
        }


def run_checks(
    db: Database, settings: Settings, *, now: datetime | None = None
) -> list[RuleResult]:
    """Every alert rule, with the figure it saw and the threshold from the settings."""
    at = now or utcnow()
    hour_ago, day_ago = at - timedelta(hours=1), at - timedelta(hours=24)
    with db.read() as session:
        signature = sum(
            int(r["count"])
            for r in stats_repo.rejections(
                session=session, since=hour_ago, by=None, reasons=SIGNATURE_REASONS
            )
        )
        invoice = stats_repo.invoice_payments(session=session, start=day_ago, end=None)
        charges = stats_repo.charges(session=session, since=day_ago, by=None)
        stripe_errors = sum(
            int(r["count"])
            for r in stats_repo.stripe_errors(session=session, since=hour_ago, by=None)
        )
        failed_events = stats_repo.failed_event_count(session=session)
        last_delivery = stats_repo.last_endpoint_delivery(session=session)
        live = stats_repo.live_subscription_count(session=session)
        stuck = intents_repo.count_open(session=session, older_than=hour_ago)
    results = [
        RuleResult(
            "signature_failures",
            signature > settings.alert_signature_failures,
            signature,
            settings.alert_signature_failures,
            f"{signature} webhook signature failures in the last hour "
            f"(threshold {settings.alert_signature_failures})",
        ),
        _payment_rule(invoice, charges, settings),
        RuleResult(
            "stripe_errors",
            stripe_errors > settings.alert_stripe_errors,
            stripe_errors,
            settings.alert_stripe_errors,
            f"{stripe_errors} Stripe API errors in the last hour "
            f"(threshold {settings.alert_stripe_errors})",
        ),
        RuleResult(
            "failed_events",
            failed_events > settings.alert_failed_events,
            failed_events,
            settings.alert_failed_events,
            f"{plural(failed_events, 'webhook event')} left failed in the ledger "
            f"(threshold {settings.alert_failed_events}; `billing webhooks retry-failed`)",
        ),
        _silence_rule(last_delivery, live, settings, at),
        RuleResult(
            "unfinished_intents",
            stuck > settings.alert_open_intents,
            stuck,
            settings.alert_open_intents,
            f"{plural(stuck, 'Stripe write')} unfinished for over an hour "
            f"(threshold {settings.alert_open_intents}; `billing intents list --open`)",
        ),
    ]
    return results


def _payment_rule(
    invoice: dict[str, int], charges: list[dict[str, Any]], settings: Settings
) -> RuleResult:
    charge = charges[0] if charges else {}
    failed = (
        int(invoice.get("failed", 0))
        + int(charge.get("attempts", 0))
        - int(charge.get("succeeded", 0))
    )
    attempts = (
        int(invoice.get("succeeded", 0))
        + int(invoice.get("failed", 0))
        + int(charge.get("attempts", 0))
    )
    rate = _rate(failed, attempts)
    threshold = settings.alert_payment_failure_rate
    enough = attempts >= settings.alert_payment_min_attempts
    fired = enough and rate is not None and rate > threshold
    shown = f"{rate:.0%}" if rate is not None else "n/a"
    sample = "" if enough else f"; needs {settings.alert_payment_min_attempts} attempts to judge"
    return RuleResult(
        "payment_failure_rate",
        fired,
        rate,
        threshold,
        f"payment failure rate {shown} over 24 h ({failed} of {attempts} attempts) "
        f"(threshold {threshold:.0%}{sample})",
    )


def _silence_rule(
    last: datetime | None, live: int, settings: Settings, now: datetime
) -> RuleResult:
    hours = None if last is None else round((now - last).total_seconds() / 3600, 2)
    limit = settings.alert_silence_hours
    fired = live > 0 and (hours is None or hours > limit)
    since = "no delivery ever received" if last is None else f"last delivery {hours} h ago"
    return RuleResult(
        "dead_endpoint",
        fired,
        hours,
        limit,
        f"{since} at the endpoint while {plural(live, 'subscription')} "
        f"{'is' if live == 1 else 'are'} live (threshold {limit:g} h)",
    )
