"""Money in and out: one-off charges and refunds (``charges``), the payment history, saved cards
and the card that pays (``methods``), invoices and their previews, and the one-step recovery after
a decline (``recovery``).

See docs/architecture.md, Layers.
"""
