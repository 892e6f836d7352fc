"""How an invoice preview is shown to people: its lines, discounts, credit and total."""

from __future__ import annotations

from billing_cli.cli import render
from billing_cli.gateway import InvoicePreview
from billing_cli.money import format_money
from billing_cli.timeparse import iso


def invoice_preview(title: str, preview: InvoicePreview) -> None:
    """The lines as Stripe previewed them, then discount, credit and the amount due."""
    money = preview.currency
    render.table(
        title,
        ("line", "period", "amount"),
        (
            (
                line.description or "",
                f"{iso(line.period_start) or '?'} .. {iso(line.period_end) or '?'}",
                format_money(line.amount, line.currency or money),
            )
            for line in preview.lines
        ),
        empty="no lines",
    )
    parts = []
    when = preview.next_payment_attempt or preview.period_end
    if when is not None:
        parts.append(f"date: {iso(when)}")
    if preview.discount_amount:
        coupons = f" ({', '.join(preview.discounts)})" if preview.discounts else ""
        parts.append(f"discount: -{format_money(preview.discount_amount, money)}{coupons}")
    if preview.starting_balance:
        parts.append(f"balance applied: {format_money(preview.starting_balance, money)}")
    if preview.proration_amount:
        parts.append(f"proration: {format_money(preview.proration_amount, money)}")
    parts.append(f"amount due: {format_money(preview.amount_due, money)}")
    render.out().print("; ".join(parts))
