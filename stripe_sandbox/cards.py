"""Payment-method test cards and declines, as Stripe's testing docs describe them.

localstripe behaviours replaced (:func:`install`):
- ``PaymentMethod._try_get_canonical_test_article``: adds ``pm_card_chargeDeclined``,
  ``pm_card_chargeDeclinedInsufficientFunds`` (and the ``pm_card_visa_`` spellings),
  ``..LostCard``, ``..StolenCard``, ``..ExpiredCard``, ``..IncorrectCvc``,
  ``..ProcessingError``, ``pm_card_mastercard``.
- ``PaymentMethod._charging_is_declined``: cards that Stripe declines at attach time also
  decline when charged directly (localstripe charged them successfully).
- ``Charge._set_auth_failure`` / ``Charge._raise_failure``: failures carry the card's
  ``failure_code`` and ``decline_code`` and answer HTTP 402 with ``type=card_error`` (which
  stripe-python raises as ``stripe.CardError``), plus ``charge`` and ``payment_intent``.
- ``PaymentIntent.last_payment_error``: adds ``type`` and ``decline_code``.
"""

from __future__ import annotations

from typing import Any

from localstripe import resources as ls

from stripe_sandbox.common import _error

# card number -> (failure code, decline code, message), per Stripe's testing docs.
_DECLINES: dict[str, tuple[str, str | None, str]] = {
    "4000000000000002": ("card_declined", "generic_decline", "Your card was declined."),
    "4000000000000341": ("card_declined", "generic_decline", "Your card was declined."),
    "4000000000009995": (
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    "4000000000009987": ("card_declined", "lost_card", "Your card was declined."),
    "4000000000009979": ("card_declined", "stolen_card", "Your card was declined."),
    "4000000000000069": ("expired_card", "expired_card", "Your card has expired."),
    "4000000000000127": (
        "incorrect_cvc",
        "incorrect_cvc",
        "Your card's security code is incorrect.",
    ),
    "4000000000000119": (
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
    "4242424242424241": ("incorrect_number", None, "Your card number is incorrect."),
}


_CANONICAL_CARDS = {
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_visa_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_visa_chargeDeclinedLostCard": "4000000000009987",
    "pm_card_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_visa_chargeDeclinedStolenCard": "4000000000009979",
    "pm_card_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_visa_chargeDeclinedExpiredCard": "4000000000000069",
    "pm_card_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_visa_chargeDeclinedIncorrectCvc": "4000000000000127",
    "pm_card_chargeDeclinedProcessingError": "4000000000000119",
    "pm_card_visa_chargeDeclinedProcessingError": "4000000000000119",
    "pm_card_mastercard": "5555555555554444",
}


def _card_number_of(payment_method_id: str | None) -> str:
    if not payment_method_id:
        return ""
    pm = ls.store.get(f"payment_method:{payment_method_id}") or ls.store.get(
        f"card:{payment_method_id}"
    )
    return str(getattr(pm, "_card_number", ""))


def _decline_for(payment_method_id: str | None) -> tuple[str, str | None, str]:
    return _DECLINES.get(
        _card_number_of(payment_method_id),
        ("card_declined", "generic_decline", "Your card was declined."),
    )


def install() -> None:
    """Patch localstripe's payment methods, charges and payment intents (called once)."""
    original_canonical = ls.PaymentMethod._try_get_canonical_test_article.__func__

    def canonical(cls: Any, pm_id: str) -> Any:
        number = _CANONICAL_CARDS.get(pm_id)
        if number is None:
            return original_canonical(cls, pm_id)
        card = {"number": number, "exp_month": "12", "exp_year": "2034", "cvc": "123"}
        pm = ls.PaymentMethod(type="card", card=card)
        if number.startswith("5"):
            pm.card["brand"] = "mastercard"
        return pm

    ls.PaymentMethod._try_get_canonical_test_article = classmethod(canonical)

    original_declined = ls.PaymentMethod._charging_is_declined

    def charging_is_declined(self: Any) -> bool:
        if getattr(self, "type", None) == "card" and self._card_number in _DECLINES:
            return True
        return bool(original_declined(self))

    ls.PaymentMethod._charging_is_declined = charging_is_declined

    def set_auth_failure(self: Any) -> None:
        code, decline_code, message = _decline_for(self.payment_method)
        self.status = "failed"
        self.failure_code = code
        self.failure_message = message
        self._decline_code = decline_code
        self.outcome = {
            "network_status": "declined_by_network",
            "reason": decline_code,
            "risk_level": "normal",
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined",
        }

    ls.Charge._set_auth_failure = set_auth_failure

    def raise_failure(self: Any) -> None:
        pi = ls.store.get(f"payment_intent:{self.payment_intent}") if self.payment_intent else None
        raise _error(
            402,
            self.failure_message,
            code=self.failure_code,
            type_="card_error",
            decline_code=getattr(self, "_decline_code", None),
            charge=self.id,
            payment_intent=pi._export() if pi is not None else None,
            payment_method={"id": self.payment_method, "object": "payment_method"},
        )

    ls.Charge._raise_failure = raise_failure

    original_last_error = ls.PaymentIntent.last_payment_error.fget

    def last_payment_error(self: Any) -> Any:
        error = original_last_error(self)
        charge = self.latest_charge
        if error is not None and charge is not None and "charge" in error:
            error["type"] = "card_error"
            error["decline_code"] = getattr(charge, "_decline_code", None)
            error["payment_method"] = {"id": charge.payment_method, "object": "payment_method"}
        return error

    ls.PaymentIntent.last_payment_error = property(last_payment_error)
