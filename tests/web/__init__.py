"""Tests of the webhook endpoint over real HTTP on loopback, and the helpers they share.

Two ways to run the endpoint, both real servers on 127.0.0.1 with a free port:
- :class:`ServerThread`: uvicorn in a background thread of the test process, serving the app of
  ``create_app`` (fast; the test can reach the same database and engine);
- :class:`ServeProcess`: ``billing webhooks serve`` in a subprocess (the command as an operator
  runs it: settings from the environment, signals, exit code).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import requests

from billing_cli.cli.serving import listening_socket
from tests.signing import signed_delivery

SECRET = "whsec_test_0123456789abcdefghijklmnop"
WEBHOOK_PATH = "/webhooks/stripe/"
ROOT = Path(__file__).resolve().parents[2]

# Runs the real CLI, as the console script does.
SERVE_SCRIPT = """
import sys
from billing_cli.cli.main import app
app(prog_name="billing")
"""


class ServerThread:
    """uvicorn serving ``app`` from a daemon thread; stopped (gracefully) on exit."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="off"
        )
        self.server = uvicorn.Server(config)
        # As `webhooks serve` binds it (uvicorn's bind_socket would leave TCP_NODELAY off).
        self.sock = listening_socket("127.0.0.1", 0, backlog=config.backlog)
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        wait_until(lambda: self.server.started, timeout=10, what="uvicorn to start")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=15)
        self.sock.close()


class ServeProcess:
    """``billing webhooks serve --port 0`` in a subprocess; its stderr goes to a file."""

    def __init__(self, env: Mapping[str, str], *args: str, cwd: Path | None = None) -> None:
        self._env = {**os.environ, **env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        self._args = args
        self._cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.url = ""

    def start(self, *, timeout: float = 30) -> Self:
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="billing-serve-", suffix=".log", delete=False
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVE_SCRIPT, "webhooks", "serve", "--port", "0", *self._args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            env=self._env,
            cwd=self._cwd,
        )
        proc = self.proc

        def announced() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"serve exited {proc.returncode}: {self.stderr()}")
            return "listening on " in self.stderr()

        wait_until(announced, timeout=timeout, what="`webhooks serve` to listen")
        line = next(ln for ln in self.stderr().splitlines() if ln.startswith("listening on "))
        address = line.split()[2]  # http://127.0.0.1:PORT/path
        self.url = address[: address.index("/", len("http://"))]
        return self

    def stderr(self) -> str:
        if self._log is None:
            return ""
        return Path(self._log.name).read_text(encoding="utf-8", errors="replace")

    def terminate(self, *, timeout: float = 10) -> int:
        """SIGTERM, then the exit code (killing it if it does not stop within ``timeout``)."""
        assert self.proc is not None
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"serve ignored SIGTERM for {timeout}s") from None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._log is not None:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def wait_until(condition: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """Poll ``condition`` every 20 ms until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def deliver(
    base_url: str,
    event: dict[str, Any],
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
    session: requests.Session | None = None,
) -> requests.Response:
    """POST ``event`` signed as Stripe signs it."""
    body, headers = signed_delivery(event, secret, timestamp=timestamp)
    return post(base_url, body, headers, session=session)


def post(
    base_url: str,
    body: Any,
    headers: Mapping[str, str],
    *,
    session: requests.Session | None = None,
) -> requests.Response:
    sender = session or requests
    return sender.post(base_url + WEBHOOK_PATH, data=body, headers=dict(headers), timeout=30)


def reply(response: requests.Response) -> dict[str, Any]:
    data = json.loads(response.content)
    assert isinstance(data, dict)
    return data
