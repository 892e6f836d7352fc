"""What ``billing webhooks serve`` needs once it runs: the app factory for worker processes, the
listening socket, and signal handling. Kept apart from the command's module so that
``billing --help`` does not import socket, signal and threading machinery."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from billing_cli.cli.runtime import Runtime
from billing_cli.errors import ConfigError

if TYPE_CHECKING:
    from starlette.applications import Starlette


@dataclass(frozen=True)
class EndpointFactory:
    """What a worker needs to build the app; picklable, because uvicorn spawns its workers."""

    env_file: str | None
    verbose: bool
    path: str
    max_body_bytes: int
    log_format: str = "text"

    def __call__(self) -> Starlette:
        """uvicorn's app factory, called in each worker process."""
        env_file = Path(self.env_file) if self.env_file else None
        return self.build(Runtime(env_file=env_file, verbose=self.verbose))

    def build(self, runtime: Runtime) -> Starlette:
        from billing_cli.services.webhooks import WebhookEngine
        from billing_cli.services.webhooks.engine import lazy_fetch
        from billing_cli.web import create_app
        from billing_cli.web.delivery_log import install

        install(self.log_format)  # the delivery log, on stderr, in this process

        settings = runtime.settings()
        # with a Stripe key, a same-second tie is settled by reading the subscription (through
        # a recording gateway: reading is all the engine may do)
        fetch = (
            lazy_fetch(lambda: runtime.gateway(dry_run=True))
            if settings.stripe_secret_key
            else None
        )
        engine = WebhookEngine(
            runtime.database(),
            live_mode=settings.stripe_live_mode,
            max_failed_attempts=settings.max_failed_attempts,
            fetch=fetch,
            paused_access=settings.paused_access,
        )
        return create_app(
            engine=engine,
            webhook_secret=settings.stripe_webhook_secret,
            path=self.path,
            max_body_bytes=self.max_body_bytes,
        )


def run_workers(config: Any, sock: socket.socket, received: list[int]) -> None:
    """uvicorn's supervisor: SIGTERM/SIGINT stop every worker gracefully, then return. A worker
    that died (and was replaced) or was restarted loses its share of the live metrics."""
    from uvicorn.supervisors.multiprocess import SIGNALS, Multiprocess

    from billing_cli.web.metrics import process_exited

    class Supervisor(Multiprocess):
        def keep_subprocess_alive(self) -> None:
            self._forgetting_the_replaced(super().keep_subprocess_alive)

        def restart_all(self) -> None:
            self._forgetting_the_replaced(super().restart_all)

        def _forgetting_the_replaced(self, step: Callable[[], None]) -> None:
            before = {process.pid for process in self.processes}
            step()
            for pid in before - {process.pid for process in self.processes}:
                if pid is not None:
                    process_exited(pid)

    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    supervisor = Supervisor(config, sockets=[sock])  # installs its own handlers

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


@contextmanager
def shared_metrics(workers: int) -> Iterator[None]:
    """With several workers, a fresh ``PROMETHEUS_MULTIPROC_DIR`` for their metrics (set before
    any worker imports prometheus_client; removed when they have all stopped), so that any
    worker's ``/metrics`` reports all of them. One process needs none: an inherited value is
    set aside, so that files of another run are never counted in this one."""
    from billing_cli.web.metrics import MULTIPROC_ENV

    inherited = os.environ.pop(MULTIPROC_ENV, None)
    directory = tempfile.mkdtemp(prefix="billing-metrics-") if workers > 1 else None
    if directory is not None:
        os.environ[MULTIPROC_ENV] = directory
    try:
        yield
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
        if inherited is not None:
            os.environ[MULTIPROC_ENV] = inherited


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
def signals_noted(
    received: list[int], on_signal: Callable[[], None] | None = None
) -> Iterator[None]:
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

    def note(sig: int, _frame: object) -> None:
        # A signal that lands before uvicorn installs its own handlers must still stop it.
        received.append(sig)
        if on_signal is not None:
            on_signal()

    previous = {sig: signal.signal(sig, note) for sig in stop_signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
