"""The HTTP session under stripe-python: bounded time per attempt, and retries Stripe advises.

stripe-python 16 retries connection errors, 409 and 5xx, but not a plain 429, and its default
time limit is 80 s per attempt, so a hanging Stripe could hold a command for four minutes. This
session does the retrying instead (the client is built with ``max_network_retries=0``):

- retried: connection errors, timeouts, a response cut while its body was read, 409, 429 and
  5xx, unless Stripe says ``Stripe-Should-Retry: false``; never any other 4xx (unless Stripe
  says ``Stripe-Should-Retry: true``);
- waits grow exponentially with full jitter, and ``Retry-After`` is honoured when Stripe sends
  it;
- every attempt has a time limit (``timeout``) and all attempts together a budget
  (``budget``): past it the last error or answer is returned as it is;
- the request is sent again exactly as it was, headers included, so a write keeps its
  ``Idempotency-Key`` and Stripe answers a repeat with its first result instead of acting twice.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

import requests

logger = logging.getLogger("billing.stripe")

RETRYABLE_STATUSES = frozenset({409, 429})
MAX_BACKOFF_SECONDS = 8.0


class RetryingSession(requests.Session):
    """A ``requests.Session`` that retries what Stripe says is safe to retry, within a budget."""

    def __init__(
        self,
        *,
        max_retries: int = 2,
        timeout: float = 20.0,
        budget: float = 45.0,
        base_delay: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        super().__init__()
        self.max_retries = max_retries
        self.timeout = timeout
        self.budget = budget
        self.base_delay = base_delay
        self._sleep = sleep
        self._jitter = jitter

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        deadline = time.monotonic() + self.budget
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            kwargs["timeout"] = max(0.05, min(self.timeout, remaining))
            try:
                response = super().request(method, url, *args, **kwargs)
                _ = response.content  # a body cut mid-way fails here, inside the retry loop
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as error:
                delay = self._backoff(attempt)
                if not self._may_retry(attempt, delay, deadline):
                    raise
                logger.info("stripe %s %s: %s; retrying", method, _path(url), type(error).__name__)
            else:
                if not should_retry(response):
                    return response
                delay = retry_after(response) or self._backoff(attempt)
                if not self._may_retry(attempt, delay, deadline):
                    return response
                logger.info(
                    "stripe %s %s: HTTP %d; retrying", method, _path(url), response.status_code
                )
            self._sleep(delay)
            attempt += 1

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: a wait in [0, base * 2**attempt]."""
        ceiling = min(MAX_BACKOFF_SECONDS, self.base_delay * (2**attempt))
        return float(ceiling * self._jitter())

    def _may_retry(self, attempt: int, delay: float, deadline: float) -> bool:
        return attempt < self.max_retries and time.monotonic() + delay < deadline


def should_retry(response: requests.Response) -> bool:
    """Stripe's ``Stripe-Should-Retry`` header wins; else 409, 429 and 5xx are retried."""
    advice = response.headers.get("Stripe-Should-Retry")
    if advice == "true":
        return True
    if advice == "false":
        return False
    return response.status_code in RETRYABLE_STATUSES or response.status_code >= 500


def retry_after(response: requests.Response) -> float | None:
    """Seconds from a numeric ``Retry-After`` header (capped), or None."""
    raw = response.headers.get("Retry-After", "")
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_BACKOFF_SECONDS * 4)


def _path(url: str) -> str:
    """The URL's path only: query strings can carry ids but never belong in a log line."""
    from urllib.parse import urlsplit

    return urlsplit(url).path
