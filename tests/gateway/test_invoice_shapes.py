"""Invoice previews in both API shapes: discounts, credit and dates read the same."""

from __future__ import annotations

from billing_cli.gateway import converters as conv


def test_current_shape_create_preview() -> None:
    preview = conv.invoice_preview(
        {
            "object": "invoice",
            "currency": "usd",
            "subtotal": 3000,
            "total": 2400,
            "amount_due": 1900,
            "starting_balance": -500,
            "next_payment_attempt": 1_767_225_600,
            "discounts": [{"id": "di_1", "source": {"coupon": "SPRING20", "type": "coupon"}}],
            "total_discount_amounts": [{"amount": 600, "discount": "di_1"}],
            "lines": {
                "data": [
                    {
                        "amount": 3000,
                        "description": "3 × Team",
                        "parent": {"subscription_item_details": {"proration": False}},
                        "pricing": {"price_details": {"price": "price_team"}},
                        "period": {"start": 1_767_225_600, "end": 1_769_904_000},
                    }
                ]
            },
        }
    )
    assert (preview.discount_amount, preview.discounts) == (600, ("SPRING20",))
    assert (preview.starting_balance, preview.amount_due, preview.total) == (-500, 1900, 2400)
    assert preview.lines[0].price_id == "price_team" and not preview.lines[0].proration
    assert preview.next_payment_attempt is not None


def test_old_shape_upcoming_invoice() -> None:
    preview = conv.invoice_preview(
        {
            "object": "invoice",
            "currency": "usd",
            "subtotal": 3000,
            "total": 2400,
            "amount_due": 2400,
            "discount": {"object": "discount", "coupon": {"id": "SPRING20", "percent_off": 20}},
            "subscription": "sub_1",
            "lines": {
                "data": [
                    {
                        "amount": 3000,
                        "proration": False,
                        "price": {"id": "price_team"},
                        "period": {"start": 1, "end": 2},
                    }
                ]
            },
        }
    )
    assert (preview.discount_amount, preview.discounts) == (600, ("SPRING20",))
    assert preview.lines[0].price_id == "price_team" and preview.total == 2400
