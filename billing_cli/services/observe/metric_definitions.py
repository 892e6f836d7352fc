"""What each metric of ``billing stats`` means: one sentence each, shown in ``--help`` and in
the JSON output. Kept apart so the command's help needs no database imports."""

from __future__ import annotations

# What each metric means; `billing stats --help` shows these.
DEFINITIONS = {
    "subscription_creation": "share of `subs create` runs (audit trail) that left the "
    "subscription active or trialing; the rest came back incomplete (first payment failed)",
    "payments": "invoices: invoice.payment_succeeded events / (those + invoice.payment_failed "
    "events); one-off charges: `payments charge` runs Stripe reported succeeded / all runs",
    "webhook_processing": "ledger rows received, per outcome, and p50/p95/p99 of their "
    "processing time (engine time from receipt to the row's outcome, in ms, floored to two "
    "significant digits)",
    "failed_payments": "invoice.payment_failed events received, and the tenants notified of one",
    "suspensions": "tenant suspensions by cause (billing: payments; manual: a person); rate: "
    "tenants suspended in the window / tenants active at any time in it (active now, or "
    "suspended in the window)",
    "rejected_deliveries": "deliveries the endpoint refused (400/413), by reason",
    "stripe_errors": "Stripe API errors, by operation and error class",
}
