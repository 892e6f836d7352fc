"""``billing webhooks serve``: the live webhook endpoint.

Builds the event engine on the configured database and runs the ASGI app of
:mod:`billing_cli.web` under uvicorn, in this process or (``--workers N``) in N worker processes
sharing one listening socket under uvicorn's supervisor. uvicorn owns the signals: SIGTERM and
Ctrl-C stop accepting connections and let deliveries in flight finish (up to a grace period);
the command then exits 0. Starlette and uvicorn are imported inside the command, so
``billing --help`` never pays for them.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from billing_cli.cli.runtime import Runtime, runtime_of
from billing_cli.errors import ConfigError

if TYPE_CHECKING:
    from starlette.applications import Starlette

GRACEFUL_SHUTDOWN_SECONDS = 10


def serve(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (keep loopback behind a proxy).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: any free one).")
    ] = 8000,
    path: Annotated[
        str, typer.Option("--path", help="URL path Stripe posts to.")
    ] = "/webhooks/stripe/",
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Worker processes sharing the port (one per CPU core for throughput).",
        ),
    ] = 1,
    max_body_kib: Annotated[
        int, typer.Option("--max-body-kib", min=1, help="Refuse bodies larger than this (413).")
    ] = 256,
) -> None:
    """Receive Stripe webhooks over HTTP and apply them as they arrive (Ctrl-C to stop)."""
    import uvicorn

    runtime = runtime_of(ctx)
    settings = runtime.settings()
    if not settings.stripe_webhook_secret:
        raise ConfigError(
            "STRIPE_WEBHOOK_SECRET is not set; "
            "put the endpoint's signing secret (whsec_...) in .env"
        )
    db = runtime.database()
    factory = EndpointFactory(
        env_file=str(runtime.env_file) if runtime.env_file else None,
        verbose=runtime.verbose,
        path=path,
        max_body_bytes=max_body_kib * 1024,
    )
    # One process: build the app here, on the database just checked. Several: each worker
    # builds its own (its own engine and connection pool) from the pickled factory.
    config = uvicorn.Config(
        factory.build(runtime) if workers == 1 else factory,
        factory=workers > 1,
        workers=workers,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,  # each delivery is logged once, on billing.webhooks
        lifespan="off",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    sock = listening_socket(host, port, backlog=config.backlog)
    bound_host, bound_port = sock.getsockname()[:2]
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    processes = f"{workers} worker processes; " if workers > 1 else ""
    # Plain stderr, not rich: one unwrapped line that scripts (and bench/serve.py) can parse.
    _say(
        f"listening on http://{shown_host}:{bound_port}{path} "
        f"(database {db.display_url}; {processes}Ctrl-C to stop)"
    )
    received: list[int] = []
    try:
        if workers == 1:
            with _signals_noted(received):
                uvicorn.Server(config).run(sockets=[sock])
        else:
            db.dispose()  # the workers open their own connections
            _run_workers(config, sock, received)
    finally:
        sock.close()
    names = ", ".join(signal.Signals(s).name for s in dict.fromkeys(received))
    _say(f"stopped ({names})" if names else "stopped")


@dataclass(frozen=True)
class EndpointFactory:
    """What a worker needs to build the app; picklable, because uvicorn spawns its workers."""

    env_file: str | None
    verbose: bool
    path: str
    max_body_bytes: int

    def __call__(self) -> Starlette:
        """uvicorn's app factory, called in each worker process."""
        env_file = Path(self.env_file) if self.env_file else None
        return self.build(Runtime(env_file=env_file, verbose=self.verbose))

    def build(self, runtime: Runtime) -> Starlette:
        from billing_cli.services.webhooks import WebhookEngine
        from billing_cli.web import create_app

        settings = runtime.settings()
        engine = WebhookEngine(
            runtime.database(),
            live_mode=settings.stripe_live_mode,
            max_failed_attempts=settings.max_failed_attempts,
        )
        return create_app(
            engine=engine,
            webhook_secret=settings.stripe_webhook_secret,
            path=self.path,
            max_body_bytes=self.max_body_bytes,
        )


def _run_workers(config: Any, sock: socket.socket, received: list[int]) -> None:
    """uvicorn's supervisor: SIGTERM/SIGINT stop every worker gracefully, then return."""
    from uvicorn.supervisors.multiprocess import SIGNALS, Multiprocess

    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    supervisor = Multiprocess(config, sockets=[sock])  # installs its own handlers

    def note_then_forward(sig: int, _frame: object) -> None:
        received.append(sig)
        supervisor.signal_queue.append(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, note_then_forward)
    try:
        supervisor.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def listening_socket(host: str, port: int, *, backlog: int) -> socket.socket:
    """A listening TCP socket, bound here rather than by uvicorn: the real port (for ``--port 0``)
    can be announced, connections queue from the moment it is announced, and a port in use is
    a one-line error instead of uvicorn's log and exit code 3."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto
    # says TCP, and without it every response waits ~40 ms on Nagle + delayed ACK (uvicorn writes
    # the headers and the body separately). uvicorn's own ``Config.bind_socket`` leaves it 0.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as error:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.set_inheritable(True)
    return sock


@contextmanager
def _signals_noted(received: list[int]) -> Iterator[None]:
    """Let a stop signal end the command with exit 0.

    uvicorn catches SIGTERM/SIGINT, shuts down gracefully, then re-raises the signal to the
    handler that was there before it; with Python's defaults that kills the process (SIGTERM) or
    raises KeyboardInterrupt (SIGINT). The handler installed here just notes the signal, so an
    orderly stop is an orderly exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stop_signals = (signal.SIGINT, signal.SIGTERM)
    previous = {
        sig: signal.signal(sig, lambda sig, _frame: received.append(sig)) for sig in stop_signals
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
