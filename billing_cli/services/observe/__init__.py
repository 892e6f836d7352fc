"""What operators watch and what customers are told: Stripe error and refusal counters, ``billing
stats`` and ``check``, and the notification outbox checked at send time and mailed (``notices``,
``notice_check``, ``notify``).

See docs/architecture.md, Layers.
"""
