"""Stripe's exceptions become one-line BillingErrors, translated and logged in one place."""

from __future__ import annotations

import logging

import pytest
import stripe

from billing_cli.errors import (
    EXIT_FAILURE,
    AuthenticationFailed,
    CardDeclined,
    GatewayError,
    IdempotencyConflict,
    InvalidRequest,
    PermissionMissing,
    RateLimited,
    StripeServerError,
    StripeUnreachable,
)
from billing_cli.gateway.calls import (
    add_error_sink,
    for_intent,
    remove_error_sink,
    scrub,
    stripe_call,
    translate,
)

KEY = "sk_test_51AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


def card_error(decline_code: str | None) -> stripe.CardError:
    body = {
        "error": {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": decline_code,
            "message": "Your card was declined.",
        }
    }
    return stripe.CardError(
        "Your card was declined.", None, "card_declined", http_status=402, json_body=body
    )


CASES: list[tuple[stripe.StripeError, type[GatewayError], str]] = [
    (
        card_error("insufficient_funds"),
        CardDeclined,
        "card declined: insufficient_funds: Your card was declined.",
    ),
    (card_error(None), CardDeclined, "card declined: card_declined: Your card was declined."),
    (stripe.RateLimitError("Too many requests", http_status=429), RateLimited, "rate limit"),
    (
        stripe.InvalidRequestError("No such price: 'price_x'", "items[0][price]", http_status=400),
        InvalidRequest,
        "Stripe rejected the request (parameter items[0][price]): No such price: 'price_x'",
    ),
    (
        stripe.AuthenticationError(f"Invalid API Key provided: {KEY}", http_status=401),
        AuthenticationFailed,
        "Stripe did not accept the API key",
    ),
    (
        stripe.PermissionError(
            "The provided key 'rk_test_abc123XYZ' does not have the required permissions",
            http_status=403,
        ),
        PermissionMissing,
        "lacks a permission",
    ),
    (
        stripe.APIConnectionError(
            "Unexpected error communicating with Stripe. If this problem persists,\nlet us know."
        ),
        StripeUnreachable,
        "could not reach Stripe",
    ),
    (
        stripe.IdempotencyError(
            "Keys for idempotent requests can only be used with the same parameters. "
            "Try a key other than 'billing:customer.create:0123456789abcdef0123456789abcdef'.",
            http_status=400,
        ),
        IdempotencyConflict,
        "idempotency key was already used with different parameters",
    ),
    (stripe.APIError("Something went wrong", http_status=500), StripeServerError, "(HTTP 500)"),
    (stripe.StripeError("odd", http_status=418), GatewayError, "(HTTP 418)"),
]


@pytest.mark.parametrize(
    ("exc", "ambiguous"),
    [
        (stripe.APIError("boom", http_status=500), True),
        (stripe.APIConnectionError("timed out"), True),
        (stripe.RateLimitError("slow down", http_status=429), True),
        (stripe.CardError("declined", "card", "card_declined", http_status=402), False),
        (stripe.InvalidRequestError("bad", "amount", http_status=400), False),
    ],
)
def test_only_failures_that_may_have_acted_are_ambiguous(
    exc: stripe.StripeError, ambiguous: bool
) -> None:
    """An ambiguous error leaves a write's intent open for a safe re-run; others close it."""
    assert translate(exc).ambiguous is ambiguous


@pytest.mark.parametrize(("exc", "expected", "text"), CASES)
def test_translation(exc: stripe.StripeError, expected: type[GatewayError], text: str) -> None:
    error = translate(exc)
    assert type(error) is expected
    assert error.exit_code == EXIT_FAILURE
    message = str(error)
    assert text in message
    assert "\n" not in message
    for secret in ("sk_test_", "rk_test_abc", "billing:customer.create"):
        assert secret not in message


def test_scrub_masks_keys_secrets_and_idempotency_keys() -> None:
    text = f"key {KEY} secret whsec_abcDEF123 idem billing:x.y:{'a' * 32}\n next"
    assert scrub(text) == "key sk_… secret whsec_… idem <idempotency key> next"


def test_stripe_call_translates_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="billing.stripe")
    with pytest.raises(InvalidRequest) as info, stripe_call("customers.retrieve", customer="cus_x"):
        raise stripe.InvalidRequestError("No such customer: 'cus_x'", "id", http_status=404)
    assert isinstance(info.value.__cause__, stripe.InvalidRequestError)
    with stripe_call("products.list"):
        pass
    lines = [r.getMessage() for r in caplog.records if r.name == "billing.stripe"]
    assert lines[0].startswith("stripe customers.retrieve customer=cus_x -> InvalidRequestError (")
    assert lines[1].startswith("stripe products.list -> ok (")
    assert all(line.endswith("ms)") for line in lines)
    assert caplog.records[0].levelno == logging.WARNING


def test_stripe_call_lets_other_exceptions_through() -> None:
    with pytest.raises(KeyError), stripe_call("x"):
        raise KeyError("bug")


def test_stripe_call_reports_errors_to_the_sinks_but_not_declines() -> None:
    """Issue 18, point 9: reads count too; a journal call counts under its intent's step; a
    decline and a lookup of an object Stripe does not have are answers, not API errors."""
    seen: list[tuple[str, str]] = []

    def sink(operation: str, error_class: str) -> None:
        seen.append((operation, error_class))

    add_error_sink(sink)
    try:
        with pytest.raises(GatewayError), stripe_call("customers.list"):
            raise stripe.AuthenticationError("Invalid API Key provided", http_status=401)
        with pytest.raises(GatewayError), stripe_call("payment_intents.create"):
            raise stripe.CardError("declined", None, "card_declined", http_status=402)
        with pytest.raises(GatewayError), stripe_call("coupons.retrieve"):
            raise stripe.InvalidRequestError(
                "No such coupon: 'NOPE'", "id", code="resource_missing", http_status=404
            )
        with (
            pytest.raises(GatewayError),
            for_intent(intent_id="7", step="payment.charge.payment", tenant="acme"),
            stripe_call("payment_intents.create"),
        ):
            raise stripe.APIConnectionError("connection reset")
    finally:
        remove_error_sink(sink)
    assert seen == [
        ("customers.list", "AuthenticationFailed"),
        ("payment.charge.payment", "StripeUnreachable"),
    ]
