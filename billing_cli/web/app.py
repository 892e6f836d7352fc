"""The Stripe webhook endpoint as an ASGI app: verify, hand to the event engine, answer.

Why Starlette + uvicorn: the endpoint is two routes, so it needs a small, maintained ASGI toolkit
rather than a framework with its own ORM or settings (Starlette: routing, streaming request
bodies, a thread pool for sync code), and a maintained production server that handles
keep-alive, concurrent connections and SIGTERM/Ctrl-C shutdown (uvicorn). Being plain ASGI, the
app from :func:`create_app` also mounts in an operator's existing ASGI server or application.

What a delivery goes through, in order, and what each failure answers (DESIGN.md section 4):

1. the body is read in chunks and refused with 413 past ``max_body_bytes`` (a declared
   ``Content-Length`` over the cap is refused before reading anything);
2. the ``Stripe-Signature`` is checked (300 s tolerance) and the body parsed: any failure is 400
   and one log line, and nothing reaches the engine or the database;
3. :meth:`WebhookEngine.process` runs in a worker thread (it is sync SQLAlchemy), at most
   ``concurrency`` at a time per process (see :func:`create_app`): a
   ``WebhookError`` (malformed event, livemode mismatch) is 400; a ``failed`` outcome, or any
   other error, is 500 so that Stripe retries; processed, ignored and skipped are 200.

Each delivery is logged on ``billing.webhooks`` with event id, type, status and milliseconds.
Nothing here touches the database or Stripe itself: the engine owns the ledger, the gateway owns
the signature check.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billing_cli.errors import BillingError, ConfigError, UsageError, WebhookError
from billing_cli.gateway.webhook_signature import load_verifier, verify_signature

if TYPE_CHECKING:
    from billing_cli.services.webhooks import EventOutcome, WebhookEngine

DEFAULT_PATH = "/webhooks/stripe/"
DEFAULT_MAX_BODY_BYTES = 256 * 1024
SIGNATURE_TOLERANCE_SECONDS = 300
# Deliveries in flight per process on PostgreSQL: two per core (one waiting on the database
# while one runs Python), at most 8 (under the connection pool's 15). Measured with
# bench/serve.py on 2 cores at a steady 300 deliveries/s: p99 10-22 ms with 2 or 4 in
# flight, 63 ms with 8 (threads contending for the GIL).
DEFAULT_CONCURRENCY = min(8, 2 * (os.cpu_count() or 1))

logger = logging.getLogger("billing.webhooks")

# Outcome status -> HTTP status. "failed" is 500 so that Stripe delivers the event again.
_HTTP_STATUS = {
    "processed": 200,
    "ignored": 200,
    "deferred": 200,  # parked in the ledger: applied once its customer is linked
    "skipped": 200,
    "failed": 500,
}


class _BodyTooLarge(Exception):
    pass


class WebhookEndpoint:
    """The POST handler, holding the engine, the secret and the body cap."""

    def __init__(
        self, *, engine: WebhookEngine, webhook_secret: str, max_body_bytes: int, concurrency: int
    ) -> None:
        self._engine = engine
        self._secret = webhook_secret
        self._max_body_bytes = max_body_bytes
        self._concurrency = concurrency
        self._limiter_of_loop: anyio.CapacityLimiter | None = None

    @property
    def _limiter(self) -> anyio.CapacityLimiter:
        # Created on first use, inside the server's event loop (anyio wants one there).
        if self._limiter_of_loop is None:
            self._limiter_of_loop = anyio.CapacityLimiter(self._concurrency)
        return self._limiter_of_loop

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            body = await self._read_body(request)
        except _BodyTooLarge:
            logger.warning("rejected delivery: body over %d bytes (413)", self._max_body_bytes)
            return _error(413, f"body exceeds {self._max_body_bytes} bytes")
        try:
            event = verify_signature(
                body,
                request.headers.get("stripe-signature"),
                self._secret,
                tolerance=SIGNATURE_TOLERANCE_SECONDS,
            )
        except WebhookError as error:
            logger.warning("rejected delivery: %s (400)", error)
            return _error(400, str(error))
        event_id = _text(event.get("id"))
        event_type = _text(event.get("type"))
        try:
            outcome: EventOutcome = await anyio.to_thread.run_sync(
                functools.partial(self._engine.process, event, source="endpoint"),
                limiter=self._limiter,
            )
        except WebhookError as error:
            _log(event_id, event_type, "rejected", started, f"{error} (400)", level=logging.WARNING)
            return _error(400, str(error))
        except BillingError as error:
            # e.g. the database is unreachable: 500, so Stripe delivers the event again later.
            _log(event_id, event_type, "error", started, f"{error} (500)", level=logging.ERROR)
            return JSONResponse({"status": "error", "event": event_id}, status_code=500)
        except Exception as error:
            _log(
                event_id,
                event_type,
                "error",
                started,
                f"unexpected {type(error).__name__}: {error} (500)",
                level=logging.ERROR,
            )
            logger.debug("traceback of the failed delivery %s", event_id, exc_info=True)
            return JSONResponse({"status": "error", "event": event_id}, status_code=500)
        http_status = _HTTP_STATUS.get(outcome.status, 500)
        level = logging.ERROR if http_status >= 500 else logging.INFO
        _log(outcome.event_id, outcome.type, outcome.status, started, outcome.reason, level=level)
        return JSONResponse(
            {"status": outcome.status, "event": outcome.event_id}, status_code=http_status
        )

    async def _read_body(self, request: Request) -> bytes:
        """The body, read chunk by chunk; never more than the cap is kept in memory."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body_bytes:
            raise _BodyTooLarge
        body = bytearray()
        async for chunk in request.stream():
            if len(body) + len(chunk) > self._max_body_bytes:
                raise _BodyTooLarge
            body += chunk
        return bytes(body)


async def healthz(_request: Request) -> Response:
    """Liveness for a load balancer: the process answers; it does not probe the database."""
    return JSONResponse({"status": "ok"})


def create_app(
    *,
    engine: WebhookEngine,
    webhook_secret: str,
    path: str = DEFAULT_PATH,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    concurrency: int | None = None,
) -> Starlette:
    """The ASGI app: ``POST path`` receives Stripe deliveries, ``GET /healthz`` answers 200.

    ``concurrency`` is how many deliveries the engine processes at once in this process (worker
    threads); by default 1 on SQLite, which takes one writer at a time anyway (more threads only
    queue in SQLite's busy-wait, which sleeps up to 100 ms a turn), and
    ``DEFAULT_CONCURRENCY`` (two per core, at most 8) on PostgreSQL.

    Mount it in an existing ASGI app with ``Mount("/billing", app=create_app(...))``.
    """
    if not webhook_secret.strip():
        raise ConfigError("STRIPE_WEBHOOK_SECRET is not set; copy the endpoint's whsec_... secret")
    if not path.startswith("/") or path == "/healthz":
        raise UsageError(f"webhook path must start with / and not be /healthz, not {path!r}")
    if max_body_bytes < 1:
        raise UsageError(f"max body size must be positive, not {max_body_bytes}")
    if concurrency is None:
        concurrency = 1 if engine.db.dialect == "sqlite" else DEFAULT_CONCURRENCY
    if concurrency < 1:
        raise UsageError(f"concurrency must be at least 1, not {concurrency}")
    load_verifier()
    endpoint = WebhookEndpoint(
        engine=engine,
        webhook_secret=webhook_secret,
        max_body_bytes=max_body_bytes,
        concurrency=concurrency,
    )
    app = Starlette(
        routes=[
            Route(path, endpoint.handle, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
    # Stripe does not follow redirects: a wrong path should show up as a plain 404.
    app.router.redirect_slashes = False
    return app


def _error(status_code: int, reason: str) -> Response:
    return JSONResponse({"error": reason}, status_code=status_code)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "?"


def _log(
    event_id: str,
    event_type: str,
    status: str,
    started: float,
    detail: str = "",
    *,
    level: int = logging.INFO,
) -> None:
    elapsed_ms = (time.perf_counter() - started) * 1000
    suffix = f" - {detail}" if detail else ""
    logger.log(
        level, "delivery %s %s %s %.1f ms%s", event_id, event_type, status, elapsed_ms, suffix
    )
