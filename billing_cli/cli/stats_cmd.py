"""``billing stats`` and ``billing check``: the seed's metrics and alert rules at the terminal.

``check`` exits 3 (``EXIT_ALERT``) when any rule fires, so cron or a monitoring system can page
on it; 0 when all is clear; 1 when it could not look (the database is unreachable).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from billing_cli.cli.options import JsonOption
from billing_cli.cli.runtime import runtime_of
from billing_cli.services.observe.metric_definitions import DEFINITIONS

_BLOCKS = " ▁▂▃▄▅▆▇█"
_BAR_WIDTH = 12


class Period(StrEnum):
    day = "day"
    week = "week"


def _stats_help() -> str:
    lines = "\n\n".join(f"{name}: {text}." for name, text in DEFINITIONS.items())
    return (
        "Billing metrics over a window, per day or week, with a chart of each over time."
        f"\n\nMetrics (all computed by SQL aggregates):\n\n{lines}"
    )


def stats(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option("--since", help="Window start: a date (2026-11-01) or an age (30d).")
    ] = "30d",
    by: Annotated[Period, typer.Option("--by", help="Period of the series.")] = Period.day,
    json_output: JsonOption = False,
) -> None:
    from billing_cli.cli import render
    from billing_cli.services.observe.stats import compute_stats
    from billing_cli.timeparse import parse_since

    since_at = parse_since(since)  # before the database is opened: a bad window opens nothing
    result = compute_stats(runtime_of(ctx).database(), since=since_at, by=by.value)
    if json_output:
        render.emit_json(result)
        return
    render.note(f"[dim]{result['since']} .. {result['until']}, by {result['by']}[/dim]")
    for name, metric in result["metrics"].items():
        _metric_table(name, metric)


stats.__doc__ = _stats_help()

# metric -> (the figure charted over time, the columns shown)
_VIEWS: dict[str, tuple[str, tuple[str, ...]]] = {
    "subscription_creation": ("success_rate", ("attempts", "succeeded", "success_rate")),
    "payments": (
        "invoice_success_rate",
        (
            "invoices_succeeded",
            "invoices_failed",
            "invoice_success_rate",
            "charges_attempted",
            "charges_succeeded",
            "charge_success_rate",
        ),
    ),
    "webhook_processing": ("p95", ("events", "outcomes", "p50", "p95", "p99")),
    "failed_payments": ("failed_attempts", ("failed_attempts", "tenants")),
    "suspensions": ("total", ("billing", "manual", "total")),
    "rejected_deliveries": ("total", ("total",)),
    "stripe_errors": ("total", ("total",)),
}


_HEADERS = {
    "success_rate": "rate",
    "invoices_succeeded": "invoices ok",
    "invoices_failed": "failed",
    "invoice_success_rate": "invoice rate",
    "charges_attempted": "charges",
    "charges_succeeded": "ok",
    "charge_success_rate": "charge rate",
    "failed_attempts": "failed attempts",
}


def _metric_table(name: str, metric: dict[str, Any]) -> None:
    """One metric as a table; render.table lays it out, so no header or number is broken."""
    from billing_cli.cli import render

    charted, columns = _VIEWS[name]
    series = metric["series"]
    top = max((abs(row.get(charted) or 0) for row in series), default=0)
    headers = ["period", *(_HEADERS.get(c, c.replace("_", " ")) for c in columns), "chart"]
    rows = [
        [row["period"], *(_value(row.get(c), c) for c in columns), _bar(row.get(charted), top)]
        for row in series
    ]
    total = metric["total"]
    rows.append(["total", *(_value(total.get(c), c) for c in columns), _spark(series, charted)])
    title = f"{name.replace('_', ' ')} (chart: {_HEADERS.get(charted, charted)}): "
    render.table(title + metric["definition"], headers, rows)
    extra = {k: v for k, v in total.items() if k not in columns}
    if extra:
        render.out().print(
            "  " + ", ".join(f"{k.replace('_', ' ')}: {_cell(v, k)}" for k, v in extra.items())
        )


def _cell(value: Any, column: str) -> str:
    """A value for a line printed with markup."""
    from rich.markup import escape

    return escape(_value(value, column))


def _value(value: Any, column: str) -> str:
    """A value as people read it: a rate as a percentage, lists and records joined."""
    if value is None:
        return "-"
    if column.endswith("rate") and isinstance(value, float):
        return f"{value:.1%}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return "; ".join(" ".join(str(v) for v in item.values()) for item in value) or "-"
    return str(value)


def _bar(value: Any, top: float) -> str:
    """A horizontal bar, ``value`` against the series' largest."""
    if not isinstance(value, int | float) or top <= 0:
        return ""
    eighths = round(_BAR_WIDTH * 8 * value / top)
    return "█" * (eighths // 8) + (_BLOCKS[eighths % 8] if eighths % 8 else "")


def _spark(series: list[dict[str, Any]], key: str) -> str:
    """The whole series as one sparkline, oldest first (``·``: no figure that period; not a
    space, which would let the line wrap or be trimmed)."""
    values = [row.get(key) for row in series]
    numbers = [v for v in values if isinstance(v, int | float)]
    if not numbers:
        return ""
    low, high = min(numbers), max(numbers)
    span = (high - low) or 1
    return "".join(
        "·" if not isinstance(v, int | float) else _BLOCKS[1 + round(7 * (v - low) / span)]
        for v in values
    )


def check(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Evaluate the alert rules; exit 3 when any fires (0: all clear, 1: could not check).

    A rule fires when its figure is above its threshold (settings, see .env.example); one line
    per firing rule. The rules:

    \b
      signature_failures    webhook signature failures in the last hour
                            (BILLING_ALERT_SIGNATURE_FAILURES, 10)
      payment_failure_rate  failed share of invoice payments and one-off
                            charges over 24 h (BILLING_ALERT_PAYMENT_FAILURE_RATE
                            0.2, from BILLING_ALERT_PAYMENT_MIN_ATTEMPTS 5 tries)
      stripe_errors         Stripe API errors in the last hour
                            (BILLING_ALERT_STRIPE_ERRORS, 5)
      failed_events         webhook events left failed in the ledger
                            (BILLING_ALERT_FAILED_EVENTS, 0)
      dead_endpoint         no delivery at the endpoint while subscriptions are
                            live, for BILLING_ALERT_SILENCE_HOURS (24)
      unfinished_intents    Stripe writes open for over an hour
                            (BILLING_ALERT_OPEN_INTENTS, 0)
    """
    from billing_cli.cli import render
    from billing_cli.errors import EXIT_ALERT
    from billing_cli.services.observe.stats import run_checks

    runtime = runtime_of(ctx)
    results = run_checks(runtime.database(), runtime.settings())
    firing = [r for r in results if r.fired]
    if json_output:
        render.emit_json({"ok": not firing, "rules": [r.to_dict() for r in results]})
    elif firing:
        for result in firing:
            typer.echo(f"FIRING {result.rule}: {result.message}")
    else:
        typer.echo(f"all clear: {len(results)} rules checked")
    if firing:
        raise typer.Exit(EXIT_ALERT)
