"""Invoice previews as people and scripts see them: dates in UTC, money in major units."""

from __future__ import annotations

from typing import Any

from billing_cli.gateway import InvoicePreview
from billing_cli.money import format_money
from billing_cli.timeparse import iso


def preview_view(preview: InvoicePreview) -> dict[str, Any]:
    """Stripe's preview of an invoice: when, its lines, its discounts and credit, the total.

    ``amount_due`` is what will be charged (after the customer's credit balance); the proration
    part is shown separately because that is what a change itself costs.
    """
    money = preview.currency
    return {
        "date": iso(preview.next_payment_attempt or preview.period_end),
        "currency": money,
        "subtotal": preview.subtotal,
        "discount_amount": preview.discount_amount,
        "discounts": list(preview.discounts),
        "total": preview.total,
        "starting_balance": preview.starting_balance,
        "amount_due": preview.amount_due,
        "proration_amount": preview.proration_amount,
        "amount_due_display": format_money(preview.amount_due, money),
        "proration_display": format_money(preview.proration_amount, money),
        "lines": [
            {
                "description": line.description,
                "amount": line.amount,
                "amount_display": format_money(line.amount, line.currency or money),
                "proration": line.proration,
                "price_id": line.price_id,
                "period_start": iso(line.period_start),
                "period_end": iso(line.period_end),
            }
            for line in preview.lines
        ],
    }
