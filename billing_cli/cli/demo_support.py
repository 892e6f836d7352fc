"""The support-desk chapter of ``billing demo``: a failed invoice, the card fixed, the invoice
retried with ``invoices pay``, a partial refund, and the payment history.

Invoice and payment ids are only known once Stripe made them, so this chapter looks them up
(through the gateway, as the commands do) between its steps. ``run_steps`` is handed in by the
tour rather than imported, so this module does not import the tour that calls it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

SLUG = "umbrella"
EMAIL = "ap@umbrella.test"
S = TypeVar("S")


def run_support_desk(
    run_steps: Callable[[Sequence[S]], None], step: Callable[[tuple[str, ...], str, int], S]
) -> None:
    """Run the chapter's commands with the tour's ``run_steps`` and its ``Step`` type; the tour
    has already started the sandbox and the webhook endpoint."""

    def cmd(args: tuple[str, ...], note: str = "", expect: int = 0) -> S:
        return step(args, note, expect)

    run_steps(
        (
            cmd(("tenants", "add", SLUG, "--name", "Umbrella", "--email", EMAIL)),
            cmd(
                ("payments", "methods", "attach", SLUG, "pm_card_chargeCustomerFail", "--default"),
                "the only card on file fails",
            ),
            cmd(
                ("subs", "create", SLUG, "--plan", "pro", "--trial-days", "0"),
                "so the first invoice fails: exit code 1, the subscription is incomplete",
                expect=1,
            ),
            cmd(("invoices", "list", SLUG), "support: which invoice failed?"),
            cmd(("payments", "list", SLUG), "...and why: the decline code"),
            cmd(
                ("payments", "methods", "attach", SLUG, "pm_card_visa", "--default"),
                "the customer fixed their card",
            ),
        )
    )
    invoice_id = _open_invoice()
    run_steps(
        (
            cmd(("invoices", "pay", invoice_id, "--dry-run"), "preview the retry"),
            cmd(("invoices", "pay", invoice_id), "retry it now, not in three days"),
        )
    )
    payment_id = _paid_payment()
    run_steps(
        (
            cmd(
                ("payments", "refund", payment_id, "--amount", "10.00", "--dry-run"),
                "a partial refund: the dry run shows the amount and what stays refundable",
            ),
            cmd(
                (
                    "payments",
                    "refund",
                    payment_id,
                    "--amount",
                    "10.00",
                    "--reason",
                    "requested_by_customer",
                ),
            ),
            cmd(
                ("payments", "refund", payment_id, "--amount", "45.00"),
                "more than is left is refused before anything is sent",
                expect=1,
            ),
            cmd(("payments", "list", SLUG), "the history: the decline, the payment, the refund"),
            cmd(("tenants", "show", SLUG), "the tenant, its subscription and its card"),
        )
    )


def _customer() -> str:
    from billing_cli.cli.runtime import Runtime

    runtime = Runtime()
    try:
        return runtime.gateway(dry_run=False).list_customers(email=EMAIL)[0].id
    finally:
        runtime.close()


def _open_invoice() -> str:
    from billing_cli.cli.runtime import Runtime

    runtime = Runtime()
    try:
        gateway = runtime.gateway(dry_run=False)
        (invoice,) = gateway.list_invoices(customer_id=_customer(), status="open", limit=1)
        return invoice.id
    finally:
        runtime.close()


def _paid_payment() -> str:
    from billing_cli.cli.runtime import Runtime

    runtime = Runtime()
    try:
        payments = runtime.gateway(dry_run=False).list_payment_history(customer_id=_customer())
        return next(p.id for p in payments if p.status == "succeeded")
    finally:
        runtime.close()
