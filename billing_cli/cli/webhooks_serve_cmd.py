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
from enum import StrEnum
from functools import partial
from typing import Annotated

import typer

from billing_cli.cli.runtime import runtime_of

GRACEFUL_SHUTDOWN_SECONDS = 10


class LogFormat(StrEnum):
    text = "text"
    json = "json"


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
    log_format: Annotated[
        LogFormat,
        typer.Option(
            "--log-format", help="The delivery log on stderr, one line per request: text or json."
        ),
    ] = LogFormat.text,
) -> None:
    """Receive Stripe webhooks over HTTP and apply them as they arrive (Ctrl-C to stop).

    Also serves GET /healthz (200 when the database answers, else 503) and GET /metrics
    (Prometheus text format)."""
    import uvicorn

    from billing_cli.cli.serving import (
        EndpointFactory,
        listening_socket,
        run_workers,
        say,
        shared_metrics,
        signals_noted,
    )
    from billing_cli.config import check_webhook_secrets

    runtime = runtime_of(ctx)
    # refused before anything starts: none, or one not of the whsec_ form (an API key pasted
    # in its place); several, comma-separated, while the secret is rolled
    check_webhook_secrets(runtime.settings().stripe_webhook_secret)
    db = runtime.database()
    factory = EndpointFactory(
        env_file=str(runtime.env_file) if runtime.env_file else None,
        verbose=runtime.verbose,
        path=path,
        max_body_bytes=max_body_kib * 1024,
        log_format=log_format.value,
    )
    # Before any app is built (the first import of prometheus_client reads it): with several
    # workers, a fresh directory where each keeps its metrics, so any /metrics reports all.
    with shared_metrics(workers):
        # One process: build the app here, on the database just checked. Several: each worker
        # builds its own (its own engine and connection pool) from the pickled factory.
        config = uvicorn.Config(
            factory.build(runtime) if workers == 1 else factory,
            factory=workers > 1,
            workers=workers,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,  # each delivery is logged once, by the delivery log
            lifespan="on",  # its shutdown writes the last counts of refused deliveries
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
        sock = listening_socket(host, port, backlog=config.backlog)
        bound_host, bound_port = sock.getsockname()[:2]
        shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
        processes = f"{workers} worker processes; " if workers > 1 else ""
        # Plain stderr, not rich: one unwrapped line that scripts (and bench/serve.py) can parse.
        banner = (
            f"listening on http://{shown_host}:{bound_port}{path} "
            f"(database {db.display_url}; {processes}Ctrl-C to stop)"
        )
        received: list[int] = []
        try:
            if workers == 1:
                server = uvicorn.Server(config)
                # the stop signals are noted before the banner is printed: a script that sends
                # SIGTERM as soon as it reads the banner gets an orderly stop, never a kill
                stop = partial(setattr, server, "should_exit", True)
                with signals_noted(received, on_signal=stop):
                    say(banner)
                    server.run(sockets=[sock])
            else:
                say(banner)
                db.dispose()  # the workers open their own connections
                run_workers(config, sock, received)
        finally:
            sock.close()
    names = ", ".join(signal.Signals(s).name for s in dict.fromkeys(received))
    say(f"stopped ({names})" if names else "stopped")
