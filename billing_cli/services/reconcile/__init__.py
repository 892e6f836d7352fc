"""Local rows against Stripe: ``billing reconcile`` (``compare``), the drift it finds, what Stripe
holds for each tenant, and ``subs refresh``, which pulls one tenant back in line.

See docs/architecture.md, Layers.
"""
