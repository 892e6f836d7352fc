"""Keeping a bulk command's Stripe requests under a rate (``subs migrate --rate``).

Why in the service and not only in the HTTP layer: Stripe answers a burst over its limit (25
requests/s in test mode, 100 live) with 429s, which the gateway's session retries with backoff,
but a bulk command that runs into them on every other request wastes its time budget and
Stripe's goodwill. Pacing the requests keeps it under the limit in the first place; a 429 that
still comes (another process on the same account) is retried as always.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """A token bucket of one token refilled at ``rate`` a second: requests evenly spaced.

    ``spend(n)`` takes n tokens, waiting first while the bucket is empty; a list that turned out
    to read several pages is paid for afterwards, so the next request waits for it.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._tokens = 1.0
        self._at = clock()
        self.spent = 0

    def spend(self, requests: int = 1) -> None:
        now = self._clock()
        self._tokens = min(1.0, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1.0:
            self._sleep((1.0 - self._tokens) / self.rate)
            self._tokens, self._at = 1.0, self._clock()
        self._tokens -= requests
        self.spent += requests
