"""Tests of the Stripe gateway: converters, error translation, idempotency, dry run, HTTP."""
