"""The one exception family of the tool, each member carrying its exit code.

Services and the gateway raise these; the CLI catches ``BillingError`` in one place and turns it
into a single line on stderr. Messages are written for the operator who reads them at a terminal,
so each names the condition and, where there is one, the fix.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_ALERT = 3  # `billing check`: at least one alert rule fired


class BillingError(Exception):
    """Base of every error the tool reports to the operator."""

    exit_code: int = EXIT_FAILURE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(BillingError):
    """The command line itself is wrong (bad value, conflicting flags)."""

    exit_code = EXIT_USAGE


class ConfigError(BillingError):
    """The configuration is missing a value or is unsafe (a live key outside live mode)."""


class NotFound(BillingError):
    """A tenant, plan, subscription or event named on the command line does not exist."""


class Conflict(BillingError):
    """The requested change contradicts the current state (e.g. a second live subscription)."""


class DatabaseError(BillingError):
    """The tenant database is unreachable or failed a query."""


class DatabaseNotReady(DatabaseError):
    """The database is missing or its schema is not at the latest migration."""


class ConfirmationDeclined(BillingError):
    """The operator answered no to a live-mode confirmation prompt."""


class GatewayError(BillingError):
    """Stripe refused a request or could not be reached.

    ``ambiguous`` says whether Stripe may have acted although the call failed: a timeout, a
    cut response, a 5xx, a 409 or a 429 after every retry tells nothing about that. A write that
    ends so leaves its intent open, and re-running the command finishes it with the same key.
    """

    ambiguous: bool = False


class CardDeclined(GatewayError):
    """The card was declined; the message carries Stripe's decline code."""


class RateLimited(GatewayError):
    """Stripe answered 429 after the client's own retries."""

    ambiguous = True


class StripeServerError(GatewayError):
    """Stripe answered 5xx (or 409) after every retry: the request may or may not have acted."""

    ambiguous = True


class InvalidRequest(GatewayError):
    """Stripe rejected a parameter; the message names it."""


class NotFoundInStripe(InvalidRequest):
    """Stripe has no object with that id (deleted, or from another account or mode)."""


class AuthenticationFailed(GatewayError):
    """The API key was not accepted."""


class PermissionMissing(GatewayError):
    """A restricted key lacks the permission the request needs."""


class StripeUnreachable(GatewayError):
    """No answer from Stripe (network error or timeout) after retries."""

    ambiguous = True


class OutcomeUnknown(GatewayError):
    """A Stripe write ended without a definite answer; its intent stays open for a re-run."""

    ambiguous = True


class IdempotencyConflict(GatewayError):
    """An idempotency key was reused with different parameters."""


class WebhookError(BillingError):
    """A webhook payload was rejected (bad signature, malformed, wrong mode).

    ``reason`` is the short code the endpoint counts refusals by (``billing stats``, /metrics).
    """

    def __init__(self, message: str, *, reason: str = "malformed_body") -> None:
        super().__init__(message)
        self.reason = reason
