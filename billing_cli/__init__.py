"""billing: a command-line billing administration tool for multi-tenant SaaS products on Stripe.

The package is layered one way: ``cli -> services -> (gateway | repository) -> models, errors,
config``. Only :mod:`billing_cli.gateway` imports stripe and only :mod:`billing_cli.repository`
opens database sessions.
"""

__version__ = "0.1.0"
