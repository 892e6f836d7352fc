"""What is sold: the plans table (``plans``, ``plan_catalog``), plans as code (``plan_files``), the
sync of plans to Stripe Products and Prices (``plan_sync``), coupons and discounts.

See docs/architecture.md, Layers.
"""
