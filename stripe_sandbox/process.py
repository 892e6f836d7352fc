"""``Sandbox``: runs ``python -m stripe_sandbox --port 0`` as a subprocess and talks to
its control endpoints. Standard library only, so importing it costs nothing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

SANDBOX_SECRET_KEY = "sk_test_sandbox"
SANDBOX_PUBLISHABLE_KEY = "pk_test_sandbox"

# What the server process imports beyond the standard library and stripe: the optional extra
# (``pip install 'billing-cli[sandbox]'``) that a production install leaves out.
SERVER_DEPENDENCIES = ("localstripe", "aiohttp")

_START_TIMEOUT_SECONDS = 15.0
_STOP_TIMEOUT_SECONDS = 5.0
_CONTROL_TIMEOUT_SECONDS = 10.0


class SandboxError(RuntimeError):
    """The sandbox process failed to start or a control call failed."""


def missing_dependencies() -> list[str]:
    """The server's third-party packages that cannot be imported here, without importing them
    (they cost a few hundred milliseconds and are only needed in the server process)."""
    missing = []
    for name in SERVER_DEPENDENCIES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


class Sandbox:
    """Context manager owning one sandbox subprocess on 127.0.0.1."""

    secret_key = SANDBOX_SECRET_KEY
    publishable_key = SANDBOX_PUBLISHABLE_KEY

    def __init__(self, *, port: int = 0, start_timeout: float = _START_TIMEOUT_SECONDS) -> None:
        self._port = port
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._api_base: str | None = None

    @property
    def api_base(self) -> str:
        if self._api_base is None:
            raise SandboxError("sandbox is not running")
        return self._api_base

    @property
    def log_path(self) -> str | None:
        """File receiving the server's stderr (its log), kept after stop for debugging."""
        return self._log.name if self._log is not None else None

    def start(self) -> Self:
        if self._proc is not None:
            return self
        missing = missing_dependencies()
        if missing:
            # Fail now rather than after the start timeout, with the child's ImportError.
            raise SandboxError(f"the sandbox server needs {', '.join(missing)}: not installed")
        env = dict(os.environ)
        # Make this package importable in the child even without an installed one.
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        # stderr goes to a file: a pipe nobody drains would eventually block the server.
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="billing-sandbox-", suffix=".log", delete=False
        )
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stripe_sandbox",
                "--host",
                "127.0.0.1",
                "--port",
                str(self._port),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
        )
        lines: queue.Queue[bytes] = queue.Queue()
        stdout = self._proc.stdout
        assert stdout is not None
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=self._start_timeout)
            self._api_base = str(json.loads(line)["api_base"])
        except (queue.Empty, ValueError, KeyError) as exc:
            self.stop()
            raise SandboxError(
                f"sandbox did not announce its address within {self._start_timeout}s "
                f"(log: {self.log_path})"
            ) from exc
        return self

    def wait(self) -> int:
        """Block until the server process exits (``billing sandbox`` runs in the foreground)."""
        if self._proc is None:
            raise SandboxError("sandbox is not running")
        return self._proc.wait()

    def stop(self) -> None:
        proc, self._proc, self._api_base = self._proc, None, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=_STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- control calls -------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(
            self.api_base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=_CONTROL_TIMEOUT_SECONDS) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            raise SandboxError(f"{method} {path} -> {exc.code}: {detail}") from None
        return json.loads(raw) if raw.strip() else None

    def reset(self) -> None:
        """Wipe all objects, events and registered webhooks."""
        self._call("DELETE", "/_config/data")

    def register_webhook(
        self,
        url: str,
        secret: str,
        endpoint_id: str = "billing",
        *,
        events: list[str] | None = None,
    ) -> None:
        """Send every event (or only ``events``) to ``url``, signed with ``secret``.
        Only loopback URLs are accepted."""
        body: dict[str, Any] = {"url": url, "secret": secret}
        if events is not None:
            body["events"] = events
        self._call("POST", f"/_config/webhooks/{endpoint_id}", body)

    def renew(self, sub_id: str) -> dict[str, Any]:
        """Bill the subscription's next period now (or retry its open invoice)."""
        result: dict[str, Any] = self._call("POST", f"/_sandbox/subscriptions/{sub_id}/renew", {})
        return result

    def end_trial(self, sub_id: str) -> dict[str, Any]:
        """End the subscription's trial now and charge the first period."""
        result: dict[str, Any] = self._call(
            "POST", f"/_sandbox/subscriptions/{sub_id}/end_trial", {}
        )
        return result
