"""The only code that opens database sessions; query functions take keyword-only arguments.

``Database`` (engine, transactions, readiness checks) lives in :mod:`.database`; each table's
queries live in a module of their own (``tenants``, ``plans``, ``subscriptions``, ``audit``,
``events``, ``notifications``).
"""

from billing_cli.repository.database import Database

__all__ = ["Database"]
