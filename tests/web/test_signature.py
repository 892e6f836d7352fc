"""``verify_signature``: Stripe's signature rules, checked against our own signer."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from billing_cli.errors import WebhookError
from billing_cli.gateway.webhook_signature import verify_signature
from tests.signing import sign

SECRET = "whsec_unit_0123456789abcdefghijklmnop"
BODY = json.dumps({"id": "evt_1", "type": "invoice.paid", "data": {"object": {}}}).encode()


def test_a_payload_signed_as_stripe_signs_is_accepted_and_parsed() -> None:
    assert verify_signature(BODY, sign(BODY, SECRET), SECRET)["id"] == "evt_1"


def test_any_matching_v1_signature_is_enough_as_during_a_secret_rotation() -> None:
    good = sign(BODY, SECRET)
    old = sign(BODY, "whsec_old_secret_0123456789")
    t, v1 = good.split(",")
    header = f"{t},{old.split(',')[1]},{v1},v0=ignored"
    assert verify_signature(BODY, header, SECRET)["type"] == "invoice.paid"


def test_a_timestamp_within_the_tolerance_is_accepted() -> None:
    header = sign(BODY, SECRET, timestamp=int(time.time()) - 290)
    assert verify_signature(BODY, header, SECRET)["id"] == "evt_1"


@pytest.mark.parametrize(
    ("body", "make_header", "reason"),
    [
        (BODY, lambda: None, "missing Stripe-Signature header"),
        (BODY, lambda: "", "missing Stripe-Signature header"),
        (BODY, lambda: "garbage", "malformed Stripe-Signature header"),
        (BODY, lambda: "t=notanumber,v1=abc", "malformed Stripe-Signature header"),
        (BODY, lambda: f"t={int(time.time())}", "no v1 signature"),
        (BODY, lambda: sign(BODY, "whsec_someone_else_0123456789"), "signature does not match"),
        (BODY + b" ", lambda: sign(BODY, SECRET), "signature does not match"),
        (BODY, lambda: sign(BODY, SECRET, timestamp=int(time.time()) - 301), "timestamp outside"),
        (b"{not json", lambda: sign(b"{not json", SECRET), "not valid JSON"),
        (b"[1, 2]", lambda: sign(b"[1, 2]", SECRET), "not an object"),
        (b'"evt"', lambda: sign(b'"evt"', SECRET), "not an object"),
        (b"\xff\xfe", lambda: sign(b"\xff\xfe", SECRET), "not UTF-8"),
        (b"[" * 100_000, lambda: sign(b"[" * 100_000, SECRET), "not valid JSON"),
    ],
    ids=[
        "no header",
        "empty header",
        "garbage header",
        "bad timestamp",
        "no v1",
        "other secret",
        "tampered body",
        "stale",
        "not json",
        "array",
        "string",
        "not utf-8",
        "deeply nested",
    ],
)
def test_every_bad_delivery_is_one_webhook_error_that_never_shows_the_secret(
    body: bytes, make_header: Callable[[], str | None], reason: str
) -> None:
    """Headers are signed when the test runs, not when it is collected: a long suite must not
    turn every signature stale (300 s) before the cases that are not about staleness run."""
    with pytest.raises(WebhookError) as caught:
        verify_signature(body, make_header(), SECRET)
    message = str(caught.value)
    assert reason in message
    assert SECRET not in message
    assert "\n" not in message


def test_an_unconfigured_secret_refuses_everything() -> None:
    with pytest.raises(WebhookError, match="no webhook secret configured"):
        verify_signature(BODY, sign(BODY, ""), "")


def test_the_tolerance_is_configurable() -> None:
    header = sign(BODY, SECRET, timestamp=int(time.time()) - 100)
    with pytest.raises(WebhookError, match=r"tolerance \(60 s\)"):
        verify_signature(BODY, header, SECRET, tolerance=60)


# -- a secret roll: several secrets; the tolerance both ways ------------------------------------

NEW = "whsec_rolled_9876543210zyxwvutsrqpon"


@pytest.mark.parametrize("signer", [SECRET, NEW], ids=["old secret", "new secret"])
def test_during_a_roll_a_delivery_signed_with_either_secret_is_accepted(signer: str) -> None:
    assert verify_signature(BODY, sign(BODY, signer), [SECRET, NEW])["id"] == "evt_1"


def test_during_a_roll_a_delivery_signed_with_neither_secret_is_refused() -> None:
    header = sign(BODY, "whsec_someone_else_0123456789")
    with pytest.raises(WebhookError, match="signature does not match") as caught:
        verify_signature(BODY, header, [SECRET, NEW])
    assert caught.value.reason == "bad_signature"


def test_during_a_roll_a_stale_delivery_is_called_stale_whichever_secret_signed_it() -> None:
    header = sign(BODY, NEW, timestamp=int(time.time()) - 301)
    with pytest.raises(WebhookError, match="timestamp outside") as caught:
        verify_signature(BODY, header, [SECRET, NEW])
    assert caught.value.reason == "stale_timestamp"


def test_a_timestamp_up_to_the_tolerance_in_the_future_is_accepted() -> None:
    header = sign(BODY, SECRET, timestamp=int(time.time()) + 290)
    assert verify_signature(BODY, header, SECRET)["id"] == "evt_1"


@pytest.mark.parametrize("ahead", [301, 86_400 * 365])
def test_a_timestamp_beyond_the_tolerance_in_the_future_is_refused(ahead: int) -> None:
    header = sign(BODY, SECRET, timestamp=int(time.time()) + ahead)
    with pytest.raises(WebhookError, match=r"tolerance \(300 s\): in the future") as caught:
        verify_signature(BODY, header, SECRET)
    assert caught.value.reason == "stale_timestamp"


def test_a_future_timestamp_with_a_wrong_signature_is_a_bad_signature() -> None:
    header = sign(BODY, "whsec_someone_else_0123456789", timestamp=int(time.time()) + 9_999)
    with pytest.raises(WebhookError, match="signature does not match"):
        verify_signature(BODY, header, SECRET)
