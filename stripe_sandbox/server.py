"""In-process entry of the sandbox: localstripe's aiohttp app, extended, on loopback only.

Owns the app assembly (``build_app``) and the listener (``serve``/``run``). The listener
binds a single IPv4 loopback address (never ``::`` or ``0.0.0.0``), never touches
``/tmp/localstripe.pickle`` (the extensions turn the store's disk I/O into no-ops and
localstripe's ``start()``, which reloads that file, is never called), and once listening
prints exactly one JSON line, ``{"api_base": "http://127.0.0.1:PORT"}``, to stdout.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import signal
import sys
from typing import Any

from aiohttp import web

from stripe_sandbox import (
    balance,
    coupons,
    events,
    extensions,
    idempotency,
    invoice_collection,
    listing,
    pause,
    payment_methods,
    previews,
    refunds,
    subscription_updates,
    webhook_endpoints,
)

# extensions.ROUTES gathers the routes of the core resource modules (prices, subscriptions,
# invoices, events...); the modules beside it add or replace routes. An earlier table wins over a
# later one for the same route.
ADDITIONS = (subscription_updates, pause, coupons, balance, previews)  # with install() hooks
ROUTE_TABLES = (
    subscription_updates,
    pause,
    coupons,
    balance,
    previews,
    invoice_collection,
    payment_methods,
    refunds,
    extensions,
    listing,
    webhook_endpoints,
)

log = logging.getLogger("stripe_sandbox")


@web.middleware
async def _auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    # Sandbox control endpoints, like localstripe's /_config/, need no API key.
    if request.path.startswith("/_sandbox/"):
        response: web.StreamResponse = await handler(request)
        return response
    from localstripe import server as ls_server

    result: web.StreamResponse = await ls_server.auth_middleware(request, handler)
    return result


@web.middleware
async def _crash_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn unexpected exceptions into a Stripe-shaped 500 instead of a bare traceback."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException:
        raise
    except Exception as exc:
        from localstripe.errors import UserError

        if isinstance(exc, UserError):
            raise
        log.exception("sandbox error on %s %s", request.method, request.path)
        return web.json_response(
            {"error": {"type": "api_error", "message": f"sandbox error: {exc!r}"}}, status=500
        )


def build_app() -> web.Application:
    """localstripe's routes behind the extension routes, without its disk-saving middleware."""
    extensions.install()
    for addition in ADDITIONS:
        addition.install()
    from localstripe import server as ls_server

    app = web.Application(
        middlewares=[
            ls_server.error_middleware,
            _crash_middleware,
            _auth_middleware,
            idempotency.idempotency_middleware,
        ]
    )
    taken: set[tuple[str, str]] = set()
    for table in ROUTE_TABLES:
        for method, path, handler in table.ROUTES:
            if (method, path) not in taken:
                app.router.add_route(method, path, handler)
                taken.add((method, path))
    for route in ls_server.app.router.routes():
        if route.resource is None:
            continue
        path = route.resource.canonical
        if (route.method, path) in taken:
            continue
        app.router.add_route(route.method, path, route.handler)
        taken.add((route.method, path))
    app.on_startup.append(events.DELIVERER.start)
    app.on_cleanup.append(events.DELIVERER.stop)
    return app


def _check_loopback(host: str) -> None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise SystemExit(f"--host must be an IPv4 loopback address, got {host!r}") from None
    if address.version != 4 or not address.is_loopback:
        raise SystemExit(f"--host must be an IPv4 loopback address, got {host!r}")


async def serve(host: str = "127.0.0.1", port: int = 0) -> None:
    """Listen until SIGTERM/SIGINT; announce the bound address on stdout first."""
    _check_loopback(host)
    runner = web.AppRunner(build_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    bound_port = int(runner.addresses[0][1])
    sys.stdout.write(json.dumps({"api_base": f"http://{host}:{bound_port}"}) + "\n")
    sys.stdout.flush()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def run(host: str = "127.0.0.1", port: int = 0) -> None:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    asyncio.run(serve(host, port))
