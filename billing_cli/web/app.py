"""The Stripe webhook endpoint as an ASGI app: verify, hand to the event engine, answer.

Why Starlette + uvicorn: the endpoint is two routes, so it needs a small, maintained ASGI toolkit
rather than a framework with its own ORM or settings (Starlette: routing, streaming request
bodies, a thread pool for sync code), and a maintained production server that handles
keep-alive, concurrent connections and SIGTERM/Ctrl-C shutdown (uvicorn). Being plain ASGI, the
app from :func:`create_app` also mounts in an operator's existing ASGI server or application.

What a delivery goes through, in order, and what each failure answers (docs/architecture.md,
The webhook engine):

1. the body is read in chunks and refused with 413 past ``max_body_bytes`` (a declared
   ``Content-Length`` over the cap is refused before reading anything);
2. the ``Stripe-Signature`` is checked against each configured secret (several during a
   secret roll; any one verifying is enough), its timestamp must be within 300 s of this
   clock either way (older is a replay, newer a forgery or a clock far off), and the body
   parsed: any failure is 400 and one log line, and nothing reaches the engine or the database;
3. :meth:`WebhookEngine.process` runs in a worker thread (it is sync SQLAlchemy), at most
   ``concurrency`` at a time per process (see :func:`create_app`): a
   ``WebhookError`` (malformed event, livemode mismatch) is 400; a ``failed`` outcome, or any
   other error, is 500 so that Stripe retries; processed, ignored and skipped are 200.

Every request to the webhook path is one line of the delivery log (:mod:`.delivery_log`), and
is counted in the Prometheus metrics served at ``GET /metrics`` (:mod:`.metrics`). A refused
delivery (400 or 413) is also counted per minute and reason in the database, in batches written
about once a second (``RejectionCounter``), so a flood of bad requests costs a few statements.
``GET /healthz`` runs a trivial query (2 s limit): 200 when the database answers, 503 when not.
The webhook path is served with and without its trailing slash (Stripe does not follow
redirects). Nothing here touches the database or Stripe itself: the engine owns the ledger, the
gateway owns the signature check, :mod:`billing_cli.services.observe.counters` owns the counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from billing_cli.config import check_webhook_secrets
from billing_cli.errors import BillingError, UsageError, WebhookError
from billing_cli.gateway.calls import scrub
from billing_cli.gateway.webhook_signature import load_verifier, verify_signature
from billing_cli.services.observe.counters import RejectionCounter, database_answers
from billing_cli.web.delivery_log import LOGGER_NAME
from billing_cli.web.metrics import EndpointMetrics, process_exited

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
delivery_log = logging.getLogger(LOGGER_NAME)
HEALTH_TIMEOUT_SECONDS = 2.0
# Refusals are written to the database this long after the first one not yet written.
REJECTION_FLUSH_SECONDS = 1.0

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
        self,
        *,
        engine: WebhookEngine,
        webhook_secrets: tuple[str, ...],
        max_body_bytes: int,
        concurrency: int,
        metrics: EndpointMetrics,
        rejection_flush_seconds: float,
    ) -> None:
        self._engine = engine
        self._secrets = webhook_secrets
        self._max_body_bytes = max_body_bytes
        self._concurrency = concurrency
        self._limiter_of_loop: anyio.CapacityLimiter | None = None
        self._health_limiter_of_loop: anyio.CapacityLimiter | None = None
        self.metrics = metrics
        self.rejections = RejectionCounter()
        self._flush_seconds = rejection_flush_seconds
        self._flush_task: asyncio.Task[None] | None = None

    @property
    def _limiter(self) -> anyio.CapacityLimiter:
        # Created on first use, inside the server's event loop (anyio wants one there).
        if self._limiter_of_loop is None:
            self._limiter_of_loop = anyio.CapacityLimiter(self._concurrency)
        return self._limiter_of_loop

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            return await self._handle(request, started)
        finally:
            self.metrics.in_flight.dec()

    async def _handle(self, request: Request, started: float) -> Response:
        try:
            body = await self._read_body(request)
        except _BodyTooLarge:
            self._rejected("body_too_large", started, 413)
            return _error(413, f"body exceeds {self._max_body_bytes} bytes")
        try:
            event = verify_signature(
                body,
                request.headers.get("stripe-signature"),
                self._secrets,
                tolerance=SIGNATURE_TOLERANCE_SECONDS,
            )
        except WebhookError as error:
            self._rejected(error.reason, started, 400)
            return _error(400, str(error))
        event_id = _text(event.get("id"))
        event_type = _text(event.get("type"))
        try:
            outcome: EventOutcome = await anyio.to_thread.run_sync(
                functools.partial(self._engine.process, event, source="endpoint"),
                limiter=self._limiter,
            )
        except WebhookError as error:
            self._rejected(error.reason, started, 400, event_id=event_id, event_type=event_type)
            return _error(400, str(error))
        except BillingError as error:
            # e.g. the database is unreachable: 500, so Stripe delivers the event again later.
            logger.error("delivery %s (%s) not processed: %s (500)", event_id, event_type, error)
            self._answered(500, event_id, event_type, "error", started, reason=str(error))
            return JSONResponse({"status": "error", "event": event_id}, status_code=500)
        except Exception as error:
            logger.error(
                "delivery %s (%s) not processed: unexpected %s: %s (500)",
                event_id,
                event_type,
                type(error).__name__,
                error,
            )
            logger.debug("traceback of the failed delivery %s", event_id, exc_info=True)
            why = f"unexpected {type(error).__name__}: {error}"
            self._answered(500, event_id, event_type, "error", started, reason=why)
            return JSONResponse({"status": "error", "event": event_id}, status_code=500)
        http_status = _HTTP_STATUS.get(outcome.status, 500)
        why = outcome.reason if http_status == 500 else ""
        self._answered(
            http_status, outcome.event_id, outcome.type, outcome.status, started, reason=why
        )
        return JSONResponse(
            {"status": outcome.status, "event": outcome.event_id}, status_code=http_status
        )

    def _answered(
        self,
        status: int,
        event_id: str,
        event_type: str,
        outcome: str,
        started: float,
        *,
        reason: str = "",
    ) -> None:
        """Count and log an answer; a 500 says why in the delivery log, which is on without -v."""
        seconds = time.perf_counter() - started
        self.metrics.deliveries.labels(type=event_type, outcome=outcome).inc()
        self.metrics.processing.observe(seconds)
        why = scrub("".join(ch if ch.isprintable() else " " for ch in reason))[:300]
        _log_delivery(status, event_id, event_type, outcome, seconds, reason=why)

    def _rejected(
        self,
        reason: str,
        started: float,
        status: int,
        *,
        event_id: str = "",
        event_type: str = "",
    ) -> None:
        """Count a refusal (metrics now, database in the next batch) and log it."""
        self.metrics.rejections.labels(reason=reason).inc()
        self.rejections.note(reason)
        self._schedule_flush()
        seconds = time.perf_counter() - started
        _log_delivery(status, event_id, event_type, "rejected", seconds, reason=reason)

    def _schedule_flush(self) -> None:
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        # until nothing is left: refusals noted while a flush ran wait for the next round
        while self.rejections.pending:
            await asyncio.sleep(self._flush_seconds)
            await self.flush_rejections()

    async def flush_rejections(self) -> None:
        """Write the refusals counted so far; a database error keeps them for the next try."""
        try:
            await anyio.to_thread.run_sync(self.rejections.flush, self._engine.db)
        except BillingError as error:
            logger.warning("refused deliveries not recorded yet: %s", error)

    async def healthz(self, _request: Request) -> Response:
        """200 when the database answers a trivial query within the limit, else 503."""
        if self._health_limiter_of_loop is None:
            # one check at a time: a hung database cannot pile up threads
            self._health_limiter_of_loop = anyio.CapacityLimiter(1)
        try:
            with anyio.fail_after(HEALTH_TIMEOUT_SECONDS):
                await anyio.to_thread.run_sync(
                    database_answers,
                    self._engine.db,
                    limiter=self._health_limiter_of_loop,
                    abandon_on_cancel=True,
                )
        except TimeoutError:
            return JSONResponse(
                {"status": "unavailable", "database": "no answer in time"}, status_code=503
            )
        except BillingError as error:
            logger.warning("health check: %s", error)
            return JSONResponse({"status": "unavailable", "database": "error"}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    async def metrics_page(self, _request: Request) -> Response:
        body, content_type = self.metrics.exposition()
        return Response(body, media_type=content_type)

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


def create_app(
    *,
    engine: WebhookEngine,
    webhook_secret: str,
    path: str = DEFAULT_PATH,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    concurrency: int | None = None,
    rejection_flush_seconds: float = REJECTION_FLUSH_SECONDS,
) -> Starlette:
    """The ASGI app: ``POST path`` (with or without its trailing slash) receives Stripe
    deliveries, ``GET /healthz`` checks the database, ``GET /metrics`` is for Prometheus.

    ``concurrency`` is how many deliveries the engine processes at once in this process (worker
    threads); by default 1 on SQLite, which takes one writer at a time anyway (more threads only
    queue in SQLite's busy-wait, which sleeps up to 100 ms a turn), and
    ``DEFAULT_CONCURRENCY`` (two per core, at most 8) on PostgreSQL.

    Mount it in an existing ASGI app with ``Mount("/billing", app=create_app(...))``.
    """
    secrets = check_webhook_secrets(webhook_secret)  # comma-separated during a roll
    if not path.startswith("/") or path.rstrip("/") in ("", "/healthz", "/metrics"):
        raise UsageError(
            f"webhook path must start with / and not be /, /healthz or /metrics, not {path!r}"
        )
    if max_body_bytes < 1:
        raise UsageError(f"max body size must be positive, not {max_body_bytes}")
    if concurrency is None:
        concurrency = 1 if engine.db.dialect == "sqlite" else DEFAULT_CONCURRENCY
    if concurrency < 1:
        raise UsageError(f"concurrency must be at least 1, not {concurrency}")
    load_verifier()
    endpoint = WebhookEndpoint(
        engine=engine,
        webhook_secrets=secrets,
        max_body_bytes=max_body_bytes,
        concurrency=concurrency,
        metrics=EndpointMetrics(),
        rejection_flush_seconds=rejection_flush_seconds,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await endpoint.flush_rejections()  # on shutdown, when the server runs the lifespan
        process_exited(os.getpid())  # a worker of several: its in-flight share goes

    other_form = path.rstrip("/") if path.endswith("/") else path + "/"
    app = Starlette(
        routes=[
            Route(path, endpoint.handle, methods=["POST"]),
            Route(other_form, endpoint.handle, methods=["POST"]),
            Route("/healthz", endpoint.healthz, methods=["GET"]),
            Route("/metrics", endpoint.metrics_page, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.endpoint = endpoint
    # Stripe does not follow redirects: a wrong path should show up as a plain 404.
    app.router.redirect_slashes = False
    return app


def _error(status_code: int, reason: str) -> Response:
    return JSONResponse({"error": reason}, status_code=status_code)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "?"


def _log_delivery(
    status: int, event_id: str, event_type: str, outcome: str, seconds: float, *, reason: str = ""
) -> None:
    if not delivery_log.isEnabledFor(logging.INFO):
        return
    delivery = {
        "status": status,
        "event": event_id,
        "type": event_type,
        "outcome": outcome,
        "ms": round(seconds * 1000, 1),
        "reason": reason,
    }
    delivery_log.info("delivery", extra={"delivery": delivery})
