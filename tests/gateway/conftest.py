"""Cassette set-up for the gateway's HTTP tests, and the gateway they run against.

By default the tests replay the cassettes in ``cassettes/gateway`` (``record_mode="none"``): no
request leaves the process, and a request the cassette does not hold fails the test. Recording
is switched on by the environment (see ``cassettes/README.md``):

* ``BILLING_RECORD=sandbox`` starts the local Stripe sandbox and re-records against it;
* ``BILLING_RECORD=stripe`` with ``STRIPE_SECRET_KEY=sk_test_...`` re-records against Stripe's
  test mode (a maintainer's job, never CI's).

Requests are matched on method, path and query only (not host, so cassettes recorded against a
local port replay anywhere; not body, which holds generated values). Keys never reach a cassette:
the identifying headers are dropped and any ``sk_``/``rk_``/``whsec_`` string is scrubbed.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import requests

from billing_cli.config import Settings
from billing_cli.gateway import make_gateway
from billing_cli.gateway.stripe_gateway import StripeGateway

RECORD = os.environ.get("BILLING_RECORD", "").strip().lower()
CASSETTE_DIR = Path(__file__).resolve().parents[2] / "cassettes" / "gateway"
REPLAY_API_BASE = "http://127.0.0.1:9"  # nothing listens there: in replay vcrpy answers
REPLAY_KEY = "sk_test_replay"
FILTERED_HEADERS = [
    "authorization",
    "idempotency-key",
    "user-agent",
    "x-stripe-client-user-agent",
    "x-stripe-client-telemetry",
]
_DROPPED_RESPONSE_HEADERS = {"idempotency-key", "original-request", "set-cookie"}
_SECRET = re.compile(rb"\b(sk|rk|pk)_(test|live)_[A-Za-z0-9]+|\bwhsec_[A-Za-z0-9]+")
_IDEMPOTENCY = re.compile(rb"billing:[a-z0-9_.\-]+:[0-9a-f]{32}")


def scrub_bytes(data: bytes) -> bytes:
    """Replace anything shaped like a key, a webhook secret or an idempotency key."""
    data = _SECRET.sub(b"<redacted secret>", data)
    return _IDEMPOTENCY.sub(b"<idempotency key>", data)


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in _DROPPED_RESPONSE_HEADERS:
            del headers[name]
    body = response.get("body", {})
    if isinstance(body.get("string"), bytes):
        body["string"] = scrub_bytes(body["string"])
    elif isinstance(body.get("string"), str):
        body["string"] = scrub_bytes(body["string"].encode()).decode()
    return response


def _scrub_request(request: Any) -> Any:
    if isinstance(request.body, bytes):
        request.body = scrub_bytes(request.body)
    elif isinstance(request.body, str):
        request.body = scrub_bytes(request.body.encode()).decode()
    return request


@pytest.fixture(scope="session")
def record_mode() -> str:
    """Replay only, unless BILLING_RECORD asks for a fresh recording."""
    if not RECORD:
        return "none"
    if RECORD not in {"sandbox", "stripe"}:
        raise pytest.UsageError("BILLING_RECORD must be 'sandbox' or 'stripe'")
    return os.environ.get("BILLING_RECORD_MODE", "rewrite")


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(CASSETTE_DIR)


@pytest.fixture
def vcr_config() -> dict[str, Any]:
    return {
        "filter_headers": FILTERED_HEADERS,
        "match_on": ["method", "path", "query"],
        "before_record_response": _scrub_response,
        "before_record_request": _scrub_request,
        "decode_compressed_response": True,
    }


@dataclass(frozen=True)
class Target:
    """Where the recorded HTTP goes: the sandbox, Stripe test mode, or nowhere (replay)."""

    api_base: str
    api_key: str
    tag: str


@pytest.fixture(scope="session")
def stripe_target() -> Iterator[Target]:
    if RECORD == "sandbox":
        from stripe_sandbox import SANDBOX_SECRET_KEY, Sandbox

        with Sandbox() as sandbox:
            yield Target(sandbox.api_base, SANDBOX_SECRET_KEY, uuid.uuid4().hex[:8])
    elif RECORD == "stripe":
        key = os.environ.get("STRIPE_SECRET_KEY", "")
        if not key.startswith(("sk_test_", "rk_test_")):
            raise pytest.UsageError("BILLING_RECORD=stripe needs a test-mode STRIPE_SECRET_KEY")
        yield Target("", key, uuid.uuid4().hex[:8])
    else:
        yield Target(REPLAY_API_BASE, REPLAY_KEY, "replay")


class GuardedSession(requests.Session):
    """A session that refuses any host but 127.0.0.1 (unless recording against Stripe) and
    remembers each request it sent, so tests can count POSTs."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []
        self.idempotency_keys: list[str | None] = []  # in memory only, never written anywhere

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        host = urlparse(request.url or "").hostname
        if host != "127.0.0.1" and RECORD != "stripe":
            raise AssertionError(f"test tried to reach {host}; only 127.0.0.1 is allowed")
        self.sent.append((request.method or "", urlparse(request.url or "").path))
        self.idempotency_keys.append(request.headers.get("Idempotency-Key"))
        return super().send(request, **kwargs)

    def writes(self) -> list[tuple[str, str]]:
        """Requests that change state (create_preview is a POST but only reads)."""
        return [
            (method, path)
            for method, path in self.sent
            if method != "GET" and path != "/v1/invoices/create_preview"
        ]


@dataclass
class Wired:
    gateway: StripeGateway
    session: GuardedSession
    tag: str


@pytest.fixture
def wired(stripe_target: Target) -> Wired:
    """A real StripeGateway over a GuardedSession, pointed at the recording target."""
    settings = Settings(
        stripe_secret_key=stripe_target.api_key,
        stripe_api_base=stripe_target.api_base,
        stripe_max_network_retries=0,
    )
    session = GuardedSession()
    gateway = make_gateway(settings, session=session)
    assert isinstance(gateway, StripeGateway)
    return Wired(gateway, session, stripe_target.tag)
