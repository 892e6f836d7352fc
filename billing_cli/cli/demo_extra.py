"""The optional ``sandbox`` extra that ``billing demo`` and ``billing sandbox`` run on.

The local Stripe (the ``stripe_sandbox`` package and the localstripe and aiohttp it serves
with) is not part of a production install: ``pip install billing-cli`` leaves its
dependencies out. These two commands check for it before starting anything, so that without it
they fail with one line naming the fix rather than a traceback or a server that never starts.
Only they import this module, and only when they run.
"""

from __future__ import annotations

from billing_cli.errors import BillingError

INSTALL_HINT = "pip install 'billing-cli[sandbox]'"


class SandboxExtraMissing(BillingError):
    """``stripe_sandbox`` or what its server needs cannot be imported."""


def require_sandbox(command: str) -> None:
    """Raise :class:`SandboxExtraMissing` (exit 1) unless the sandbox can run here.

    Checks without importing localstripe or aiohttp (``find_spec``), so the commands that do
    have the extra pay nothing for the check.
    """
    try:
        import stripe_sandbox
    except ImportError:
        ready = False
    else:
        ready = not stripe_sandbox.missing_dependencies()
    if not ready:
        raise SandboxExtraMissing(f"{command} needs the sandbox extra: {INSTALL_HINT}")
