"""``billing sandbox`` in the foreground: stopping it stops its server too."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.sandbox.extra import run_billing_without

pytestmark = pytest.mark.sandbox


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize(
    "stop", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name
)
def test_stopping_billing_sandbox_stops_its_server(stop: signal.Signals) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"}
    process = subprocess.Popen(
        [sys.executable, "-m", "billing_cli", "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        port = None
        for line in process.stdout:
            found = re.search(r"STRIPE_API_BASE=http://127\.0\.0\.1:(\d+)", line)
            if found:
                port = int(found.group(1))
                break
        assert port is not None and _listening(port)
        process.send_signal(stop)
        assert process.wait(timeout=30) in (0, 1, 130, -stop)
        deadline = time.monotonic() + 10
        while _listening(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _listening(port), "the sandbox server outlived `billing sandbox`"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("blocked", ["stripe_sandbox", "localstripe", "aiohttp"])
def test_billing_sandbox_without_the_extra_says_how_to_install_it(
    blocked: str, tmp_path: Path
) -> None:
    run = run_billing_without(blocked, ["sandbox", "--port", "0"], tmp_path)
    assert run.returncode == 1
    assert run.stderr == (
        "Error: billing sandbox needs the sandbox extra: pip install 'billing-cli[sandbox]'\n"
    )
    assert run.stdout == ""
